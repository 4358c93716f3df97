// bf16 and f16 tensors with random data on every runnable SIMD target and
// both layouts, through every call that takes a tensor and every flag
// combination that matters to it: exactly the float32 call's results rounded
// to the type, and near the float64 reference (half_calls.h tells how).
// Prints, per dtype, how many elements were within the float32 path's bound
// but not within 1 ulp of the reference.
#include <gtest/gtest.h>
#include <stdint.h>
#include <stdio.h>

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

TEST_P(HalfPrecisionTest, BackwardRoundsTheFloat32Result) {
  ForEachCase(2, [](const Case& k, const Batch& b) {
    for (uint32_t flags : BackwardFlags()) {
      SCOPED_TRACE(FlagNames(flags));
      CheckBackward(k, b, flags, false);
      CheckBackward(k, b, flags, true);
    }
  });
}

TEST_P(HalfPrecisionTest, SplitPhasesRoundTheFloat32Result) {
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
