// Built with -fno-tree-vectorize (see CMakeLists.txt): the row is the scalar
// baseline, and what the compiler manages to vectorize here is beside the point.
#include "naive.h"

#include <cmath>
#include <vector>

namespace bnorm_bench {
namespace {

// Calls f(i, c) for element i of channel c, walking memory in order.
template <class F>
void ForEachElement(const LogicalShape& s, Layout layout, F f) {
  const int64_t spatial = s.h * s.w;
  int64_t i = 0;
  if (layout == Layout::kNCHW) {
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t p = 0; p < spatial; ++p) f(i++, c);
  } else {
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t p = 0; p < spatial; ++p)
        for (int64_t c = 0; c < s.c; ++c) f(i++, c);
  }
}

}  // namespace

void NaiveInference(const LogicalShape& s, Layout layout, const float* x, float* y,
                    const float* mean, const float* var, const float* gamma, const float* beta,
                    float eps) {
  std::vector<double> invstd(s.c);
  for (int64_t c = 0; c < s.c; ++c) invstd[c] = 1.0 / std::sqrt(double{var[c]} + eps);
  ForEachElement(s, layout, [&](int64_t i, int64_t c) {
    y[i] = static_cast<float>((x[i] - double{mean[c]}) * invstd[c] * gamma[c] + beta[c]);
  });
}

void NaiveTraining(const LogicalShape& s, Layout layout, const float* x, float* y,
                   const float* gamma, const float* beta, float eps, float momentum,
                   float* running_mean, float* running_var, float* save_mean, float* save_var,
                   float* save_invstd) {
  const double count = static_cast<double>(s.ValuesPerChannel());
  std::vector<double> mean(s.c, 0.0), var(s.c, 0.0), invstd(s.c);
  // Pass 1: mean.
  ForEachElement(s, layout, [&](int64_t i, int64_t c) { mean[c] += x[i]; });
  for (int64_t c = 0; c < s.c; ++c) mean[c] /= count;
  // Pass 2: biased variance from squared deviations.
  ForEachElement(s, layout, [&](int64_t i, int64_t c) {
    const double d = x[i] - mean[c];
    var[c] += d * d;
  });
  for (int64_t c = 0; c < s.c; ++c) {
    var[c] /= count;
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    save_mean[c] = static_cast<float>(mean[c]);
    save_var[c] = static_cast<float>(var[c]);
    save_invstd[c] = static_cast<float>(invstd[c]);
    const double unbiased = count > 1 ? var[c] * count / (count - 1) : var[c];
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
  }
  // Pass 3: normalize.
  ForEachElement(s, layout, [&](int64_t i, int64_t c) {
    y[i] = static_cast<float>((x[i] - mean[c]) * invstd[c] * gamma[c] + beta[c]);
  });
}

void NaiveBackward(const LogicalShape& s, Layout layout, const float* x, const float* dy,
                   const float* gamma, const float* mean, const float* invstd, float* dx,
                   float* dgamma, float* dbeta) {
  const double count = static_cast<double>(s.ValuesPerChannel());
  std::vector<double> sum_dy(s.c, 0.0), sum_dy_xmu(s.c, 0.0);
  // Pass 1: the two reductions.
  ForEachElement(s, layout, [&](int64_t i, int64_t c) {
    sum_dy[c] += dy[i];
    sum_dy_xmu[c] += double{dy[i]} * (x[i] - double{mean[c]});
  });
  std::vector<double> scale(s.c), mean_dy(s.c), proj(s.c);
  for (int64_t c = 0; c < s.c; ++c) {
    const double is = invstd[c];
    dbeta[c] = static_cast<float>(sum_dy[c]);
    dgamma[c] = static_cast<float>(sum_dy_xmu[c] * is);
    scale[c] = double{gamma[c]} * is;
    mean_dy[c] = sum_dy[c] / count;
    proj[c] = sum_dy_xmu[c] * is * is / count;  // mean(dy * xhat) * invstd
  }
  // Pass 2: dx.
  ForEachElement(s, layout, [&](int64_t i, int64_t c) {
    dx[i] = static_cast<float>(scale[c] * (dy[i] - mean_dy[c] - (x[i] - mean[c]) * proj[c]));
  });
}

}  // namespace bnorm_bench
