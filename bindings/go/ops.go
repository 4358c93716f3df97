package bnorm

/*
#include "gobnorm.h"

static gobnorm_result gobnorm_forward_inference(const bnorm_desc* d, const bnorm_shape* s,
                                                const void* x, void* y, const float* mean,
                                                const float* var, const float* gamma,
                                                const float* beta) {
  return gobnorm_finish(bnorm_forward_inference(d, s, x, y, mean, var, gamma, beta));
}

static gobnorm_result gobnorm_forward_training(const bnorm_desc* d, const bnorm_shape* s,
                                               const void* x, void* y, const float* gamma,
                                               const float* beta, float* running_mean,
                                               float* running_var, float* save_mean,
                                               float* save_invstd) {
  return gobnorm_finish(bnorm_forward_training(d, s, x, y, gamma, beta, running_mean, running_var,
                                               save_mean, save_invstd));
}

static gobnorm_result gobnorm_backward(const bnorm_desc* d, const bnorm_shape* s, const void* x,
                                       const void* dy, const void* y, const float* gamma,
                                       const float* save_mean, const float* save_invstd,
                                       void* dx, float* dgamma, float* dbeta) {
  return gobnorm_finish(
      bnorm_backward(d, s, x, dy, y, gamma, save_mean, save_invstd, dx, dgamma, dbeta));
}

static gobnorm_result gobnorm_fold_scale_shift(const bnorm_desc* d, const float* mean,
                                               const float* var, const float* gamma,
                                               const float* beta, float* scale, float* shift) {
  return gobnorm_finish(bnorm_fold_scale_shift(d, mean, var, gamma, beta, scale, shift));
}

static gobnorm_result gobnorm_forward_scale_shift(const bnorm_desc* d, const bnorm_shape* s,
                                                  const void* x, void* y, const float* scale,
                                                  const float* shift) {
  return gobnorm_finish(bnorm_forward_scale_shift(d, s, x, y, scale, shift));
}

static gobnorm_result gobnorm_fold_into_layer(const bnorm_desc* d, int64_t row_length,
                                              const float* weights, const float* bias,
                                              const float* mean, const float* var,
                                              const float* gamma, const float* beta,
                                              float* folded_weights, float* folded_bias) {
  return gobnorm_finish(bnorm_fold_into_layer(d, row_length, weights, bias, mean, var, gamma,
                                              beta, folded_weights, folded_bias));
}
*/
import "C"

// ForwardInference normalizes x with given statistics (eval mode):
// y = (x - mean) / sqrt(variance + eps) * gamma + beta, then ReLU if fused.
// gamma and beta are read only with Affine. y may be x itself (in place).
func ForwardInference[T Element](d Descriptor, s Shape, x, y []T, mean, variance, gamma,
	beta []float32) error {
	const op = "ForwardInference"
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"y", len(y), true}, {"mean", len(mean), false},
		{"var", len(variance), false}, {"gamma", len(gamma), false}, {"beta", len(beta), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_forward_inference(&cd, &cs, tensor(x), tensor(y), ptr(mean),
		ptr(variance), ptr(gamma), ptr(beta)))
}

// ForwardTraining normalizes x with its own batch statistics (biased
// variance), then ReLU if fused, like torch.nn.functional.batch_norm with
// training=True. With TrackRunningStats, runningMean and runningVar are
// updated with momentum (unbiased variance). saveMean and saveInvstd, for
// Backward, are written when non-empty. y may be x itself (in place).
func ForwardTraining[T Element](d Descriptor, s Shape, x, y []T, gamma, beta, runningMean,
	runningVar, saveMean, saveInvstd []float32) error {
	const op = "ForwardTraining"
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"y", len(y), true}, {"gamma", len(gamma), false},
		{"beta", len(beta), false}, {"running_mean", len(runningMean), false},
		{"running_var", len(runningVar), false}, {"save_mean", len(saveMean), false},
		{"save_invstd", len(saveInvstd), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_forward_training(&cd, &cs, tensor(x), tensor(y), ptr(gamma),
		ptr(beta), ptr(runningMean), ptr(runningVar), ptr(saveMean), ptr(saveInvstd)))
}

// Backward computes the gradients, like PyTorch's native_batch_norm_backward.
// In training mode saveMean and saveInvstd are those of ForwardTraining; with
// UseGlobalStats they are the running mean and 1/sqrt(running_var + eps). y,
// the forward output, is needed with FuseReLU only; gamma with Affine only.
// Any of dx, dgamma, dbeta may be nil to skip it; dx may be dy itself.
func Backward[T Element](d Descriptor, s Shape, x, dy, y []T, gamma, saveMean, saveInvstd []float32,
	dx []T, dgamma, dbeta []float32) error {
	const op = "Backward"
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"dy", len(dy), true}, {"y", len(y), true},
		{"gamma", len(gamma), false}, {"save_mean", len(saveMean), false},
		{"save_invstd", len(saveInvstd), false}, {"dx", len(dx), true},
		{"dgamma", len(dgamma), false}, {"dbeta", len(dbeta), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_backward(&cd, &cs, tensor(x), tensor(dy), tensor(y), ptr(gamma),
		ptr(saveMean), ptr(saveInvstd), tensor(dx), ptr(dgamma), ptr(dbeta)))
}

// FoldScaleShift writes batch norm in eval mode as the per-channel affine map
// y = x*scale + shift: scale = gamma / sqrt(variance + eps) and
// shift = beta - mean*scale, with gamma 1 and beta 0 without Affine (gamma and
// beta are then not read). Of d it uses NumFeatures, Eps and Affine; the other
// fields are validated as everywhere. Computed in float64 and rounded once.
// scale and shift may not be inputs or each other.
func FoldScaleShift(d Descriptor, mean, variance, gamma, beta, scale, shift []float32) error {
	const op = "FoldScaleShift"
	if err := needs(op, version11); err != nil {
		return err
	}
	if err := checkLayerLengths(op, &d, 0, []arg{
		{"mean", len(mean), false}, {"var", len(variance), false}, {"gamma", len(gamma), false},
		{"beta", len(beta), false}, {"scale", len(scale), false}, {"shift", len(shift), false},
	}); err != nil {
		return err
	}
	cd := d.c(C.BNORM_DTYPE_F32)
	return result(op, C.gobnorm_fold_scale_shift(&cd, ptr(mean), ptr(variance), ptr(gamma),
		ptr(beta), ptr(scale), ptr(shift)))
}

// ForwardScaleShift is inference with a precomputed scale and shift (from
// FoldScaleShift): y = x*scale + shift, rounded once, then ReLU if fused. It
// is validated like ForwardInference, whose result it matches to float32
// rounding. y may be x itself (in place).
func ForwardScaleShift[T Element](d Descriptor, s Shape, x, y []T, scale, shift []float32) error {
	const op = "ForwardScaleShift"
	if err := needs(op, version11); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"y", len(y), true}, {"scale", len(scale), false},
		{"shift", len(shift), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_forward_scale_shift(&cd, &cs, tensor(x), tensor(y), ptr(scale),
		ptr(shift)))
}

// FoldIntoLayer folds batch norm into the layer before it, a convolution or
// linear layer whose output channels are the batch norm's NumFeatures
// channels:
//
//	foldedWeights[o*rowLength+k] = weights[o*rowLength+k] * scale[o]
//	foldedBias[o] = (bias[o] - mean[o]) * scale[o] + beta[o]
//
// with scale as in FoldScaleShift. weights are NumFeatures rows, output channel
// first: convolution weights in OIHW or OHWI order, linear weights (out, in).
// The row length is len(weights) / NumFeatures, so len(weights) must be a
// multiple of NumFeatures, and foldedWeights as long as weights. bias nil means
// the layer has none (0); foldedBias is always written. In place: pass weights
// as foldedWeights and bias as foldedBias.
func FoldIntoLayer(d Descriptor, weights, bias, mean, variance, gamma, beta, foldedWeights,
	foldedBias []float32) error {
	const op = "FoldIntoLayer"
	if err := needs(op, version11); err != nil {
		return err
	}
	// Where the library fails before reading weights (num_features <= 0, or
	// weights NULL), any row_length > 0 lets it report that instead.
	rowLength := int64(1)
	if d.NumFeatures > 0 && len(weights) != 0 {
		if int64(len(weights))%d.NumFeatures != 0 {
			return &LengthError{Op: op, Arg: "weights", Got: len(weights),
				Want: int(d.NumFeatures), Of: "num_features", Multiple: true}
		}
		rowLength = int64(len(weights)) / d.NumFeatures
	}
	if err := checkLayerLengths(op, &d, len(weights), []arg{
		{"bias", len(bias), false}, {"mean", len(mean), false}, {"var", len(variance), false},
		{"gamma", len(gamma), false}, {"beta", len(beta), false},
		{"folded_weights", len(foldedWeights), true}, {"folded_bias", len(foldedBias), false},
	}); err != nil {
		return err
	}
	cd := d.c(C.BNORM_DTYPE_F32)
	return result(op, C.gobnorm_fold_into_layer(&cd, C.int64_t(rowLength), ptr(weights),
		ptr(bias), ptr(mean), ptr(variance), ptr(gamma), ptr(beta), ptr(foldedWeights),
		ptr(foldedBias)))
}

func result(op string, r C.gobnorm_result) error {
	if r.status == C.BNORM_OK {
		return nil
	}
	return &Error{Op: op, Status: Status(r.status), Message: C.GoString(&r.message[0])}
}
