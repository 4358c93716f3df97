#include <cmath>

#include "src/batch_norm.h"
#include "src/normalize_driver.h"
#include "src/parallel.h"

namespace bnorm {

void ForwardInference(const Problem& pr, const KernelTable<float>& k, const float* x, float* y,
                      const float* mean, const float* var, const float* gamma, const float* beta) {
  const Plan& p = pr.plan;
  const double eps = pr.eps;
  const bool affine = pr.affine;
  const auto channel_affine = [&](int64_t c, float* center, float* scale, float* shift) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    *center = mean[c];
    *scale = static_cast<float>(affine ? gamma[c] * invstd : invstd);
    *shift = affine ? beta[c] : 0.0f;
  };
  const double output_bytes = 4.0 * p.count * p.channels;
  const Elementwise options{pr.relu, ShouldStream(output_bytes, kInferenceStreamMinBytes)};
  RunParallel(ThreadsFor(pr.num_threads, 2 * output_bytes),
              [&](int t, int nt) { NormalizeShare(p, k, x, y, options, t, nt, channel_affine); });
}

void ForwardScaleShift(const Problem& pr, const KernelTable<float>& k, const float* x, float* y,
                       const float* scale, const float* shift) {
  const Plan& p = pr.plan;
  // The normalize kernels compute (x - center) * scale + shift with one FMA
  // after the subtraction; with center 0 that is x * scale + shift, rounded once.
  const auto channel_affine = [&](int64_t c, float* center, float* scale_c, float* shift_c) {
    *center = 0.0f;
    *scale_c = scale[c];
    *shift_c = shift[c];
  };
  const double output_bytes = 4.0 * p.count * p.channels;
  const Elementwise options{pr.relu, ShouldStream(output_bytes, kInferenceStreamMinBytes)};
  RunParallel(ThreadsFor(pr.num_threads, 2 * output_bytes),
              [&](int t, int nt) { NormalizeShare(p, k, x, y, options, t, nt, channel_affine); });
}

}  // namespace bnorm
