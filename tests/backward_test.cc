// bnorm_backward against the float64 reference on every runnable SIMD target,
// both layouts, the shape sweep, training-mode and frozen statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

class BackwardTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

// What a training step leaves for backward: the forward input and output, the
// saved (or frozen) statistics, and an incoming gradient.
struct Step {
  std::vector<float> x, y, dy, gamma, beta, save_mean, save_invstd;

  Step(const Geometry& g, uint32_t flags, uint32_t seed)
      : x(ChannelData(g, seed)),
        dy(Uniform(g.Elements(), -1, 1, seed + 1)),
        gamma(Uniform(g.c, -1.5f, 1.5f, seed + 2)),
        beta(Uniform(g.c, -1, 1, seed + 3)) {
    Inputs in;
    in.gamma = gamma.data();
    in.beta = beta.data();
    in.relu = flags & BNORM_FLAG_FUSE_RELU;
    const TrainingResult forward = ReferenceTraining(g, x.data(), in, 0, nullptr, nullptr);
    y.assign(forward.y.begin(), forward.y.end());
    if (flags & BNORM_FLAG_USE_GLOBAL_STATS) {
      // Frozen statistics unrelated to this batch, as in fine-tuning.
      save_mean = Uniform(g.c, -1, 1, seed + 4);
      for (float v : Uniform(g.c, 0.5f, 2, seed + 5)) save_invstd.push_back(1 / std::sqrt(v));
    } else {
      save_mean.assign(forward.mean.begin(), forward.mean.end());
      save_invstd.assign(forward.invstd.begin(), forward.invstd.end());
    }
  }

  bnorm_status Run(const bnorm_desc& d, const bnorm_shape& shape, float* dx, float* dgamma,
                   float* dbeta) const {
    return bnorm_backward(&d, &shape, x.data(), dy.data(), y.data(), gamma.data(), save_mean.data(),
                          save_invstd.data(), dx, dgamma, dbeta);
  }

  BackwardResult Reference(const Geometry& g, uint32_t flags) const {
    return ReferenceBackward(g, x.data(), dy.data(), y.data(),
                             flags & BNORM_FLAG_AFFINE ? gamma.data() : nullptr, save_mean.data(),
                             save_invstd.data(), flags & BNORM_FLAG_FUSE_RELU,
                             flags & BNORM_FLAG_USE_GLOBAL_STATS);
  }
};

constexpr uint32_t kBackwardFlags[] = {
    0,
    BNORM_FLAG_AFFINE,
    BNORM_FLAG_FUSE_RELU,
    BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU,
    BNORM_FLAG_USE_GLOBAL_STATS,
    BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE,
    BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_FUSE_RELU,
    BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU,
    // TRACK_RUNNING_STATS means nothing to backward; it must change nothing.
    BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS,
};

// One backward call on a training step's tensors with the given flags,
// every output checked against the float64 reference.
void BackwardAndExpectReference(const bnorm_shape& shape, bnorm_layout layout, uint32_t flags,
                                uint32_t seed) {
  const Geometry g = Geometry::Of(shape, layout);
  const Step step(g, flags, seed);
  const bnorm_desc d = Desc(g.c, layout, flags);
  std::vector<float> dx(g.Elements(), -7.0f), dgamma(g.c, -7.0f), dbeta(g.c, -7.0f);
  ASSERT_EQ(step.Run(d, shape, dx.data(), dgamma.data(), dbeta.data()), BNORM_OK)
      << bnorm_last_error();
  ExpectMatchesBackward(step.Reference(g, flags), dx.data(), dgamma.data(), dbeta.data());
}

TEST_P(BackwardTest, MatchesReferenceForEveryShapeAndFlag) {
  uint32_t seed = 1;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    for (uint32_t flags : kBackwardFlags) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      BackwardAndExpectReference(shape, layout(), flags, seed += 10);
    }
  }
}

// f32 outputs of 4 MiB and more are streamed to memory, except where a
// channels-first channel is written a segment of under 512 bytes at a time:
// both kinds, 4.2 and 4.3 MB.
TEST_P(BackwardTest, OutputsLargeEnoughToStreamMatchReference) {
  uint32_t seed = 200;
  for (const bnorm_shape& shape :
       {InLayout({2, 3, 420, 421}, layout()), InLayout({300, 64, 7, 8}, layout())}) {
    SCOPED_TRACE(ToString(shape));
    BackwardAndExpectReference(shape, layout(), BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU,
                               seed += 10);
  }
}

TEST_P(BackwardTest, AnySubsetOfOutputsMayBeSkipped) {
  uint32_t seed = 300;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    for (uint32_t flags : {BNORM_FLAG_AFFINE, BNORM_FLAG_AFFINE | BNORM_FLAG_USE_GLOBAL_STATS}) {
      const Step step(g, flags, seed += 10);
      const bnorm_desc d = Desc(g.c, layout(), flags);
      std::vector<float> dx(g.Elements()), dgamma(g.c), dbeta(g.c);
      ASSERT_EQ(step.Run(d, shape, dx.data(), dgamma.data(), dbeta.data()), BNORM_OK);
      for (int subset = 0; subset < 8; ++subset) {
        SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags) + " outputs " +
                     std::to_string(subset));
        std::vector<float> dx2(g.Elements(), -7.0f), dgamma2(g.c, -7.0f), dbeta2(g.c, -7.0f);
        ASSERT_EQ(
            step.Run(d, shape, subset & 1 ? dx2.data() : nullptr,
                     subset & 2 ? dgamma2.data() : nullptr, subset & 4 ? dbeta2.data() : nullptr),
            BNORM_OK)
            << bnorm_last_error();
        // What is asked for is exactly what the full call gives; the rest is untouched.
        EXPECT_EQ(dx2, subset & 1 ? dx : std::vector<float>(g.Elements(), -7.0f));
        EXPECT_EQ(dgamma2, subset & 2 ? dgamma : std::vector<float>(g.c, -7.0f));
        EXPECT_EQ(dbeta2, subset & 4 ? dbeta : std::vector<float>(g.c, -7.0f));
      }
    }
  }
}

TEST_P(BackwardTest, InPlaceGivesTheSameResult) {
  uint32_t seed = 500;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    for (uint32_t flags : {BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU,
                           BNORM_FLAG_AFFINE | BNORM_FLAG_USE_GLOBAL_STATS}) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      Step step(g, flags, seed += 10);
      const bnorm_desc d = Desc(g.c, layout(), flags);
      std::vector<float> dx(g.Elements()), dgamma(g.c), dbeta(g.c);
      ASSERT_EQ(step.Run(d, shape, dx.data(), dgamma.data(), dbeta.data()), BNORM_OK);
      std::vector<float> dgamma2(g.c), dbeta2(g.c);
      // dx written over dy.
      ASSERT_EQ(bnorm_backward(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                               step.gamma.data(), step.save_mean.data(), step.save_invstd.data(),
                               step.dy.data(), dgamma2.data(), dbeta2.data()),
                BNORM_OK)
          << bnorm_last_error();
      EXPECT_EQ(step.dy, dx);
      EXPECT_EQ(dgamma2, dgamma);
      EXPECT_EQ(dbeta2, dbeta);
    }
  }
}

TEST_P(BackwardTest, FrozenStatisticsAllowOneValuePerChannel) {
  const bnorm_shape shape = InLayout({1, 17, 1, 1}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  const uint32_t flags = BNORM_FLAG_AFFINE | BNORM_FLAG_USE_GLOBAL_STATS;
  Step step(g, flags, 77);
  const bnorm_desc d = Desc(g.c, layout(), flags);
  std::vector<float> dx(g.Elements()), dgamma(g.c), dbeta(g.c);
  ASSERT_EQ(step.Run(d, shape, dx.data(), dgamma.data(), dbeta.data()), BNORM_OK)
      << bnorm_last_error();
  const BackwardResult want = step.Reference(g, flags);
  ExpectMatchesBackward(want, dx.data(), dgamma.data(), nullptr);
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(BackwardTest);

}  // namespace
}  // namespace bnorm_test
