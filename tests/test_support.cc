#include "tests/test_support.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

namespace bnorm_test {

std::vector<std::string> RunnableTargets() {
  std::vector<std::string> targets;
  for (int32_t i = 0; i < bnorm_target_count(); ++i) targets.push_back(bnorm_target_name(i));
  return targets;
}

TargetScope::TargetScope(const std::string& target) {
  EXPECT_EQ(bnorm_set_max_target(target.c_str()), BNORM_OK) << bnorm_last_error();
  EXPECT_EQ(std::string(bnorm_active_target()), target);
}

TargetScope::~TargetScope() { bnorm_set_max_target(nullptr); }

bnorm_shape Shape(std::initializer_list<int64_t> dims) {
  bnorm_shape shape{};
  shape.rank = static_cast<int32_t>(dims.size());
  std::copy(dims.begin(), dims.end(), shape.dims);
  return shape;
}

std::string ToString(const bnorm_shape& shape) {
  std::ostringstream out;
  out << "(";
  for (int i = 0; i < shape.rank; ++i) out << (i ? ", " : "") << shape.dims[i];
  out << ")";
  return out.str();
}

std::string LayoutName(bnorm_layout layout) {
  return layout == BNORM_LAYOUT_NHWC ? "NHWC" : "NCHW";
}

std::string FlagNames(uint32_t flags) {
  std::string names;
  const std::pair<uint32_t, const char*> known[] = {
      {BNORM_FLAG_AFFINE, "AFFINE"},
      {BNORM_FLAG_TRACK_RUNNING_STATS, "TRACK_RUNNING_STATS"},
      {BNORM_FLAG_FUSE_RELU, "FUSE_RELU"},
      {BNORM_FLAG_USE_GLOBAL_STATS, "USE_GLOBAL_STATS"}};
  for (const auto& [bit, name] : known) {
    if (flags & bit) names += (names.empty() ? "" : "|") + std::string(name);
  }
  return names.empty() ? "0" : names;
}

bnorm_shape InLayout(std::initializer_list<int64_t> logical, bnorm_layout layout) {
  bnorm_shape shape = Shape(logical);
  if (layout == BNORM_LAYOUT_NHWC && shape.rank > 2) {
    // (N, C, spatial...) -> (N, spatial..., C)
    std::rotate(shape.dims + 1, shape.dims + 2, shape.dims + shape.rank);
  }
  return shape;
}

std::vector<bnorm_shape> SweepShapes(bnorm_layout layout) {
  const std::initializer_list<int64_t> logical[] = {
      // BatchNorm1d on (N, C)
      {5, 1},
      {2, 3},
      {64, 8},
      {33, 17},
      {7, 67},
      {16, 256},
      {1000, 3},
      // BatchNorm1d on (N, C, L)
      {2, 1, 1},
      {3, 3, 50},
      {16, 8, 7},
      {4, 17, 1},
      {2, 67, 33},
      {2, 256, 9},
      {40, 3, 5},
      // BatchNorm2d; (20, 17, 16, 16) and (16, 17, 3, 3) have small spatial
      // size and a large batch; (2, 3, 150, 150) has several chunks per channel.
      {2, 1, 1, 1},
      {1, 3, 17, 17},
      {4, 8, 5, 5},
      {16, 17, 3, 3},
      {2, 67, 1, 1},
      {3, 256, 4, 4},
      {2, 3, 150, 150},
      {20, 17, 16, 16},
      {17, 5, 7, 7},
      {1, 8, 64, 64},
      // BatchNorm3d
      {2, 1, 3, 4, 5},
      {1, 3, 5, 5, 5},
      {2, 8, 1, 1, 1},
      {2, 17, 3, 3, 3},
      {1, 67, 2, 2, 2},
      {2, 256, 2, 3, 1}};
  std::vector<bnorm_shape> shapes;
  for (const auto& dims : logical) shapes.push_back(InLayout(dims, layout));
  return shapes;
}

std::vector<float> ChannelData(const Geometry& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mean(-4.0f, 4.0f);
  std::uniform_real_distribution<float> stddev(0.25f, 3.0f);
  std::normal_distribution<float> normal;
  std::vector<float> x(g.Elements());
  for (int64_t c = 0; c < g.c; ++c) {
    const float m = mean(rng);
    const float s = stddev(rng);
    g.ForChannel(c, [&](int64_t i) { x[i] = m + s * normal(rng); });
  }
  return x;
}

std::vector<float> Uniform(int64_t count, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& f : v) f = dist(rng);
  return v;
}

::testing::AssertionResult NearAll(const char* what, const float* got,
                                   const std::vector<double>& want, double tolerance) {
  double largest = 1.0;
  for (double w : want) largest = std::max(largest, std::fabs(w));
  std::vector<double> scale(want.size(), largest);
  return NearScaled(what, got, want, scale, tolerance);
}

::testing::AssertionResult NearScaled(const char* what, const float* got,
                                      const std::vector<double>& want,
                                      const std::vector<double>& scale, double tolerance) {
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double error = std::fabs(got[i] - want[i]);
    // Written so that NaN fails.
    if (!(error <= tolerance * scale[i])) {
      if (bad++ == 0) first = i;
      if (std::isnan(error) || error > worst) worst = error;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << want.size() << " values off; first at [" << first
         << "]: got " << got[first] << ", want " << want[first] << " (tolerance "
         << tolerance * scale[first] << "); worst error " << worst;
}

std::string TargetLayoutName(const ::testing::TestParamInfo<TargetLayout>& info) {
  return std::get<0>(info.param) + "_" + LayoutName(std::get<1>(info.param));
}

bnorm_desc Desc(int64_t num_features, bnorm_layout layout, uint32_t flags) {
  bnorm_desc d;
  EXPECT_EQ(bnorm_desc_init(&d, num_features), BNORM_OK);
  d.layout = layout;
  d.flags = flags;
  return d;
}

int64_t Channels(const bnorm_shape& shape, bnorm_layout layout) {
  return layout == BNORM_LAYOUT_NHWC ? shape.dims[shape.rank - 1] : shape.dims[1];
}

Layer::Layer(int64_t c, uint32_t seed)
    : mean(Uniform(c, -2, 2, seed)),
      var(Uniform(c, 0.1f, 4, seed + 1)),
      gamma(Uniform(c, -1.5f, 1.5f, seed + 2)),
      beta(Uniform(c, -1, 1, seed + 3)) {}

double Layer::Scale(int64_t c, double eps, bool affine) const {
  return (affine ? gamma[c] : 1.0) / std::sqrt(static_cast<double>(var[c]) + eps);
}

void ExpectMatchesBackward(const BackwardResult& want, const float* dx, const float* dgamma,
                           const float* dbeta) {
  EXPECT_TRUE(NearAll("dx", dx, want.dx, 1e-5));
  if (dgamma != nullptr) {
    EXPECT_TRUE(NearScaled("dgamma", dgamma, want.dgamma, want.dgamma_scale, 1e-6));
  }
  if (dbeta != nullptr) EXPECT_TRUE(NearScaled("dbeta", dbeta, want.dbeta, want.dbeta_scale, 1e-6));
}

}  // namespace bnorm_test
