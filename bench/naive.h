// The baseline: batch norm as straightforward scalar C++ loops, one thread,
// statistics in two passes (mean, then squared deviations) with double
// accumulators. It is what a user gets without a library, and, being simple
// and accumulating in double, also the reference the peer check compares with.
#ifndef BNORM_BENCH_NAIVE_H_
#define BNORM_BENCH_NAIVE_H_

#include "shapes.h"

namespace bnorm_bench {

// y = (x - mean) / sqrt(var + eps) * gamma + beta.
void NaiveInference(const LogicalShape& s, Layout layout, const float* x, float* y,
                    const float* mean, const float* var, const float* gamma, const float* beta,
                    float eps);

// Batch statistics (biased variance), normalization, and the running-stats
// update with momentum (unbiased variance), as PyTorch's training forward.
void NaiveTraining(const LogicalShape& s, Layout layout, const float* x, float* y,
                   const float* gamma, const float* beta, float eps, float momentum,
                   float* running_mean, float* running_var, float* save_mean, float* save_var,
                   float* save_invstd);

// Training-mode gradient: dgamma = sum(dy * xhat), dbeta = sum(dy),
// dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
void NaiveBackward(const LogicalShape& s, Layout layout, const float* x, const float* dy,
                   const float* gamma, const float* mean, const float* invstd, float* dx,
                   float* dgamma, float* dbeta);

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_NAIVE_H_
