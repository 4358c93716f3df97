// Shared pieces of the bnorm tests: the SIMD targets to run on, the shape
// sweep, random data and float-vs-double comparisons.
#ifndef BNORM_TESTS_TEST_SUPPORT_H_
#define BNORM_TESTS_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <stdint.h>

#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"

namespace bnorm_test {

// The targets compiled into the library that this CPU can run, best first.
std::vector<std::string> RunnableTargets();

// Caps bnorm at one target for the scope's lifetime, then removes the cap.
class TargetScope {
 public:
  explicit TargetScope(const std::string& target);
  ~TargetScope();
  TargetScope(const TargetScope&) = delete;
  TargetScope& operator=(const TargetScope&) = delete;
};

bnorm_shape Shape(std::initializer_list<int64_t> dims);
std::string ToString(const bnorm_shape& shape);
std::string LayoutName(bnorm_layout layout);
std::string FlagNames(uint32_t flags);

// Logical (N, C, spatial...) dims arranged in the layout's memory order.
bnorm_shape InLayout(std::initializer_list<int64_t> logical, bnorm_layout layout);

// Ranks 2 to 5, C in {1, 3, 8, 17, 67, 256}, spatial sizes from 1 up, batch
// sizes that take both of the library's ways of walking channels-first data,
// in the layout's memory order. Every shape has more than one value per channel.
std::vector<bnorm_shape> SweepShapes(bnorm_layout layout);

// Per channel c: mean in [-4, 4], standard deviation in [0.25, 3].
std::vector<float> ChannelData(const Geometry& g, uint32_t seed);
std::vector<float> Uniform(int64_t count, float lo, float hi, uint32_t seed);

// |got - want| <= tolerance * max(1, max |want|) for every element.
::testing::AssertionResult NearAll(const char* what, const float* got,
                                   const std::vector<double>& want, double tolerance);
// |got[i] - want[i]| <= tolerance * scale[i].
::testing::AssertionResult NearScaled(const char* what, const float* got,
                                      const std::vector<double>& want,
                                      const std::vector<double>& scale, double tolerance);

// A backward pass's outputs against the reference: dx within 1e-5 of the
// largest |dx|, dgamma and dbeta (skipped when NULL) within 1e-6 of the sum
// of their terms' magnitudes.
void ExpectMatchesBackward(const BackwardResult& want, const float* dx, const float* dgamma,
                           const float* dbeta);

// An eval-mode layer's per-channel vectors: running statistics (var in
// [0.1, 4]) and affine parameters, from `seed`.
struct Layer {
  std::vector<float> mean, var, gamma, beta;
  Layer(int64_t c, uint32_t seed);
  // gamma[c] / sqrt(var[c] + eps) in double (gamma 1 without `affine`).
  double Scale(int64_t c, double eps, bool affine) const;
};

// Parameter of the kernel tests: one SIMD target and one layout.
using TargetLayout = std::tuple<std::string, bnorm_layout>;
std::string TargetLayoutName(const ::testing::TestParamInfo<TargetLayout>& info);

bnorm_desc Desc(int64_t num_features, bnorm_layout layout, uint32_t flags);
int64_t Channels(const bnorm_shape& shape, bnorm_layout layout);

}  // namespace bnorm_test

// Instantiates a TEST_P suite over every runnable target and both layouts.
#define BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(suite)                           \
  INSTANTIATE_TEST_SUITE_P(                                                        \
      Targets, suite,                                                              \
      ::testing::Combine(::testing::ValuesIn(::bnorm_test::RunnableTargets()),     \
                         ::testing::Values(BNORM_LAYOUT_NCHW, BNORM_LAYOUT_NHWC)), \
      ::bnorm_test::TargetLayoutName)

#endif  // BNORM_TESTS_TEST_SUPPORT_H_
