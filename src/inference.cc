#include <cmath>

#include "src/batch_norm.h"
#include "src/normalize_driver.h"
#include "src/parallel.h"

namespace bnorm {

namespace {

// y = (x - center[c]) * scale[c] + shift[c] (+ residual) over the whole
// tensor, the per-channel parameters from channel_affine(c, &center, &scale,
// &shift).
template <typename T, class ChannelAffine>
void NormalizeTensor(const Problem& pr, const KernelTable<T>& k, const T* x, const T* residual,
                     T* y, const ChannelAffine& channel_affine) {
  const Plan& p = pr.plan;
  const double output_bytes = static_cast<double>(sizeof(T)) * p.count * p.channels;
  const double bytes = (residual != nullptr ? 3 : 2) * output_bytes;
  const int threads = ThreadsFor(pr.num_threads, bytes);
  Elementwise options{pr.relu,
                      output_bytes >= kInferenceStreamMinBytes || bytes / threads > L2CacheBytes()};
  // Training leaves this off: its normalize pass follows the statistics pass
  // over the same channel, and walking that downwards cost 25-30% on
  // (32, 2048, 7, 7) f32, where its upward walk barely felt the aliasing.
  options.reverse_when_aliased = true;
  RunParallel(threads, [&](int t, int nt) {
    NormalizeShare(p, k, x, residual, y, options, t, nt, channel_affine);
  });
}

}  // namespace

template <typename T>
void ForwardInference(const Problem& pr, const KernelTable<T>& k, const T* x, const T* residual,
                      T* y, const float* mean, const float* var, const float* gamma,
                      const float* beta) {
  if (!pr.affine) gamma = beta = nullptr;
  NormalizeTensor(pr, k, x, residual, y, [&](int64_t c, float* center, float* scale, float* shift) {
    *center = mean[c];
    *scale = static_cast<float>(EvalScale(c, pr.eps, var, gamma));
    *shift = beta != nullptr ? beta[c] : 0.0f;
  });
}

// The normalize kernels compute (x - center) * scale + shift with one FMA
// after the subtraction; with center 0 that is x * scale + shift, rounded once.
template <typename T>
void ForwardScaleShift(const Problem& pr, const KernelTable<T>& k, const T* x, T* y,
                       const float* scale, const float* shift) {
  NormalizeTensor(pr, k, x, static_cast<const T*>(nullptr), y,
                  [&](int64_t c, float* center, float* scale_c, float* shift_c) {
                    *center = 0.0f;
                    *scale_c = scale[c];
                    *shift_c = shift[c];
                  });
}

// The normalize phase of split training forward: y = (x - mean) * scale +
// beta, scale = gamma * invstd rounded once.
template <typename T>
void ForwardNormalize(const Problem& pr, const KernelTable<T>& k, const T* x, T* y,
                      const float* gamma, const float* beta, const float* mean,
                      const float* invstd) {
  if (!pr.affine) gamma = beta = nullptr;
  NormalizeTensor(pr, k, x, static_cast<const T*>(nullptr), y,
                  [&](int64_t c, float* center, float* scale, float* shift) {
                    *center = mean[c];
                    const double g = gamma != nullptr ? gamma[c] : 1.0;
                    *scale = static_cast<float>(g * invstd[c]);
                    *shift = beta != nullptr ? beta[c] : 0.0f;
                  });
}

#define BNORM_INSTANTIATE_INFERENCE(T)                                                          \
  template void ForwardInference(const Problem&, const KernelTable<T>&, const T*, const T*, T*, \
                                 const float*, const float*, const float*, const float*);       \
  template void ForwardScaleShift(const Problem&, const KernelTable<T>&, const T*, T*,          \
                                  const float*, const float*);                                  \
  template void ForwardNormalize(const Problem&, const KernelTable<T>&, const T*, T*,           \
                                 const float*, const float*, const float*, const float*);
BNORM_FOR_EACH_ELEMENT_TYPE(BNORM_INSTANTIATE_INFERENCE)

}  // namespace bnorm
