/* bnorm: batch normalization kernels for CPUs, behind a stable C ABI.
 *
 * Conventions (see also the contract, spec/c-api.md):
 * - Every function that can fail returns a bnorm_status and writes results only
 *   through its pointer parameters. Arguments are validated before anything is
 *   written: a call that fails leaves every output buffer, and the running
 *   statistics, exactly as they were.
 * - After a failing call, bnorm_last_error() describes it on the calling thread,
 *   naming the numbers involved. After a successful call it is "".
 * - Thread-safe and reentrant. The only process-wide state is the SIMD target
 *   selection (made once, capped by bnorm_set_max_target or BNORM_MAX_ISA) and
 *   the per-thread last-error message.
 * - Tensors are dense and contiguous in the layout's memory order. Element
 *   pointers must be aligned to the element size.
 * - Within major version 1, functions, enum values and struct fields never
 *   change meaning or position; structs only grow at the end.
 */
#ifndef BNORM_BNORM_H_
#define BNORM_BNORM_H_

#include <stdint.h>

#if defined(_WIN32) && defined(BNORM_BUILDING_SHARED)
#define BNORM_API __declspec(dllexport)
#elif defined(_WIN32) && defined(BNORM_USING_SHARED)
#define BNORM_API __declspec(dllimport)
#elif defined(__GNUC__)
#define BNORM_API __attribute__((visibility("default")))
#else
#define BNORM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define BNORM_VERSION_MAJOR 1
#define BNORM_VERSION_MINOR 5
#define BNORM_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH of this header. */
#define BNORM_VERSION_NUMBER 10500

/* MAJOR*10000 + MINOR*100 + PATCH of the library actually loaded; compare it
 * with BNORM_VERSION_NUMBER to detect a header/library mismatch. */
BNORM_API uint32_t bnorm_version(void);
/* "1.2.0": the loaded library's version. Static storage, never NULL. */
BNORM_API const char* bnorm_version_string(void);

/* ----------------------------------------------------------- status codes */

typedef enum bnorm_status {
  BNORM_OK = 0,
  /* A required pointer is NULL. */
  BNORM_ERR_NULL_POINTER = 1,
  /* Descriptor not initialised (unknown struct_size) or num_features <= 0. */
  BNORM_ERR_INVALID_DESCRIPTOR = 2,
  /* Rank outside 2..5, a dimension <= 0, or the element count overflows. */
  BNORM_ERR_INVALID_SHAPE = 3,
  /* The shape's channel dimension differs from the descriptor's num_features. */
  BNORM_ERR_FEATURE_MISMATCH = 4,
  /* eps not finite or <= 0, momentum outside [0, 1] or NaN, unknown layout,
   * dtype or flag bits, num_threads < 0, a misaligned pointer, or an unknown
   * target name. */
  BNORM_ERR_INVALID_ARGUMENT = 5,
  /* Training statistics from one value per channel (N x spatial == 1). */
  BNORM_ERR_TOO_FEW_VALUES = 6,
  /* An output overlaps an input or another output, other than the exact
   * in-place pairs each function allows. */
  BNORM_ERR_ALIASING = 7,
  /* A valid request this build does not implement (bf16 and f16 before
   * 1.3.0; none since). */
  BNORM_ERR_UNSUPPORTED = 8,
  /* Scratch memory could not be allocated. */
  BNORM_ERR_OUT_OF_MEMORY = 9,
  /* A bug in bnorm; please report it with bnorm_last_error(). */
  BNORM_ERR_INTERNAL = 10
} bnorm_status;

/* "BNORM_ERR_FEATURE_MISMATCH: ..." style name and description of a status.
 * Static storage, never NULL, also for values this version does not know. */
BNORM_API const char* bnorm_status_string(bnorm_status status);

/* Detail of the last failing call on this thread, e.g.
 * "input channel dimension (dim 1) is 64 but num_features is 128".
 * "" after a successful call. Valid until the next bnorm call on this thread. */
BNORM_API const char* bnorm_last_error(void);

/* ------------------------------------------------------------- descriptor */

typedef enum bnorm_layout {
  BNORM_LAYOUT_NCHW = 0, /* channels first: (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W) */
  BNORM_LAYOUT_NHWC = 1  /* channels last:  (N, C), (N, L, C), (N, H, W, C), (N, D, H, W, C) */
} bnorm_layout;

/* The element type of every tensor argument (x, y, dy, dx, residual,
 * d_residual). Per-channel vectors (statistics, parameters, their gradients,
 * scale and shift) are float and the split phases' blocks double, whatever
 * the dtype.
 *
 * bf16 and f16 (since 1.3.0): 2-byte elements, pointers aligned to 2 bytes.
 * bf16 is the upper half of an IEEE float's bits; f16 is IEEE binary16. Inputs
 * are widened to float exactly. Outputs are rounded to nearest, ties to even:
 * NaN stays NaN (quiet), f16 overflow becomes infinity, f16 subnormals are
 * kept.
 * - Forward calls compute as the float path does: each tensor output is the
 *   F32 call's output (on the widened inputs) rounded, and per-channel outputs
 *   equal the F32 call's bit for bit. Against exact (float64) batch norm, an
 *   output is within one unit in the last place of its type, except where the
 *   float arithmetic's own rounding is larger than half a unit: a result that
 *   cancels to far below its terms (y near 0 with (x - mean) * scale near
 *   -beta, or near -residual), below about 2^-15 (bf16) or 2^-12 (f16) of
 *   |(x - mean) * scale| + |beta| (+ |residual|). None of the 27 million
 *   random outputs the tests check needs this; a beta chosen to cancel y at
 *   some x does.
 * - Backward calls (since 1.4.0) sum in double and evaluate dx in float with
 *   a bound on its rounding, recomputing in double each element the bound
 *   cannot vouch for: every dx is within one unit in the last place of exact
 *   batch norm on the same inputs, also where it cancels, which float
 *   arithmetic alone misses for about 3 in 10,000 bf16 elements. dx, dgamma,
 *   dbeta and grad sums are therefore not the F32 call's (they are closer to
 *   exact). In place, split into phases or not, and on any number of threads,
 *   a backward gives the same bits, except that a NaN may differ in sign and
 *   payload. */
typedef enum bnorm_dtype {
  BNORM_DTYPE_F32 = 0,
  BNORM_DTYPE_BF16 = 1, /* bfloat16 (since 1.3.0) */
  BNORM_DTYPE_F16 = 2   /* IEEE half precision (since 1.3.0) */
} bnorm_dtype;

/* gamma (scale) and beta (shift) are applied; without it they may be NULL. */
#define BNORM_FLAG_AFFINE (1u << 0)
/* Training forward updates running_mean and running_var. */
#define BNORM_FLAG_TRACK_RUNNING_STATS (1u << 1)
/* Forward: y = max(y, 0) (NaN stays NaN). Backward: dy is zeroed where the
 * forward output y <= 0 (NaN passes, as in PyTorch). */
#define BNORM_FLAG_FUSE_RELU (1u << 2)
/* Backward treats mean and invstd as constants (frozen, eval-mode BN). */
#define BNORM_FLAG_USE_GLOBAL_STATS (1u << 3)

/* A batch-norm layer's fixed configuration. Initialise it with
 * bnorm_desc_init, then change fields as needed. */
typedef struct bnorm_desc {
  uint32_t struct_size; /* sizeof(bnorm_desc) as the caller compiled it */
  int64_t num_features; /* C: the layer's channel count */
  float eps;            /* > 0 and finite; default 1e-5 */
  float momentum;       /* in [0, 1]; default 0.1; running = (1-m)*running + m*batch */
  uint32_t flags;       /* BNORM_FLAG_*; default AFFINE | TRACK_RUNNING_STATS */
  bnorm_layout layout;  /* default BNORM_LAYOUT_NCHW */
  bnorm_dtype dtype;    /* of every tensor; default F32. Per-channel vectors are float */
  int32_t num_threads;  /* 0: OpenMP's default; n > 0: at most n threads */
} bnorm_desc;

/* Sets every field to its default, struct_size to sizeof(bnorm_desc) and
 * num_features as given. Fails with BNORM_ERR_NULL_POINTER (d NULL) or
 * BNORM_ERR_INVALID_DESCRIPTOR (num_features <= 0; *d is then still fully
 * initialised, with the bad num_features, so later calls fail the same way).
 *
 * A struct_size smaller than sizeof(bnorm_desc) that ends on a field boundary,
 * at least through num_features, is accepted by every call: the fields past it
 * take their defaults. This is how binaries built against an older header keep
 * working when the struct grows. Any other struct_size is rejected.
 *
 * The bnorm_desc_init symbol writes exactly the fields above (sizeof(bnorm_desc)
 * of version 1.0) in every 1.x library, so a binary built against this header
 * is never written past its struct. Should a later 1.x header grow the struct,
 * it will route the bnorm_desc_init name to a new initializer that takes the
 * caller's sizeof, so source code stays the same. */
BNORM_API bnorm_status bnorm_desc_init(bnorm_desc* d, int64_t num_features);

/* ------------------------------------------------------------------ shape */

/* dims are in memory order (see bnorm_layout); rank is 2 to 5. The channel
 * dimension is dims[1] for NCHW and dims[rank - 1] for NHWC, and must equal
 * the descriptor's num_features. The shape is passed with every call, so an
 * input whose channel count differs from the layer's is caught every time. */
typedef struct bnorm_shape {
  int32_t rank;
  int64_t dims[5];
} bnorm_shape;

/* -------------------------------------------------------------- functions
 *
 * Per-channel vectors (mean, var, gamma, beta, running_*, save_*, dgamma,
 * dbeta) are float[num_features]. Tensors x, y, dy, dx (and residual,
 * d_residual) have the shape's element count, in the descriptor's dtype.
 *
 * Overlap: an output may not overlap an input or another output, except for
 * the exact in-place pairs named per function (same pointer); anything else is
 * BNORM_ERR_ALIASING. Read-only inputs may overlap each other.
 *
 * When several errors apply, the first in this order is returned: desc or shape
 * NULL; descriptor; descriptor fields; shape; channel mismatch; a required data
 * pointer NULL; misalignment; overlap; too few values; unsupported dtype;
 * out of memory.
 *
 * Results are bit-identical from run to run and for every num_threads: the
 * reduction order depends on the shape (and the SIMD target) only.
 */

/* Inference (eval mode):
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta, then ReLU if fused.
 * mean and var (typically the running statistics) are required; gamma and beta
 * only with BNORM_FLAG_AFFINE. y == x (in place) is allowed. One value per
 * channel is fine here. Allocates no memory. */
BNORM_API bnorm_status bnorm_forward_inference(const bnorm_desc* desc, const bnorm_shape* shape,
                                               const void* x, void* y, const float* mean,
                                               const float* var, const float* gamma,
                                               const float* beta);

/* Training forward: normalizes with the batch statistics (biased variance),
 * then ReLU if fused, like torch.nn.functional.batch_norm(training=True).
 * With BNORM_FLAG_TRACK_RUNNING_STATS, running_mean and running_var (required)
 * are updated with momentum, the variance unbiased by count / (count - 1);
 * without it they are ignored and may be NULL. save_mean and
 * save_invstd = 1 / sqrt(var_biased + eps) are written when non-NULL, for
 * bnorm_backward. y == x (in place) is allowed.
 * Memory: one scratch block per call for the partial sums, at most
 * 2 MiB + 8 KiB x num_features, freed before the call returns (the same for
 * bnorm_backward). */
BNORM_API bnorm_status bnorm_forward_training(const bnorm_desc* desc, const bnorm_shape* shape,
                                              const void* x, void* y, const float* gamma,
                                              const float* beta, float* running_mean,
                                              float* running_var, float* save_mean,
                                              float* save_invstd);

/* Backward, like PyTorch's native_batch_norm_backward:
 * - training mode (default): the statistics depend on x;
 *   save_mean and save_invstd are those written by bnorm_forward_training.
 * - BNORM_FLAG_USE_GLOBAL_STATS: frozen statistics, dx = dy * gamma * invstd;
 *   pass the running mean and 1 / sqrt(running_var + eps) as save_mean and
 *   save_invstd.
 * With BNORM_FLAG_FUSE_RELU, dy is first zeroed where y <= 0, so y, the forward
 * output, is required; otherwise y may be NULL. gamma is required with
 * BNORM_FLAG_AFFINE (else taken as 1). dgamma = sum(dy * (x - mean)) * invstd
 * and dbeta = sum(dy). Any of dx, dgamma, dbeta may be NULL to skip it.
 * dx == dy (in place) is allowed. Training-mode backward with one value per
 * channel is BNORM_ERR_TOO_FEW_VALUES. */
BNORM_API bnorm_status bnorm_backward(const bnorm_desc* desc, const bnorm_shape* shape,
                                      const void* x, const void* dy, const void* y,
                                      const float* gamma, const float* save_mean,
                                      const float* save_invstd, void* dx, float* dgamma,
                                      float* dbeta);

/* ---------------------------------------------------------------- folding
 *
 * Batch norm in eval mode is a per-channel affine map, y = x * scale + shift:
 *   scale[c] = gamma[c] / sqrt(var[c] + eps),  shift[c] = beta[c] - mean[c] * scale[c]
 * with gamma 1 and beta 0 when BNORM_FLAG_AFFINE is not set. A runtime
 * computes it once when it loads a model, or folds it into the layer before.
 * From the descriptor these calls use num_features, eps and
 * BNORM_FLAG_AFFINE (bnorm_forward_scale_shift: BNORM_FLAG_FUSE_RELU, the
 * layout, dtype and num_threads); the other fields are validated as everywhere.
 * Results are computed in double precision and rounded once. Since 1.1. */

/* scale and shift (float[num_features] each) from the layer's statistics
 * (mean, var) and parameters (gamma, beta, required with BNORM_FLAG_AFFINE).
 * The outputs may not overlap an input or each other. */
BNORM_API bnorm_status bnorm_fold_scale_shift(const bnorm_desc* desc, const float* mean,
                                              const float* var, const float* gamma,
                                              const float* beta, float* scale, float* shift);

/* Inference with a precomputed scale and shift: y = x * scale[c] + shift[c]
 * (one rounding), then ReLU with BNORM_FLAG_FUSE_RELU. Validated like
 * bnorm_forward_inference, whose result it matches to float rounding;
 * y == x (in place) is allowed. Allocates no memory. */
BNORM_API bnorm_status bnorm_forward_scale_shift(const bnorm_desc* desc, const bnorm_shape* shape,
                                                 const void* x, void* y, const float* scale,
                                                 const float* shift);

/* Folds batch norm into the layer before it, a convolution or linear layer
 * whose output channels are the batch norm's num_features channels:
 *   folded_weights[o * row_length + k] = weights[o * row_length + k] * scale[o]
 *   folded_bias[o] = (bias[o] - mean[o]) * scale[o] + beta[o]
 * with scale as above. The weights are num_features rows of row_length floats,
 * output channel first: convolution weights in OIHW or OHWI order (row_length
 * = in_channels * kernel size), linear weights (out, in) (row_length = in).
 * bias NULL means the layer has none (0); folded_bias is always written.
 * In place is allowed (folded_weights == weights, folded_bias == bias); any
 * other overlap is BNORM_ERR_ALIASING. row_length <= 0, or a weight count that
 * overflows, is BNORM_ERR_INVALID_ARGUMENT (checked after the descriptor). */
BNORM_API bnorm_status bnorm_fold_into_layer(const bnorm_desc* desc, int64_t row_length,
                                             const float* weights, const float* bias,
                                             const float* mean, const float* var,
                                             const float* gamma, const float* beta,
                                             float* folded_weights, float* folded_bias);

/* ------------------------------------------------------- residual add
 *
 * The tail of a ResNet block, batch norm then the skip connection's add then
 * ReLU, in one pass over memory (oneDNN's fuse_norm_add_relu):
 *   y = bn(x) + residual, then y = max(y, 0) with BNORM_FLAG_FUSE_RELU.
 * residual (and d_residual) are tensors of x's shape and dtype. Each call is
 * validated like the call without a residual, and gives its float32 result
 * plus the residual in float32, then the ReLU. Since 1.2. */

/* bnorm_forward_inference plus the residual. y may be exactly x or exactly
 * residual (in place). Allocates no memory. */
BNORM_API bnorm_status bnorm_forward_inference_residual(const bnorm_desc* desc,
                                                        const bnorm_shape* shape, const void* x,
                                                        const void* residual, void* y,
                                                        const float* mean, const float* var,
                                                        const float* gamma, const float* beta);

/* bnorm_forward_training plus the residual; the statistics are x's. y may be
 * exactly x or exactly residual. */
BNORM_API bnorm_status bnorm_forward_training_residual(const bnorm_desc* desc,
                                                       const bnorm_shape* shape, const void* x,
                                                       const void* residual, void* y,
                                                       const float* gamma, const float* beta,
                                                       float* running_mean, float* running_var,
                                                       float* save_mean, float* save_invstd);

/* The backward of the calls above: with g = dy, zeroed where the forward
 * output y <= 0 with BNORM_FLAG_FUSE_RELU, d_residual = g and dx, dgamma,
 * dbeta are bnorm_backward's with g for dy. (bnorm_backward with
 * BNORM_FLAG_FUSE_RELU and this y gives the same dx, without d_residual.)
 * dx and d_residual are required; dgamma, dbeta may be NULL. Either dx or
 * d_residual (not both) may be exactly dy. y is required with
 * BNORM_FLAG_FUSE_RELU. */
BNORM_API bnorm_status bnorm_backward_residual(const bnorm_desc* desc, const bnorm_shape* shape,
                                               const void* x, const void* dy, const void* y,
                                               const float* gamma, const float* save_mean,
                                               const float* save_invstd, void* dx, void* d_residual,
                                               float* dgamma, float* dbeta);

/* ------------------------------------------------ split phases (distributed)
 *
 * Training batch norm over a batch spread across processes (PyTorch's
 * SyncBatchNorm): each process holds some samples of one batch, and every
 * process must normalize with the statistics of the whole batch. bnorm_forward_
 * training and bnorm_backward each split into a local reduction, an exchange
 * the caller makes with any collective engine (MPI, NCCL-style allreduce,
 * gloo), and the rest:
 *
 *   forward:  bnorm_local_stats -> allgather -> bnorm_merge_stats
 *             -> bnorm_forward_normalize
 *   backward: bnorm_backward_reduce -> allgather or allreduce(sum)
 *             -> bnorm_backward_elementwise
 *
 * Exchanged data is double[3 * num_features], three values per channel c:
 *   stats (bnorm_local_stats):    [3c] count, [3c+1] mean, [3c+2] M2, the sum
 *                                 of squared deviations from that mean;
 *   grad sums (bnorm_backward_reduce): [3c] count, [3c+1] sum(g),
 *                                 [3c+2] sum(g * (x - mean)), where g is dy,
 *                                 zeroed where y <= 0 with BNORM_FLAG_FUSE_RELU.
 * Stats are merged, not summed: gather every process's block in a fixed order
 * (MPI_Allgather) and pass them all to bnorm_merge_stats. Grad sums are plain
 * sums: either gather them all, or sum them (MPI_Allreduce with MPI_SUM) and
 * pass the one sum. The merge functions add the blocks in index order, so
 * every process that passes the same blocks gets bit-identical results.
 * A process whose part has one value per channel (one sample, spatial size 1)
 * takes part normally; only the whole batch needs more than one value. A
 * process with no samples this step contributes a block of zeros (count 0),
 * which the merges skip; the shaped calls need at least one sample.
 * docs/distributed.md shows the exchange with MPI and the bytes it moves.
 * Since 1.2. */

/* Values per channel in the exchanged double arrays. */
#define BNORM_SPLIT_VALUES_PER_CHANNEL 3

/* This process's part of the batch statistics: partial_stats (double[3 *
 * num_features]) gets, per channel, the count of values, their mean and M2,
 * from the one-pass kernel of bnorm_forward_training. One value per channel is
 * fine. Memory: as bnorm_forward_training. */
BNORM_API bnorm_status bnorm_local_stats(const bnorm_desc* desc, const bnorm_shape* shape,
                                         const void* x, double* partial_stats);

/* Merges num_partials blocks of stats (num_partials * 3 * num_features doubles,
 * block after block, e.g. as MPI_Allgather lays them out) with Chan's parallel
 * formula, in block order, into the whole batch's statistics:
 * - mean (float[num_features]) and invstd = 1 / sqrt(var_biased + eps), for
 *   bnorm_forward_normalize and the backward phases; either may be NULL;
 * - with BNORM_FLAG_TRACK_RUNNING_STATS, running_mean and running_var
 *   (required) updated as bnorm_forward_training does (momentum; variance
 *   unbiased by count / (count - 1)); otherwise they are ignored;
 * - merged_stats, when not NULL: the merged (count, mean, M2) block, itself a
 *   valid partial (for a hierarchical merge) while its count is at most 2^53.
 *   It may be exactly partial_stats (the first block is then overwritten).
 * Every block's counts must be whole numbers from 0 to 2^53 (a block with
 * count 0 is skipped) and its M2 >= 0 (NaN, from NaN data, passes through),
 * else BNORM_ERR_INVALID_ARGUMENT naming the block and channel. Then, in
 * channel order, a total count <= 1 is BNORM_ERR_TOO_FEW_VALUES. From the descriptor it uses
 * num_features, eps, momentum and the flag; the other fields are validated.
 * Allocates no memory. */
BNORM_API bnorm_status bnorm_merge_stats(const bnorm_desc* desc, int32_t num_partials,
                                         const double* partial_stats, double* merged_stats,
                                         float* mean, float* invstd, float* running_mean,
                                         float* running_var);

/* The elementwise half of training forward with given statistics:
 *   y = (x - mean) * invstd * gamma + beta, then ReLU if fused.
 * mean and invstd as bnorm_merge_stats writes them; gamma and beta only with
 * BNORM_FLAG_AFFINE. y == x (in place) is allowed. Allocates no memory.
 * Precision: the shared mean is a float, so y also carries its rounding, at
 * most half a float ulp of the mean times |gamma| * invstd (as in PyTorch's
 * SyncBatchNorm); bnorm_forward_training keeps the mean's low bits. This
 * shows only where |mean| is large against the standard deviation. */
BNORM_API bnorm_status bnorm_forward_normalize(const bnorm_desc* desc, const bnorm_shape* shape,
                                               const void* x, void* y, const float* gamma,
                                               const float* beta, const float* mean,
                                               const float* invstd);

/* This process's part of the backward sums: grad_sums (double[3 *
 * num_features]) as described above, with mean and invstd the whole batch's.
 * y, the forward output, is required with BNORM_FLAG_FUSE_RELU. dgamma =
 * sum(g * (x - mean)) * invstd and dbeta = sum(g) over this process's part
 * only, when not NULL: data-parallel training sums them with the other
 * parameter gradients. (The whole batch's are in the exchanged sums too:
 * dbeta[c] = the total of [3c+1], dgamma[c] = that of [3c+2] * invstd[c].)
 * Memory: as bnorm_backward. */
BNORM_API bnorm_status bnorm_backward_reduce(const bnorm_desc* desc, const bnorm_shape* shape,
                                             const void* x, const void* dy, const void* y,
                                             const float* mean, const float* invstd,
                                             double* grad_sums, float* dgamma, float* dbeta);

/* dx of this process's part from the whole batch's grad sums: num_partials
 * blocks of grad sums (all processes' blocks, or 1 block already summed),
 * added in block order. dx is what bnorm_backward gives for the whole batch,
 * restricted to this part. Every block's counts must be whole numbers from 0
 * to 2^53 (else BNORM_ERR_INVALID_ARGUMENT naming the block and channel);
 * then, in channel order, each total count must be at least this part's
 * values per channel (else BNORM_ERR_INVALID_ARGUMENT) and more than 1 (else
 * BNORM_ERR_TOO_FEW_VALUES).
 * With BNORM_FLAG_USE_GLOBAL_STATS dx = dy * gamma * invstd: grad_sums is not
 * read and may be NULL. y is required with BNORM_FLAG_FUSE_RELU, gamma with
 * BNORM_FLAG_AFFINE. dx == dy (in place) is allowed.
 * Memory: one block of 36 bytes x num_features (plus up to 4) per call. */
BNORM_API bnorm_status bnorm_backward_elementwise(const bnorm_desc* desc, const bnorm_shape* shape,
                                                  const void* x, const void* dy, const void* y,
                                                  const float* gamma, const float* mean,
                                                  const float* invstd, int32_t num_partials,
                                                  const double* grad_sums, void* dx);

/* ------------------------------------------------------------ diagnostics */

/* Name of the SIMD target bnorm's calls use in this process, e.g. "AVX2",
 * "AVX3", "SCALAR". Static storage, never NULL. Best first, the names are
 * "AVX3_DL" (recognized, not compiled in), "AVX3_BF16" (since 1.5.0: AVX3
 * with AVX512_BF16's rounding of bf16 outputs, giving the same bits as AVX3),
 * "AVX3", "AVX2", "SSE4", "SSSE3" and "SCALAR". */
BNORM_API const char* bnorm_active_target(void);

/* Number of SIMD targets compiled into this library that this CPU can run;
 * bnorm_target_name(i) names them, best first (i from 0). An index out of
 * range gives "". The last one is always "SCALAR". */
BNORM_API int32_t bnorm_target_count(void);
BNORM_API const char* bnorm_target_name(int32_t index);

/* Caps the SIMD target that bnorm's calls use in this process at `name` (one
 * of the names above, or a better one this CPU lacks, e.g. "AVX3"); NULL, ""
 * or "BEST" removes the cap. It affects bnorm only, never other users of
 * Highway in the process. Calls already running finish on their target. The
 * environment variable BNORM_MAX_ISA, read once at the first call, sets the
 * initial cap the same way. Unknown name: BNORM_ERR_INVALID_ARGUMENT. */
BNORM_API bnorm_status bnorm_set_max_target(const char* name);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BNORM_BNORM_H_ */
