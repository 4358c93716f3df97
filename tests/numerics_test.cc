// The numbers bnorm must hold beyond ordinary data: a mean far larger than the
// spread, more values per channel than float32 can count, constant channels,
// and NaN or Inf confined to their own channel.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

class NumericsTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

// x = offset + spread * normal, the same offset and spread in every channel.
std::vector<float> Offset(const Geometry& g, double offset, double spread, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<float> x(g.Elements());
  for (float& v : x) v = static_cast<float>(offset + spread * normal(rng));
  return x;
}

// Mean 1e4 times the standard deviation: a naive E[x^2] - E[x]^2 in float (or
// even double sums of float squares) loses the variance, and normalizing with
// one FMA, x * scale + shift, loses the mean's low bits.
TEST_P(NumericsTest, MeanTenThousandTimesTheSpread) {
  for (const auto& [offset, spread] :
       {std::pair{1e4, 1.0}, std::pair{10.0, 1e-3}, std::pair{-3e5, 30.0}}) {
    for (const bnorm_shape& shape :
         {InLayout({8, 5, 33, 31}, layout()), InLayout({64, 3, 5, 5}, layout()),
          InLayout({512, 17}, layout())}) {
      SCOPED_TRACE(ToString(shape) + " offset " + std::to_string(offset) + " spread " +
                   std::to_string(spread));
      const Geometry g = Geometry::Of(shape, layout());
      const std::vector<float> x = Offset(g, offset, spread, 3);
      bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_TRACK_RUNNING_STATS);
      d.momentum = 1;  // running_var becomes the batch's unbiased variance
      d.eps = 1e-12f;  // far below the variance, so invstd shows its error
      std::vector<float> y(x.size()), running_mean(g.c), running_var(g.c), mean(g.c), invstd(g.c);
      ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), nullptr, nullptr,
                                       running_mean.data(), running_var.data(), mean.data(),
                                       invstd.data()),
                BNORM_OK)
          << bnorm_last_error();
      Inputs in;
      in.eps = d.eps;
      std::vector<float> zeros(g.c, 0.0f), ones(g.c, 1.0f);
      const TrainingResult want = ReferenceTraining(g, x.data(), in, 1, zeros.data(), ones.data());
      EXPECT_TRUE(
          NearScaled("running_var", running_var.data(), want.running_var, want.running_var, 1e-4));
      EXPECT_TRUE(NearScaled("save_invstd", invstd.data(), want.invstd, want.invstd, 1e-4));
      EXPECT_TRUE(NearAll("y", y.data(), want.y, 1e-5));

      // Inference with the exact statistics must not lose the mean's low bits either.
      std::vector<float> var(want.var.begin(), want.var.end());
      ASSERT_EQ(bnorm_forward_inference(&d, &shape, x.data(), y.data(), mean.data(), var.data(),
                                        nullptr, nullptr),
                BNORM_OK);
      EXPECT_TRUE(NearAll("inference y", y.data(),
                          ReferenceInference(g, x.data(), mean.data(), var.data(), in), 1e-5));

      // Backward: dgamma's sum of dy * (x - mean) cancels the same way.
      const std::vector<float> dy = Uniform(g.Elements(), -1, 1, 4);
      std::vector<float> dx(x.size()), dgamma(g.c), dbeta(g.c);
      ASSERT_EQ(bnorm_backward(&d, &shape, x.data(), dy.data(), nullptr, nullptr, mean.data(),
                               invstd.data(), dx.data(), dgamma.data(), dbeta.data()),
                BNORM_OK);
      const BackwardResult grads = ReferenceBackward(g, x.data(), dy.data(), nullptr, nullptr,
                                                     mean.data(), invstd.data(), false, false);
      EXPECT_TRUE(NearAll("dx", dx.data(), grads.dx, 1e-5));
      EXPECT_TRUE(NearScaled("dgamma", dgamma.data(), grads.dgamma, grads.dgamma_scale, 1e-6));
    }
  }
}

// 2^24 + 2 values per channel: a float32 counter or accumulator stops counting
// at 2^24. The values alternate 0.5 and 1.5, so the mean is exactly 1 and the
// biased variance exactly 0.25.
TEST_P(NumericsTest, MoreThanTwoToTheTwentyFourValuesPerChannel) {
  const int64_t count = (int64_t{1} << 24) + 2;
  const bnorm_shape shape =
      layout() == BNORM_LAYOUT_NCHW ? Shape({2, 1, count / 2}) : Shape({count / 2, 2, 1});
  const Geometry g = Geometry::Of(shape, layout());
  ASSERT_EQ(g.PerChannel(), count);
  std::vector<float> x(count);
  for (int64_t i = 0; i < count; ++i) x[i] = i % 2 ? 0.5f : 1.5f;
  bnorm_desc d = Desc(1, layout(), BNORM_FLAG_TRACK_RUNNING_STATS);
  d.momentum = 1;
  std::vector<float> y(count);
  float running_mean = 0, running_var = 0, mean = 0, invstd = 0;
  ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), nullptr, nullptr, &running_mean,
                                   &running_var, &mean, &invstd),
            BNORM_OK)
      << bnorm_last_error();
  EXPECT_EQ(mean, 1.0f);
  EXPECT_EQ(running_mean, 1.0f);
  const double want_invstd = 1 / std::sqrt(0.25 + double{d.eps});
  EXPECT_NEAR(invstd, want_invstd, 1e-6 * want_invstd);
  const double unbiased = 0.25 * count / (count - 1);
  EXPECT_NEAR(running_var, unbiased, 1e-7 * unbiased);
  for (int64_t i = 0; i < count; i += 4099) {
    ASSERT_NEAR(y[i], (i % 2 ? -0.5 : 0.5) * want_invstd, 1e-6) << "at " << i;
  }

  // dbeta = sum(dy) with dy = 1 is the count itself, exactly.
  const std::vector<float> dy(count, 1.0f);
  float dgamma = -1, dbeta = -1;
  ASSERT_EQ(bnorm_backward(&d, &shape, x.data(), dy.data(), nullptr, nullptr, &mean, &invstd,
                           nullptr, &dgamma, &dbeta),
            BNORM_OK);
  EXPECT_EQ(dbeta, static_cast<float>(count));
  EXPECT_NEAR(dgamma, 0.0, 1e-6 * count);
}

// Every value equal: the variance is exactly 0, invstd is 1/sqrt(eps), and y
// is beta exactly, however large the value.
TEST_P(NumericsTest, ConstantChannelNormalizesToBeta) {
  const float values[] = {1e6f, -2.5e4f, 7.0f, 0.0f, 3.4e30f};
  const bnorm_shape shape = InLayout({6, 5, 7, 3}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  std::vector<float> x(g.Elements());
  for (int64_t c = 0; c < g.c; ++c) g.ForChannel(c, [&](int64_t i) { x[i] = values[c]; });
  const bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_AFFINE);
  const std::vector<float> gamma = Uniform(g.c, 0.5f, 2, 1), beta = Uniform(g.c, -1, 1, 2);
  std::vector<float> y(x.size()), mean(g.c), invstd(g.c);
  ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), gamma.data(), beta.data(),
                                   nullptr, nullptr, mean.data(), invstd.data()),
            BNORM_OK);
  for (int64_t c = 0; c < g.c; ++c) {
    SCOPED_TRACE(values[c]);
    EXPECT_EQ(mean[c], values[c]);
    EXPECT_FLOAT_EQ(invstd[c], static_cast<float>(1 / std::sqrt(double{d.eps})));
    g.ForChannel(c, [&](int64_t i) { ASSERT_EQ(y[i], beta[c]) << "at " << i; });
  }
}

// A NaN or Inf poisons its own channel's statistics and outputs, and nothing else.
TEST_P(NumericsTest, NanAndInfStayInTheirChannel) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const bnorm_shape shape = InLayout({4, 6, 5, 5}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  std::vector<float> x = ChannelData(g, 5);
  x[g.Index(2, 1, 7)] = nan;
  x[g.Index(0, 3, 0)] = inf;
  x[g.Index(3, 4, 24)] = -inf;
  const bool poisoned[] = {false, true, false, true, true, false};
  const std::vector<float> gamma = Uniform(g.c, 0.5f, 2, 1), beta = Uniform(g.c, -1, 1, 2);

  for (uint32_t flags : {BNORM_FLAG_AFFINE, BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU}) {
    SCOPED_TRACE(FlagNames(flags));
    const bnorm_desc d = Desc(g.c, layout(), flags);
    std::vector<float> y(x.size()), mean(g.c), invstd(g.c);
    ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), gamma.data(), beta.data(),
                                     nullptr, nullptr, mean.data(), invstd.data()),
              BNORM_OK);
    Inputs in;
    in.gamma = gamma.data();
    in.beta = beta.data();
    in.relu = flags & BNORM_FLAG_FUSE_RELU;
    const TrainingResult want = ReferenceTraining(g, x.data(), in, 0, nullptr, nullptr);
    for (int64_t c = 0; c < g.c; ++c) {
      SCOPED_TRACE("channel " + std::to_string(c));
      if (poisoned[c]) {
        EXPECT_TRUE(std::isnan(mean[c]) || std::isinf(mean[c]));
        g.ForChannel(c, [&](int64_t i) { ASSERT_TRUE(std::isnan(y[i])) << "at " << i; });
      } else {
        EXPECT_NEAR(mean[c], want.mean[c], 1e-5);
        g.ForChannel(c, [&](int64_t i) { ASSERT_NEAR(y[i], want.y[i], 1e-5) << "at " << i; });
      }
    }

    // Inference works element by element: only the bad elements themselves.
    const std::vector<float> running_mean(g.c, 0.5f), running_var(g.c, 2.0f);
    ASSERT_EQ(bnorm_forward_inference(&d, &shape, x.data(), y.data(), running_mean.data(),
                                      running_var.data(), gamma.data(), beta.data()),
              BNORM_OK);
    const std::vector<double> want_y =
        ReferenceInference(g, x.data(), running_mean.data(), running_var.data(), in);
    for (size_t i = 0; i < y.size(); ++i) {
      if (std::isfinite(x[i])) {
        ASSERT_NEAR(y[i], want_y[i], 1e-5) << "at " << i;
      } else {
        ASSERT_EQ(std::isnan(y[i]), std::isnan(want_y[i])) << "at " << i;
      }
    }
  }

  // Backward with a NaN gradient in channel 2: dx, dgamma and dbeta of channel 2 only.
  std::vector<float> clean = ChannelData(g, 6);
  std::vector<float> dy = Uniform(g.Elements(), -1, 1, 7);
  dy[g.Index(1, 2, 3)] = nan;
  const std::vector<float> mean = Uniform(g.c, -1, 1, 8), invstd = Uniform(g.c, 0.5f, 2, 9);
  const bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_AFFINE);
  std::vector<float> dx(dy.size()), dgamma(g.c), dbeta(g.c);
  ASSERT_EQ(bnorm_backward(&d, &shape, clean.data(), dy.data(), nullptr, gamma.data(), mean.data(),
                           invstd.data(), dx.data(), dgamma.data(), dbeta.data()),
            BNORM_OK);
  const BackwardResult want = ReferenceBackward(g, clean.data(), dy.data(), nullptr, gamma.data(),
                                                mean.data(), invstd.data(), false, false);
  for (int64_t c = 0; c < g.c; ++c) {
    SCOPED_TRACE("channel " + std::to_string(c));
    EXPECT_EQ(std::isnan(dgamma[c]), c == 2);
    EXPECT_EQ(std::isnan(dbeta[c]), c == 2);
    g.ForChannel(c, [&](int64_t i) {
      if (c == 2) {
        ASSERT_TRUE(std::isnan(dx[i])) << "at " << i;
      } else {
        ASSERT_NEAR(dx[i], want.dx[i], 1e-5) << "at " << i;
      }
    });
  }
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(NumericsTest);

}  // namespace
}  // namespace bnorm_test
