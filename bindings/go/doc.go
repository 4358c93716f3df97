// Package bnorm is the Go binding of bnorm, batch normalization kernels for
// CPUs behind a stable C ABI (include/bnorm/bnorm.h).
//
// A layer is described once with NewDescriptor, which starts from the
// library's defaults (PyTorch's: eps 1e-5, momentum 0.1, affine, tracking
// running statistics, NCHW). Every call takes the tensor's Shape, dims in
// memory order, so an input whose channel count differs from the layer's is
// reported on every call instead of reading past the end of a vector.
//
// Tensors (x, y, dy, dx, residual, dResidual) are []float32, []BF16 or []F16:
// the calls are generic over Element, and the tensors' type sets the dtype the
// library is told, so the two cannot disagree. Per-channel vectors are
// []float32 whatever the tensors are. With BF16 (bfloat16) or F16 (IEEE
// binary16) tensors the library converts the inputs to float32 exactly and
// rounds each tensor output to nearest even. The forward calls compute as for
// float32: each output is the float32 call's on the same values, rounded, bit
// for bit. The backward calls (Backward, BackwardResidual, BackwardReduce,
// BackwardElementwise; since bnorm 1.4.0) compute in float64: every dx is
// within 1 ulp of exact batch norm, so dx, dgamma, dbeta and the grad sums
// are not the float32 call's. ToBF16, ToF16 and the Float32 methods convert
// single values the same way.
//
// A slice must hold exactly the shape's element count (tensors) or
// NumFeatures values (per-channel vectors); a nil or empty slice is passed to
// the library as NULL, which is how optional arguments are left out. Whether an argument is required depends on the
// flags, and the library decides: a missing required one is ErrNullPointer.
//
// Failures are returned as *Error values carrying the library's status and its
// bnorm_last_error() message; use errors.Is with the Err* sentinels, or
// errors.As with *Error. A slice of the wrong length is a *LengthError
// (errors.Is(err, ErrLength)), found before the library is called but only
// once the descriptor, shape and channel count are ones the library accepts,
// so that a mismatched input is reported in the library's words. Nothing is
// written to any output when a call fails.
//
// FoldScaleShift, ForwardScaleShift and FoldIntoLayer (bnorm 1.1) fold
// eval-mode batch norm into a per-channel scale and shift, or into the
// weights and bias of the convolution or linear layer before it, whose
// weights must hold a whole number of NumFeatures rows.
//
// LocalStats, MergeStats, ForwardNormalize, BackwardReduce and
// BackwardElementwise (bnorm 1.2) split training forward and backward into
// phases around the exchange that data-parallel training makes between
// processes (SyncBatchNorm): each process reduces its part of the batch to a
// block of float64 values, the caller exchanges the blocks with its own
// collective (an allgather for the statistics, an allgather or an allreduce
// for the gradient sums), and every process finishes its part with the whole
// batch's numbers. Example_splitPhases shows where the exchanges go.
//
// ForwardInferenceResidual, ForwardTrainingResidual and BackwardResidual
// (bnorm 1.2) are the tail of a ResNet block in one pass: y = bn(x) +
// residual, then ReLU with FuseReLU; the backward gives dx and the residual's
// gradient (dy, masked by y > 0 with FuseReLU). Example_residual runs one.
//
// The package needs bnorm 1.2 (RequiredVersion) to build. If the program
// loads an older libbnorm.so.1 at run time, the functions that library lacks
// return a *VersionError (errors.Is(err, ErrLibraryVersion)) instead of
// calling it.
//
// All functions are safe for concurrent use.
package bnorm
