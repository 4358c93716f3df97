// A float64 reference for every bnorm mode, written from the definitions
// (PyTorch's batch_norm semantics) with no attempt at speed, so the kernels can
// be checked against it on any shape, layout and flag combination.
#ifndef BNORM_TESTS_REFERENCE_H_
#define BNORM_TESTS_REFERENCE_H_

#include <stdint.h>

#include <vector>

#include "bnorm/bnorm.h"

namespace bnorm_test {

// A tensor seen as (N, C, S): batch, channels and the product of the spatial
// dimensions, whatever the rank, in either memory order.
struct Geometry {
  int64_t n = 1;
  int64_t c = 1;
  int64_t s = 1;
  bool nhwc = false;

  static Geometry Of(const bnorm_shape& shape, bnorm_layout layout);
  int64_t Elements() const { return n * c * s; }
  int64_t PerChannel() const { return n * s; }
  int64_t Index(int64_t batch, int64_t channel, int64_t spatial) const {
    return nhwc ? (batch * s + spatial) * c + channel : (batch * c + channel) * s + spatial;
  }
  // Calls f(index) for every element of `channel`.
  template <class F>
  void ForChannel(int64_t channel, const F& f) const {
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t i = 0; i < s; ++i) f(Index(b, channel, i));
    }
  }
};

struct Inputs {
  const float* gamma = nullptr;     // NULL: 1
  const float* beta = nullptr;      // NULL: 0
  const float* residual = nullptr;  // added before the ReLU; NULL: none
  double eps = 1e-5;
  bool relu = false;
};

std::vector<double> ReferenceInference(const Geometry& g, const float* x, const float* mean,
                                       const float* var, const Inputs& in);

struct TrainingResult {
  std::vector<double> y;
  std::vector<double> mean;
  std::vector<double> var;  // biased
  std::vector<double> invstd;
  std::vector<double> running_mean;  // updated from the given values
  std::vector<double> running_var;
};

TrainingResult ReferenceTraining(const Geometry& g, const float* x, const Inputs& in,
                                 double momentum, const float* running_mean,
                                 const float* running_var);

struct BackwardResult {
  std::vector<double> dx;
  std::vector<double> dgamma;
  std::vector<double> dbeta;
  // Per channel, the sum of |dy * (x - mean)| * invstd and of |dy|: the scale
  // of dgamma's and dbeta's rounding error.
  std::vector<double> dgamma_scale;
  std::vector<double> dbeta_scale;
};

// y is read only with in.relu; global_stats as BNORM_FLAG_USE_GLOBAL_STATS.
BackwardResult ReferenceBackward(const Geometry& g, const float* x, const float* dy, const float* y,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, bool relu, bool global_stats);

}  // namespace bnorm_test

#endif  // BNORM_TESTS_REFERENCE_H_
