// Batch norm in eval mode as the affine map a runtime folds it into.
#include "src/batch_norm.h"

namespace bnorm {
namespace {

double Beta(int64_t c, const float* beta) { return beta != nullptr ? beta[c] : 0.0; }

}  // namespace

void FoldScaleShift(int64_t channels, double eps, const float* mean, const float* var,
                    const float* gamma, const float* beta, float* scale, float* shift) {
  for (int64_t c = 0; c < channels; ++c) {
    const double s = EvalScale(c, eps, var, gamma);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(Beta(c, beta) - mean[c] * s);
  }
}

void FoldIntoLayer(int64_t channels, int64_t row_length, double eps, const float* weights,
                   const float* bias, const float* mean, const float* var, const float* gamma,
                   const float* beta, float* folded_weights, float* folded_bias) {
  for (int64_t o = 0; o < channels; ++o) {
    const double s = EvalScale(o, eps, var, gamma);
    const float* row = weights + o * row_length;
    float* folded_row = folded_weights + o * row_length;
    for (int64_t k = 0; k < row_length; ++k) {
      folded_row[k] = static_cast<float>(row[k] * s);
    }
    const double b = bias != nullptr ? bias[o] : 0.0;
    folded_bias[o] = static_cast<float>((b - mean[o]) * s + Beta(o, beta));
  }
}

}  // namespace bnorm
