// The drivers: one per mode, over valid input (the C API layer validated it
// and allocated the scratch). They choose threads, walk the plan and call the
// SIMD kernels of the table they are given. Each is a template over the
// tensor element type T (float, bf16, f16), instantiated for all three;
// per-channel vectors are float whatever T is.
#ifndef BNORM_SRC_BATCH_NORM_H_
#define BNORM_SRC_BATCH_NORM_H_

#include <stddef.h>
#include <stdint.h>

#include <cmath>

#include "src/element_types.h"
#include "src/kernel_table.h"
#include "src/problem.h"

namespace bnorm {

// residual may be null; when given, it is added before the ReLU.
template <typename T>
void ForwardInference(const Problem& pr, const KernelTable<T>& k, const T* x, const T* residual,
                      T* y, const float* mean, const float* var, const float* gamma,
                      const float* beta);

// y = x * scale[c] + shift[c] (then ReLU): inference with a folded layer.
template <typename T>
void ForwardScaleShift(const Problem& pr, const KernelTable<T>& k, const T* x, T* y,
                       const float* scale, const float* shift);

// The eval-mode scale of channel c, gamma[c] / sqrt(var[c] + eps) (gamma
// NULL: 1), in double precision: inference and folding share it.
inline double EvalScale(int64_t c, double eps, const float* var, const float* gamma) {
  const double g = gamma != nullptr ? gamma[c] : 1.0;
  return g / std::sqrt(static_cast<double>(var[c]) + eps);
}

// Folding batch norm (inference) into a per-channel scale and shift, or into
// the weights and bias of the layer before it; see bnorm.h. Computed in double
// precision, each result rounded once. gamma and beta NULL: 1 and 0.
void FoldScaleShift(int64_t channels, double eps, const float* mean, const float* var,
                    const float* gamma, const float* beta, float* scale, float* shift);
void FoldIntoLayer(int64_t channels, int64_t row_length, double eps, const float* weights,
                   const float* bias, const float* mean, const float* var, const float* gamma,
                   const float* beta, float* folded_weights, float* folded_bias);

// Bytes of scratch ForwardTraining needs: O(C) plus 16 bytes per 32K values
// (channels-first) or at most 2 MiB of partial sums (channels-last).
size_t TrainingScratchBytes(const Plan& p);
template <typename T>
void ForwardTraining(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x,
                     const T* residual, T* y, const float* gamma, const float* beta,
                     float* running_mean, float* running_var, float* save_mean, float* save_invstd);

// What backward writes; any may be null. grad_sums: (count, sum(g),
// sum(g * (x - mean))) per channel, the split form's exchanged sums.
// d_residual (only with dx): g, the gradient of a residual added before the
// ReLU.
template <typename T>
struct BackwardOutputs {
  T* dx = nullptr;
  T* d_residual = nullptr;
  float* dgamma = nullptr;
  float* dbeta = nullptr;
  double* grad_sums = nullptr;
};

size_t BackwardScratchBytes(const Plan& p);
template <typename T>
void Backward(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x, const T* dy,
              const T* y, const float* gamma, const float* save_mean, const float* save_invstd,
              const BackwardOutputs<T>& out);

// The split (distributed) phases; see bnorm.h. Validated input: counts are
// whole, totals large enough.
size_t LocalStatsScratchBytes(const Plan& p);
template <typename T>
void LocalStats(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x,
                double* partial_stats);

// Merges num_partials (count, mean, M2) blocks of `channels` channels in block
// order; outputs may be null (running statistics: unless tracked).
void MergeStats(const Problem& pr, int64_t channels, int num_partials, const double* partial_stats,
                double* merged_stats, float* mean, float* invstd, float* running_mean,
                float* running_var);

// y = (x - mean) * invstd * gamma + beta (then ReLU).
template <typename T>
void ForwardNormalize(const Problem& pr, const KernelTable<T>& k, const T* x, T* y,
                      const float* gamma, const float* beta, const float* mean,
                      const float* invstd);

// dx from the sum of num_partials grad-sums blocks (not read with frozen
// statistics); the scratch holds BackwardElementwiseScratchBytes.
size_t BackwardElementwiseScratchBytes(const Plan& p);
template <typename T>
void BackwardElementwise(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x,
                         const T* dy, const T* y, const float* gamma, const float* mean,
                         const float* invstd, int num_partials, const double* grad_sums, T* dx);

}  // namespace bnorm

#endif  // BNORM_SRC_BATCH_NORM_H_
