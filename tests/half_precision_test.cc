// bf16 and f16 tensors with random data on every runnable SIMD target and
// both layouts, through every call that takes a tensor and every flag
// combination that matters to it: forward calls exactly the float32 call's
// results rounded to the type and near the float64 reference, backward calls
// within 1 ulp of it (half_calls.h tells how). Prints, per dtype, how many
// forward elements were within the float32 path's bound but not within 1 ulp
// of the reference.
#include <gtest/gtest.h>
#include <stdint.h>
#include <stdio.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/half_calls.h"
#include "tests/half_types.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

// C = 1, 3, 17, 67 with one spatial element; shapes of the float32 sweep
// with odd-length channels; (2, 8, 15, 15); (17, 3, 7, 7), many short
// channels-first segments, which the residual backward masks first; and
// (3, 1, 110, 110), whose channel the library sums in two chunks, on two
// threads where allowed.
std::vector<bnorm_shape> HalfShapes(bnorm_layout layout) {
  const std::initializer_list<int64_t> logical[] = {
      {4, 1},           {6, 3},         {5, 17},        {3, 67},         {3, 17, 1, 1},
      {2, 67, 1, 1, 1}, {3, 3, 50},     {1, 3, 17, 17}, {16, 17, 3, 3},  {2, 67, 33},
      {2, 1, 3, 4, 5},  {2, 8, 15, 15}, {17, 3, 7, 7},  {3, 1, 110, 110}};
  std::vector<bnorm_shape> shapes;
  for (const auto& dims : logical) shapes.push_back(InLayout(dims, layout));
  return shapes;
}

using Tallies = std::vector<ClauseTally>;  // per dtype, in kHalfDtypes order

Tallies Now() { return {Tally(kHalfDtypes[0]), Tally(kHalfDtypes[1])}; }

// Prints how many elements needed the float32 bound since `before`, per dtype.
void PrintTally(const char* scope, const Tallies& before) {
  for (size_t i = 0; i < before.size(); ++i) {
    const ClauseTally& now = Tally(kHalfDtypes[i]);
    if (now.checked == before[i].checked) continue;
    printf("%s, %s: %lld of %lld elements within the float32 bound but not within 1 ulp\n", scope,
           DtypeName(kHalfDtypes[i]),
           static_cast<long long>(now.by_float32_bound - before[i].by_float32_bound),
           static_cast<long long>(now.checked - before[i].checked));
  }
}

class TallyReport : public ::testing::Environment {
 public:
  void TearDown() override { PrintTally("all tests", Tallies(2)); }
};
::testing::Environment* const kTallyReport = ::testing::AddGlobalTestEnvironment(new TallyReport);

class HalfPrecisionTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }

  // Each dtype and shape, with random data from `variant`, which also shifts
  // MakeCase's settings along the shapes: each test runs a shape with other
  // num_threads and offset.
  template <class F>
  void ForEachCase(int variant, const F& check) {
    int index = variant;
    uint32_t seed = 1000 * variant;
    for (bnorm_dtype dtype : kHalfDtypes) {
      for (const bnorm_shape& shape : HalfShapes(layout())) {
        const Case k = MakeCase(dtype, layout(), shape, index++, true);
        SCOPED_TRACE(Describe(k));
        Batch b(dtype, k.g, seed += 10);
        b.Derive(dtype, k.g);
        check(k, b);
      }
    }
  }

  // The counts also go to the XML report, for each test.
  void TearDown() override {
    PrintTally("this test", before_);
    for (size_t i = 0; i < before_.size(); ++i) {
      const ClauseTally& now = Tally(kHalfDtypes[i]);
      const std::string name = DtypeName(kHalfDtypes[i]);
      RecordProperty(name + "_elements_checked", std::to_string(now.checked - before_[i].checked));
      RecordProperty(name + "_elements_by_float32_bound",
                     std::to_string(now.by_float32_bound - before_[i].by_float32_bound));
    }
  }

  TargetScope target_{std::get<0>(GetParam())};
  const Tallies before_ = Now();
};

TEST_P(HalfPrecisionTest, ForwardInferenceRoundsTheFloat32Result) {
  ForEachCase(0, [](const Case& k, const Batch& b) {
    for (uint32_t flags : InferenceFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckInference(k, b, flags, false);
      CheckInference(k, b, flags, true);
    }
    for (uint32_t flags : ReluFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckScaleShift(k, b, flags);
    }
  });
}

TEST_P(HalfPrecisionTest, ForwardTrainingRoundsTheFloat32Result) {
  ForEachCase(1, [](const Case& k, const Batch& b) {
    for (uint32_t flags : TrainingFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckTraining(k, b, flags, false);
      CheckTraining(k, b, flags, true);
    }
  });
}

TEST_P(HalfPrecisionTest, BackwardIsWithinOneUlpOfFloat64) {
  ForEachCase(2, [](const Case& k, const Batch& b) {
    for (uint32_t flags : BackwardFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckBackward(k, b, flags, false);
      CheckBackward(k, b, flags, true);
    }
  });
}

// Channels-first channels of 2 x 48 x 48 values fit in L2 two at a time, so
// the backward reads each next channel's x and dy ahead while it writes a
// channel's dx: the results stay within 1 ulp, on one thread and two.
TEST_P(HalfPrecisionTest, BackwardReadingTheNextChannelAheadIsWithinOneUlpOfFloat64) {
  const bnorm_shape shape = InLayout({2, 9, 48, 48}, layout());
  uint32_t seed = 7000;
  for (bnorm_dtype dtype : kHalfDtypes) {
    for (int index : {1, 2}) {  // num_threads 1 and 2
      const Case k = MakeCase(dtype, layout(), shape, index, true);
      SCOPED_TRACE(Describe(k));
      Batch b(dtype, k.g, seed += 10);
      b.Derive(dtype, k.g);
      for (uint32_t flags : BackwardFlags()) {
        SCOPED_TRACE(FlagNames(flags));
        CheckBackward(k, b, flags, false);
        CheckBackward(k, b, flags, true);
      }
    }
  }
}

// Where a channel's gradient equals its mean and x is symmetric about the
// mean, the exact dx is 0; so must bnorm's be, in every dtype, not the
// rounding residue of g * a - mean(g) * a (which bf16 and f16 could hold, many
// units in their last place away from 0).
TEST_P(HalfPrecisionTest, BackwardOfAConstantGradientIsExactlyZero) {
  const float center[] = {2.0f, -3.5f, 0.75f}, spread[] = {1.0f, 0.5f, 0.25f};
  const float grad[] = {0.375f, -1.75f, 5.0f}, gamma[] = {0.7f, 1.3f, 2.9f};
  const bnorm_shape shape = InLayout({1, 3, 2}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  std::vector<float> x(g.Elements()), dy(g.Elements()), mean(3), invstd(3);
  for (int64_t c = 0; c < 3; ++c) {
    float side = -1.0f;
    g.ForChannel(c, [&](int64_t i) {
      x[i] = center[c] + side * spread[c];
      dy[i] = grad[c];
      side = -side;
    });
    mean[c] = center[c];
    invstd[c] = static_cast<float>(1 / std::sqrt(double{spread[c]} * spread[c] + 1e-5));
  }
  for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_BF16, BNORM_DTYPE_F16}) {
    SCOPED_TRACE(DtypeName(dtype));
    bnorm_desc d = Desc(3, layout(), BNORM_FLAG_AFFINE);
    d.dtype = dtype;
    std::vector<float> dx(g.Elements(), -7.0f), dgamma(3), dbeta(3);
    std::vector<uint16_t> x16, dy16, dx16(g.Elements(), 0x7E00);
    for (size_t i = 0; i < x.size(); ++i) {
      x16.push_back(RoundToHalf(dtype, x[i]));
      dy16.push_back(RoundToHalf(dtype, dy[i]));
    }
    const bool wide = dtype == BNORM_DTYPE_F32;
    ASSERT_EQ(bnorm_backward(&d, &shape, wide ? x.data() : static_cast<void*>(x16.data()),
                             wide ? dy.data() : static_cast<void*>(dy16.data()), nullptr, gamma,
                             mean.data(), invstd.data(),
                             wide ? dx.data() : static_cast<void*>(dx16.data()), dgamma.data(),
                             dbeta.data()),
              BNORM_OK)
        << bnorm_last_error();
    for (size_t i = 0; i < dx.size(); ++i) {
      EXPECT_EQ(wide ? dx[i] : WidenHalf(dtype, dx16[i]), 0.0f) << "at " << i;
    }
    for (int64_t c = 0; c < 3; ++c) {
      EXPECT_EQ(dgamma[c], 0.0f);
      EXPECT_EQ(dbeta[c], 2 * grad[c]);
    }
  }
}

TEST_P(HalfPrecisionTest, SplitPhasesMeetTheirClauses) {
  ForEachCase(3, [](const Case& k, const Batch& b) {
    CheckLocalStats(k, b);
    for (uint32_t flags : InferenceFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckNormalize(k, b, flags);
    }
    for (uint32_t flags : ReluFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckBackwardReduce(k, b, flags);
    }
    for (uint32_t flags : BackwardFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckBackwardElementwise(k, b, flags);
    }
  });
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(HalfPrecisionTest);

}  // namespace
}  // namespace bnorm_test
