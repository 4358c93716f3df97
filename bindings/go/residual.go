package bnorm

/*
#include "gobnorm.h"

static gobnorm_result gobnorm_forward_inference_residual(const bnorm_desc* d,
                                                         const bnorm_shape* s, const void* x,
                                                         const void* residual, void* y,
                                                         const float* mean, const float* var,
                                                         const float* gamma, const float* beta) {
  return gobnorm_finish(
      bnorm_forward_inference_residual(d, s, x, residual, y, mean, var, gamma, beta));
}

static gobnorm_result gobnorm_forward_training_residual(const bnorm_desc* d, const bnorm_shape* s,
                                                        const void* x, const void* residual,
                                                        void* y, const float* gamma,
                                                        const float* beta, float* running_mean,
                                                        float* running_var, float* save_mean,
                                                        float* save_invstd) {
  return gobnorm_finish(bnorm_forward_training_residual(d, s, x, residual, y, gamma, beta,
                                                        running_mean, running_var, save_mean,
                                                        save_invstd));
}

static gobnorm_result gobnorm_backward_residual(const bnorm_desc* d, const bnorm_shape* s,
                                                const void* x, const void* dy, const void* y,
                                                const float* gamma, const float* save_mean,
                                                const float* save_invstd, void* dx,
                                                void* d_residual, float* dgamma, float* dbeta) {
  return gobnorm_finish(bnorm_backward_residual(d, s, x, dy, y, gamma, save_mean, save_invstd, dx,
                                                d_residual, dgamma, dbeta));
}
*/
import "C"

// The tail of a ResNet block, batch norm then the skip connection's add then
// ReLU, in one pass over memory: y = bn(x) + residual, then max(y, 0) with
// FuseReLU. residual is a tensor of x's shape. Each call is validated like the
// call without a residual and gives its result followed by the add (and the
// ReLU), to float32 rounding.

// ForwardInferenceResidual is ForwardInference plus a residual:
// y = (x - mean) / sqrt(variance + eps) * gamma + beta + residual, then ReLU if
// fused. gamma and beta are read only with Affine. residual is required. y may
// be x itself or residual itself (in place).
func ForwardInferenceResidual[T Element](d Descriptor, s Shape, x, residual, y []T, mean, variance,
	gamma, beta []float32) error {
	const op = "ForwardInferenceResidual"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"residual", len(residual), true}, {"y", len(y), true},
		{"mean", len(mean), false}, {"var", len(variance), false}, {"gamma", len(gamma), false},
		{"beta", len(beta), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_forward_inference_residual(&cd, &cs, tensor(x), tensor(residual),
		tensor(y), ptr(mean), ptr(variance), ptr(gamma), ptr(beta)))
}

// ForwardTrainingResidual is ForwardTraining plus a residual: x is normalized
// with its own batch statistics, residual is added, then ReLU if fused. The
// statistics (saveMean and saveInvstd when non-empty, the running statistics
// with TrackRunningStats) are x's, as ForwardTraining writes them. residual is
// required. y may be x itself or residual itself (in place).
func ForwardTrainingResidual[T Element](d Descriptor, s Shape, x, residual, y []T, gamma, beta,
	runningMean, runningVar, saveMean, saveInvstd []float32) error {
	const op = "ForwardTrainingResidual"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"residual", len(residual), true}, {"y", len(y), true},
		{"gamma", len(gamma), false}, {"beta", len(beta), false},
		{"running_mean", len(runningMean), false}, {"running_var", len(runningVar), false},
		{"save_mean", len(saveMean), false}, {"save_invstd", len(saveInvstd), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_forward_training_residual(&cd, &cs, tensor(x), tensor(residual),
		tensor(y), ptr(gamma), ptr(beta), ptr(runningMean), ptr(runningVar), ptr(saveMean),
		ptr(saveInvstd)))
}

// BackwardResidual is the backward of ForwardInferenceResidual and
// ForwardTrainingResidual. With g = dy, zeroed where the forward output y <= 0
// with FuseReLU: dResidual = g, and dx, dgamma and dbeta are Backward's with g
// for dy (Backward with FuseReLU and this y gives the same dx). y is needed
// with FuseReLU only, gamma with Affine only; saveMean and saveInvstd as for
// Backward. dx and dResidual are required; dgamma and dbeta may be nil. Either
// dx or dResidual, not both, may be dy itself (in place).
func BackwardResidual[T Element](d Descriptor, s Shape, x, dy, y []T, gamma, saveMean,
	saveInvstd []float32, dx, dResidual []T, dgamma, dbeta []float32) error {
	const op = "BackwardResidual"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"dy", len(dy), true}, {"y", len(y), true},
		{"gamma", len(gamma), false}, {"save_mean", len(saveMean), false},
		{"save_invstd", len(saveInvstd), false}, {"dx", len(dx), true},
		{"d_residual", len(dResidual), true}, {"dgamma", len(dgamma), false},
		{"dbeta", len(dbeta), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_backward_residual(&cd, &cs, tensor(x), tensor(dy), tensor(y),
		ptr(gamma), ptr(saveMean), ptr(saveInvstd), tensor(dx), tensor(dResidual), ptr(dgamma),
		ptr(dbeta)))
}
