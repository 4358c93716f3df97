package bnorm

/*
#include "gobnorm.h"

static gobnorm_result gobnorm_forward_inference_residual(const bnorm_desc* d,
                                                         const bnorm_shape* s, const float* x,
                                                         const float* residual, float* y,
                                                         const float* mean, const float* var,
                                                         const float* gamma, const float* beta) {
  return gobnorm_finish(
      bnorm_forward_inference_residual(d, s, x, residual, y, mean, var, gamma, beta));
}

static gobnorm_result gobnorm_forward_training_residual(const bnorm_desc* d, const bnorm_shape* s,
                                                        const float* x, const float* residual,
                                                        float* y, const float* gamma,
                                                        const float* beta, float* running_mean,
                                                        float* running_var, float* save_mean,
                                                        float* save_invstd) {
  return gobnorm_finish(bnorm_forward_training_residual(d, s, x, residual, y, gamma, beta,
                                                        running_mean, running_var, save_mean,
                                                        save_invstd));
}

static gobnorm_result gobnorm_backward_residual(const bnorm_desc* d, const bnorm_shape* s,
                                                const float* x, const float* dy, const float* y,
                                                const float* gamma, const float* save_mean,
                                                const float* save_invstd, float* dx,
                                                float* d_residual, float* dgamma, float* dbeta) {
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
func ForwardInferenceResidual(d Descriptor, s Shape, x, residual, y, mean, variance, gamma,
	beta []float32) error {
	const op = "ForwardInferenceResidual"
	if err := needs(op, version12); err != nil {
		return err
	}
	if err := checkLengths(op, &d, s, []arg{
		{"x", x, true}, {"residual", residual, true}, {"y", y, true}, {"mean", mean, false},
		{"var", variance, false}, {"gamma", gamma, false}, {"beta", beta, false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(), s.c()
	return result(op, C.gobnorm_forward_inference_residual(&cd, &cs, ptr(x), ptr(residual), ptr(y),
		ptr(mean), ptr(variance), ptr(gamma), ptr(beta)))
}

// ForwardTrainingResidual is ForwardTraining plus a residual: x is normalized
// with its own batch statistics, residual is added, then ReLU if fused. The
// statistics (saveMean and saveInvstd when non-empty, the running statistics
// with TrackRunningStats) are x's, as ForwardTraining writes them. residual is
// required. y may be x itself or residual itself (in place).
func ForwardTrainingResidual(d Descriptor, s Shape, x, residual, y, gamma, beta, runningMean,
	runningVar, saveMean, saveInvstd []float32) error {
	const op = "ForwardTrainingResidual"
	if err := needs(op, version12); err != nil {
		return err
	}
	if err := checkLengths(op, &d, s, []arg{
		{"x", x, true}, {"residual", residual, true}, {"y", y, true}, {"gamma", gamma, false},
		{"beta", beta, false}, {"running_mean", runningMean, false},
		{"running_var", runningVar, false}, {"save_mean", saveMean, false},
		{"save_invstd", saveInvstd, false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(), s.c()
	return result(op, C.gobnorm_forward_training_residual(&cd, &cs, ptr(x), ptr(residual), ptr(y),
		ptr(gamma), ptr(beta), ptr(runningMean), ptr(runningVar), ptr(saveMean), ptr(saveInvstd)))
}

// BackwardResidual is the backward of ForwardInferenceResidual and
// ForwardTrainingResidual. With g = dy, zeroed where the forward output y <= 0
// with FuseReLU: dResidual = g, and dx, dgamma and dbeta are Backward's with g
// for dy (Backward with FuseReLU and this y gives the same dx). y is needed
// with FuseReLU only, gamma with Affine only; saveMean and saveInvstd as for
// Backward. dx and dResidual are required; dgamma and dbeta may be nil. Either
// dx or dResidual, not both, may be dy itself (in place).
func BackwardResidual(d Descriptor, s Shape, x, dy, y, gamma, saveMean, saveInvstd, dx, dResidual,
	dgamma, dbeta []float32) error {
	const op = "BackwardResidual"
	if err := needs(op, version12); err != nil {
		return err
	}
	if err := checkLengths(op, &d, s, []arg{
		{"x", x, true}, {"dy", dy, true}, {"y", y, true}, {"gamma", gamma, false},
		{"save_mean", saveMean, false}, {"save_invstd", saveInvstd, false},
		{"dx", dx, true}, {"d_residual", dResidual, true}, {"dgamma", dgamma, false},
		{"dbeta", dbeta, false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(), s.c()
	return result(op, C.gobnorm_backward_residual(&cd, &cs, ptr(x), ptr(dy), ptr(y), ptr(gamma),
		ptr(saveMean), ptr(saveInvstd), ptr(dx), ptr(dResidual), ptr(dgamma), ptr(dbeta)))
}
