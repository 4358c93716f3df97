// bnorm_forward_training against the float64 reference on every runnable SIMD
// target, both layouts, the shape sweep and every flag that applies.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

constexpr double kOutputTolerance = 1e-5;  // of the largest |y|
constexpr double kStatsTolerance = 1e-6;   // relative

class TrainingTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

// The layer's parameters and running statistics, and the per-call outputs.
struct Buffers {
  std::vector<float> gamma, beta, running_mean, running_var, save_mean, save_invstd;
  Buffers(int64_t c, uint32_t seed)
      : gamma(Uniform(c, -1.5f, 1.5f, seed)),
        beta(Uniform(c, -1, 1, seed + 1)),
        running_mean(Uniform(c, -1, 1, seed + 2)),
        running_var(Uniform(c, 0.5f, 2, seed + 3)),
        save_mean(c, -9.0f),
        save_invstd(c, -9.0f) {}
};

// Checks everything a training call wrote against the reference.
void ExpectMatchesReference(const Geometry& g, const bnorm_desc& d, const std::vector<float>& x,
                            const Buffers& before, const Buffers& after,
                            const std::vector<float>& y) {
  const bool affine = d.flags & BNORM_FLAG_AFFINE;
  const bool track = d.flags & BNORM_FLAG_TRACK_RUNNING_STATS;
  Inputs in;
  in.gamma = affine ? before.gamma.data() : nullptr;
  in.beta = affine ? before.beta.data() : nullptr;
  in.eps = d.eps;
  in.relu = d.flags & BNORM_FLAG_FUSE_RELU;
  const TrainingResult want = ReferenceTraining(
      g, x.data(), in, d.momentum, before.running_mean.data(), before.running_var.data());
  EXPECT_TRUE(NearAll("y", y.data(), want.y, kOutputTolerance));
  std::vector<double> spread(g.c), mean_scale(g.c), running_mean_scale(g.c);
  for (int64_t c = 0; c < g.c; ++c) {
    spread[c] = std::fabs(want.mean[c]) + std::sqrt(want.var[c]);
    running_mean_scale[c] = spread[c] + std::fabs(before.running_mean[c]);
  }
  EXPECT_TRUE(NearScaled("save_mean", after.save_mean.data(), want.mean, spread, kStatsTolerance));
  EXPECT_TRUE(NearScaled("save_invstd", after.save_invstd.data(), want.invstd, want.invstd,
                         kStatsTolerance));
  if (track) {
    EXPECT_TRUE(NearScaled("running_mean", after.running_mean.data(), want.running_mean,
                           running_mean_scale, kStatsTolerance));
    EXPECT_TRUE(NearScaled("running_var", after.running_var.data(), want.running_var,
                           want.running_var, kStatsTolerance));
  } else {
    EXPECT_EQ(after.running_mean, before.running_mean);
    EXPECT_EQ(after.running_var, before.running_var);
  }
  EXPECT_EQ(after.gamma, before.gamma);
  EXPECT_EQ(after.beta, before.beta);
}

// One training call on x with the given flags (momentum 0.25), checked
// against the float64 reference.
void TrainAndExpectReference(const bnorm_shape& shape, bnorm_layout layout,
                             const std::vector<float>& x, uint32_t flags, uint32_t seed) {
  const Geometry g = Geometry::Of(shape, layout);
  bnorm_desc d = Desc(g.c, layout, flags);
  d.momentum = 0.25f;
  const Buffers before(g.c, seed);
  Buffers after = before;
  std::vector<float> y(x.size(), -7.0f);
  ASSERT_EQ(
      bnorm_forward_training(&d, &shape, x.data(), y.data(), after.gamma.data(), after.beta.data(),
                             after.running_mean.data(), after.running_var.data(),
                             after.save_mean.data(), after.save_invstd.data()),
      BNORM_OK)
      << bnorm_last_error();
  ExpectMatchesReference(g, d, x, before, after, y);
}

TEST_P(TrainingTest, MatchesReferenceForEveryShapeAndFlag) {
  uint32_t seed = 1;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const std::vector<float> x = ChannelData(Geometry::Of(shape, layout()), seed++);
    for (uint32_t flags = 0; flags < 8; ++flags) {  // AFFINE x TRACK_RUNNING_STATS x FUSE_RELU
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      TrainAndExpectReference(shape, layout(), x, flags, seed++);
    }
  }
}

// f32 outputs of 4 MiB and more are streamed to memory, except where a
// channels-first channel is written a segment of under 512 bytes at a time:
// both kinds, 4.2 and 4.3 MB.
TEST_P(TrainingTest, OutputsLargeEnoughToStreamMatchReference) {
  uint32_t seed = 30;
  for (const bnorm_shape& shape :
       {InLayout({2, 3, 420, 421}, layout()), InLayout({300, 64, 7, 8}, layout())}) {
    SCOPED_TRACE(ToString(shape));
    const std::vector<float> x = ChannelData(Geometry::Of(shape, layout()), seed++);
    TrainAndExpectReference(
        shape, layout(), x,
        BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS | BNORM_FLAG_FUSE_RELU, seed++);
  }
}

TEST_P(TrainingTest, OptionalPointersMayBeNull) {
  uint32_t seed = 50;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    // No AFFINE, no TRACK_RUNNING_STATS, no saved statistics: only x and y.
    const bnorm_desc d = Desc(g.c, layout(), 0);
    std::vector<float> y(x.size());
    ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), nullptr, nullptr, nullptr,
                                     nullptr, nullptr, nullptr),
              BNORM_OK)
        << bnorm_last_error();
    Inputs in;
    in.eps = d.eps;
    EXPECT_TRUE(NearAll("y", y.data(), ReferenceTraining(g, x.data(), in, 0, nullptr, nullptr).y,
                        kOutputTolerance));
  }
}

TEST_P(TrainingTest, InPlaceGivesTheSameResult) {
  uint32_t seed = 200;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const bnorm_desc d = Desc(
        g.c, layout(), BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU | BNORM_FLAG_TRACK_RUNNING_STATS);
    const std::vector<float> x = ChannelData(g, seed++);
    Buffers apart(g.c, seed++);
    Buffers in_place = apart;
    std::vector<float> y(x.size());
    ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), apart.gamma.data(),
                                     apart.beta.data(), apart.running_mean.data(),
                                     apart.running_var.data(), apart.save_mean.data(),
                                     apart.save_invstd.data()),
              BNORM_OK);
    std::vector<float> data = x;
    ASSERT_EQ(bnorm_forward_training(&d, &shape, data.data(), data.data(), in_place.gamma.data(),
                                     in_place.beta.data(), in_place.running_mean.data(),
                                     in_place.running_var.data(), in_place.save_mean.data(),
                                     in_place.save_invstd.data()),
              BNORM_OK)
        << bnorm_last_error();
    EXPECT_EQ(data, y);
    EXPECT_EQ(in_place.running_mean, apart.running_mean);
    EXPECT_EQ(in_place.running_var, apart.running_var);
    EXPECT_EQ(in_place.save_mean, apart.save_mean);
    EXPECT_EQ(in_place.save_invstd, apart.save_invstd);
  }
}

TEST_P(TrainingTest, MomentumZeroKeepsAndOneReplacesRunningStatistics) {
  const bnorm_shape shape = InLayout({4, 17, 5, 3}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  const std::vector<float> x = ChannelData(g, 9);
  std::vector<float> y(x.size());
  for (float momentum : {0.0f, 1.0f}) {
    SCOPED_TRACE(momentum);
    bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_TRACK_RUNNING_STATS);
    d.momentum = momentum;
    const Buffers before(g.c, 10);
    Buffers after = before;
    ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), nullptr, nullptr,
                                     after.running_mean.data(), after.running_var.data(),
                                     after.save_mean.data(), after.save_invstd.data()),
              BNORM_OK);
    if (momentum == 0.0f) {
      EXPECT_EQ(after.running_mean, before.running_mean);
      EXPECT_EQ(after.running_var, before.running_var);
    } else {
      EXPECT_EQ(after.running_mean, after.save_mean);
      ExpectMatchesReference(g, d, x, before, after, y);
    }
  }
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(TrainingTest);

}  // namespace
}  // namespace bnorm_test
