#include "tests/reference.h"

#include <cmath>

namespace bnorm_test {
namespace {

double Relu(double v, bool relu) { return relu && v < 0 ? 0.0 : v; }
double Residual(const Inputs& in, int64_t i) {
  return in.residual != nullptr ? double{in.residual[i]} : 0.0;
}
double Gamma(const Inputs& in, int64_t c) { return in.gamma ? in.gamma[c] : 1.0; }
double Beta(const Inputs& in, int64_t c) { return in.beta ? in.beta[c] : 0.0; }

}  // namespace

Geometry Geometry::Of(const bnorm_shape& shape, bnorm_layout layout) {
  Geometry g;
  g.nhwc = layout == BNORM_LAYOUT_NHWC;
  g.n = shape.dims[0];
  g.c = g.nhwc ? shape.dims[shape.rank - 1] : shape.dims[1];
  const int first_spatial = g.nhwc ? 1 : 2;
  const int end_spatial = g.nhwc ? shape.rank - 1 : shape.rank;
  for (int i = first_spatial; i < end_spatial; ++i) g.s *= shape.dims[i];
  return g;
}

std::vector<double> ReferenceInference(const Geometry& g, const float* x, const float* mean,
                                       const float* var, const Inputs& in) {
  std::vector<double> y(g.Elements());
  for (int64_t c = 0; c < g.c; ++c) {
    const double invstd = 1.0 / std::sqrt(double{var[c]} + in.eps);
    g.ForChannel(c, [&](int64_t i) {
      y[i] = Relu((x[i] - double{mean[c]}) * invstd * Gamma(in, c) + Beta(in, c) + Residual(in, i),
                  in.relu);
    });
  }
  return y;
}

TrainingResult ReferenceTraining(const Geometry& g, const float* x, const Inputs& in,
                                 double momentum, const float* running_mean,
                                 const float* running_var) {
  TrainingResult r;
  r.y.resize(g.Elements());
  const double count = static_cast<double>(g.PerChannel());
  for (int64_t c = 0; c < g.c; ++c) {
    double sum = 0;
    g.ForChannel(c, [&](int64_t i) { sum += x[i]; });
    const double mean = sum / count;
    double squares = 0;
    g.ForChannel(c, [&](int64_t i) { squares += (x[i] - mean) * (x[i] - mean); });
    const double var = squares / count;
    const double invstd = 1.0 / std::sqrt(var + in.eps);
    g.ForChannel(c, [&](int64_t i) {
      r.y[i] = Relu((x[i] - mean) * invstd * Gamma(in, c) + Beta(in, c) + Residual(in, i), in.relu);
    });
    r.mean.push_back(mean);
    r.var.push_back(var);
    r.invstd.push_back(invstd);
    if (running_mean != nullptr) {
      const double unbiased = count > 1 ? var * count / (count - 1) : var;
      r.running_mean.push_back((1 - momentum) * running_mean[c] + momentum * mean);
      r.running_var.push_back((1 - momentum) * running_var[c] + momentum * unbiased);
    }
  }
  return r;
}

BackwardResult ReferenceBackward(const Geometry& g, const float* x, const float* dy, const float* y,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, bool relu, bool global_stats) {
  BackwardResult r;
  r.dx.resize(g.Elements());
  const double count = static_cast<double>(g.PerChannel());
  // PyTorch's ReLU backward: the gradient is blocked where y <= 0, so NaN passes.
  auto grad = [&](int64_t i) { return relu && y[i] <= 0 ? 0.0 : double{dy[i]}; };
  for (int64_t c = 0; c < g.c; ++c) {
    const double mean = save_mean[c];
    const double invstd = save_invstd[c];
    const double scale = gamma ? gamma[c] : 1.0;
    double sum_dy = 0, sum_dy_xmu = 0, abs_dy = 0, abs_dy_xmu = 0;
    g.ForChannel(c, [&](int64_t i) {
      const double d = grad(i);
      sum_dy += d;
      sum_dy_xmu += d * (x[i] - mean);
      abs_dy += std::fabs(d);
      abs_dy_xmu += std::fabs(d * (x[i] - mean));
    });
    r.dgamma.push_back(sum_dy_xmu * invstd);
    r.dbeta.push_back(sum_dy);
    r.dgamma_scale.push_back(abs_dy_xmu * invstd);
    r.dbeta_scale.push_back(abs_dy);
    g.ForChannel(c, [&](int64_t i) {
      if (global_stats) {
        r.dx[i] = grad(i) * scale * invstd;
      } else {
        const double projection = (x[i] - mean) * invstd * invstd * sum_dy_xmu / count;
        r.dx[i] = (grad(i) - sum_dy / count - projection) * scale * invstd;
      }
    });
  }
  return r;
}

}  // namespace bnorm_test
