// Batch norm with a residual added before the ReLU, the tail of a ResNet
// block: forward inference, training forward and backward against the
// float64 reference on every runnable SIMD target and both layouts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

constexpr double kOutputTolerance = 1e-5;  // of the largest |y|
constexpr double kStatsTolerance = 1e-6;   // relative
constexpr uint32_t kResidualBlock = BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU;

class ResidualTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

TEST_P(ResidualTest, InferenceMatchesReference) {
  uint32_t seed = 1;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    const std::vector<float> residual = Uniform(g.Elements(), -2, 2, seed++);
    const Layer layer(g.c, seed++);
    for (uint32_t flags : {0u, BNORM_FLAG_AFFINE, BNORM_FLAG_FUSE_RELU, kResidualBlock}) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      const bnorm_desc d = Desc(g.c, layout(), flags);
      std::vector<float> y(x.size(), -7.0f);
      ASSERT_EQ(bnorm_forward_inference_residual(&d, &shape, x.data(), residual.data(), y.data(),
                                                 layer.mean.data(), layer.var.data(),
                                                 layer.gamma.data(), layer.beta.data()),
                BNORM_OK)
          << bnorm_last_error();
      Inputs in;
      in.gamma = flags & BNORM_FLAG_AFFINE ? layer.gamma.data() : nullptr;
      in.beta = flags & BNORM_FLAG_AFFINE ? layer.beta.data() : nullptr;
      in.residual = residual.data();
      in.eps = d.eps;
      in.relu = flags & BNORM_FLAG_FUSE_RELU;
      EXPECT_TRUE(NearAll("y", y.data(),
                          ReferenceInference(g, x.data(), layer.mean.data(), layer.var.data(), in),
                          kOutputTolerance));
    }
  }
}

TEST_P(ResidualTest, TrainingMatchesReference) {
  uint32_t seed = 100;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    const std::vector<float> residual = Uniform(g.Elements(), -2, 2, seed++);
    for (uint32_t flags = 0; flags < 8; ++flags) {  // AFFINE x TRACK_RUNNING_STATS x FUSE_RELU
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      bnorm_desc d = Desc(g.c, layout(), flags);
      d.momentum = 0.25f;
      const Layer layer(g.c, seed++);
      std::vector<float> running_mean = layer.mean, running_var = layer.var;
      std::vector<float> save_mean(g.c, -7.0f), save_invstd(g.c, -7.0f), y(x.size(), -7.0f);
      ASSERT_EQ(bnorm_forward_training_residual(&d, &shape, x.data(), residual.data(), y.data(),
                                                layer.gamma.data(), layer.beta.data(),
                                                running_mean.data(), running_var.data(),
                                                save_mean.data(), save_invstd.data()),
                BNORM_OK)
          << bnorm_last_error();
      Inputs in;
      in.gamma = flags & BNORM_FLAG_AFFINE ? layer.gamma.data() : nullptr;
      in.beta = flags & BNORM_FLAG_AFFINE ? layer.beta.data() : nullptr;
      in.residual = residual.data();
      in.eps = d.eps;
      in.relu = flags & BNORM_FLAG_FUSE_RELU;
      const TrainingResult want =
          ReferenceTraining(g, x.data(), in, d.momentum, layer.mean.data(), layer.var.data());
      EXPECT_TRUE(NearAll("y", y.data(), want.y, kOutputTolerance));
      std::vector<double> spread(g.c);
      for (int64_t c = 0; c < g.c; ++c)
        spread[c] = std::fabs(want.mean[c]) + std::sqrt(want.var[c]);
      // The statistics are x's alone: the residual does not enter them.
      EXPECT_TRUE(NearScaled("save_mean", save_mean.data(), want.mean, spread, kStatsTolerance));
      EXPECT_TRUE(
          NearScaled("save_invstd", save_invstd.data(), want.invstd, want.invstd, kStatsTolerance));
      if (flags & BNORM_FLAG_TRACK_RUNNING_STATS) {
        EXPECT_TRUE(NearScaled("running_var", running_var.data(), want.running_var,
                               want.running_var, kStatsTolerance));
      }
    }
  }
}

// What backward gets from a training step of a residual block.
struct Step {
  std::vector<float> x, residual, y, dy, gamma, save_mean, save_invstd;
  Step(const Geometry& g, uint32_t flags, uint32_t seed)
      : x(ChannelData(g, seed)),
        residual(Uniform(g.Elements(), -2, 2, seed + 1)),
        dy(Uniform(g.Elements(), -1, 1, seed + 2)),
        gamma(Uniform(g.c, -1.5f, 1.5f, seed + 3)) {
    Inputs in;
    in.gamma = gamma.data();
    in.residual = residual.data();
    in.relu = flags & BNORM_FLAG_FUSE_RELU;
    const TrainingResult forward = ReferenceTraining(g, x.data(), in, 0, nullptr, nullptr);
    y.assign(forward.y.begin(), forward.y.end());
    save_mean.assign(forward.mean.begin(), forward.mean.end());
    save_invstd.assign(forward.invstd.begin(), forward.invstd.end());
  }
  // dy where the output is positive (or NaN) with ReLU: the residual's gradient.
  std::vector<float> MaskedDy(uint32_t flags) const {
    std::vector<float> g = dy;
    if (flags & BNORM_FLAG_FUSE_RELU) {
      for (size_t i = 0; i < g.size(); ++i) g[i] = y[i] <= 0 ? 0.0f : dy[i];
    }
    return g;
  }
};

constexpr uint32_t kBackwardFlags[] = {
    0,
    BNORM_FLAG_FUSE_RELU,
    kResidualBlock,
    BNORM_FLAG_USE_GLOBAL_STATS | kResidualBlock,
};

TEST_P(ResidualTest, BackwardMatchesReference) {
  uint32_t seed = 1000;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    for (uint32_t flags : kBackwardFlags) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      const Step step(g, flags, seed += 10);
      const bnorm_desc d = Desc(g.c, layout(), flags);
      std::vector<float> dx(g.Elements(), -7.0f), d_residual(g.Elements(), -7.0f);
      std::vector<float> dgamma(g.c, -7.0f), dbeta(g.c, -7.0f);
      ASSERT_EQ(
          bnorm_backward_residual(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                                  step.gamma.data(), step.save_mean.data(), step.save_invstd.data(),
                                  dx.data(), d_residual.data(), dgamma.data(), dbeta.data()),
          BNORM_OK)
          << bnorm_last_error();
      EXPECT_EQ(d_residual, step.MaskedDy(flags));
      const BackwardResult want =
          ReferenceBackward(g, step.x.data(), step.dy.data(), step.y.data(),
                            flags & BNORM_FLAG_AFFINE ? step.gamma.data() : nullptr,
                            step.save_mean.data(), step.save_invstd.data(),
                            flags & BNORM_FLAG_FUSE_RELU, flags & BNORM_FLAG_USE_GLOBAL_STATS);
      ExpectMatchesBackward(want, dx.data(), dgamma.data(), dbeta.data());

      // dx is bnorm_backward's with the same ReLU mask, bit for bit.
      std::vector<float> plain_dx(g.Elements());
      ASSERT_EQ(bnorm_backward(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                               step.gamma.data(), step.save_mean.data(), step.save_invstd.data(),
                               plain_dx.data(), nullptr, nullptr),
                BNORM_OK);
      EXPECT_EQ(dx, plain_dx);
    }
  }
}

TEST_P(ResidualTest, InPlaceGivesTheSameResult) {
  uint32_t seed = 2000;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const bnorm_desc d = Desc(g.c, layout(), kResidualBlock);
    const Step step(g, kResidualBlock, seed += 10);
    const Layer layer(g.c, seed + 5);
    std::vector<float> y(g.Elements());
    ASSERT_EQ(bnorm_forward_inference_residual(&d, &shape, step.x.data(), step.residual.data(),
                                               y.data(), layer.mean.data(), layer.var.data(),
                                               layer.gamma.data(), layer.beta.data()),
              BNORM_OK);
    for (bool over_x : {true, false}) {
      std::vector<float> x = step.x, residual = step.residual;
      float* out = over_x ? x.data() : residual.data();
      ASSERT_EQ(bnorm_forward_inference_residual(&d, &shape, x.data(), residual.data(), out,
                                                 layer.mean.data(), layer.var.data(),
                                                 layer.gamma.data(), layer.beta.data()),
                BNORM_OK)
          << bnorm_last_error();
      EXPECT_EQ(over_x ? x : residual, y);
    }
    const bnorm_desc training = Desc(g.c, layout(), kResidualBlock);
    std::vector<float> train_y(g.Elements());
    ASSERT_EQ(bnorm_forward_training_residual(
                  &training, &shape, step.x.data(), step.residual.data(), train_y.data(),
                  layer.gamma.data(), layer.beta.data(), nullptr, nullptr, nullptr, nullptr),
              BNORM_OK);
    std::vector<float> residual = step.residual;
    ASSERT_EQ(bnorm_forward_training_residual(
                  &training, &shape, step.x.data(), residual.data(), residual.data(),
                  layer.gamma.data(), layer.beta.data(), nullptr, nullptr, nullptr, nullptr),
              BNORM_OK)
        << bnorm_last_error();
    EXPECT_EQ(residual, train_y);

    std::vector<float> dx(g.Elements()), d_residual(g.Elements());
    ASSERT_EQ(
        bnorm_backward_residual(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                                step.gamma.data(), step.save_mean.data(), step.save_invstd.data(),
                                dx.data(), d_residual.data(), nullptr, nullptr),
        BNORM_OK);
    for (bool dx_over_dy : {true, false}) {
      std::vector<float> dy = step.dy, other(g.Elements());
      float* dx_out = dx_over_dy ? dy.data() : other.data();
      float* d_residual_out = dx_over_dy ? other.data() : dy.data();
      ASSERT_EQ(
          bnorm_backward_residual(&d, &shape, step.x.data(), dy.data(), step.y.data(),
                                  step.gamma.data(), step.save_mean.data(), step.save_invstd.data(),
                                  dx_out, d_residual_out, nullptr, nullptr),
          BNORM_OK)
          << bnorm_last_error();
      EXPECT_EQ(dx_over_dy ? dy : other, dx);
      EXPECT_EQ(dx_over_dy ? other : dy, d_residual);
    }
  }
}

// Outputs this large are streamed past the cache; d_residual is
// streamed beside dx when the two line up, else stored normally.
TEST_P(ResidualTest, LargeGradientsAreTheSameStreamedOrNot) {
  const bnorm_shape shape = InLayout({4, 3, 600, 600}, layout());  // 17.3 MB per tensor
  const Geometry g = Geometry::Of(shape, layout());
  const bnorm_desc d = Desc(g.c, layout(), kResidualBlock);
  const std::vector<float> x = ChannelData(g, 7), dy = Uniform(g.Elements(), -1, 1, 8);
  const std::vector<float> residual = Uniform(g.Elements(), -2, 2, 9);
  const std::vector<float> gamma = Uniform(g.c, 0.5f, 1.5f, 10), beta(g.c, 0.0f);
  std::vector<float> y(g.Elements()), save_mean(g.c), save_invstd(g.c);
  ASSERT_EQ(bnorm_forward_training_residual(&d, &shape, x.data(), residual.data(), y.data(),
                                            gamma.data(), beta.data(), nullptr, nullptr,
                                            save_mean.data(), save_invstd.data()),
            BNORM_OK);
  std::vector<float> plain_dx(g.Elements());
  ASSERT_EQ(bnorm_backward(&d, &shape, x.data(), dy.data(), y.data(), gamma.data(),
                           save_mean.data(), save_invstd.data(), plain_dx.data(), nullptr, nullptr),
            BNORM_OK);
  std::vector<float> masked = dy;
  for (size_t i = 0; i < masked.size(); ++i) masked[i] = y[i] <= 0 ? 0.0f : dy[i];
  // d_residual aligned as dx is, then one float off.
  for (size_t shift : {0, 1}) {
    SCOPED_TRACE(shift);
    std::vector<float> dx(g.Elements()), d_residual_storage(g.Elements() + 1);
    float* d_residual = d_residual_storage.data() + shift;
    ASSERT_EQ(bnorm_backward_residual(&d, &shape, x.data(), dy.data(), y.data(), gamma.data(),
                                      save_mean.data(), save_invstd.data(), dx.data(), d_residual,
                                      nullptr, nullptr),
              BNORM_OK)
        << bnorm_last_error();
    EXPECT_EQ(dx, plain_dx);
    EXPECT_TRUE(std::equal(masked.begin(), masked.end(), d_residual));
  }
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(ResidualTest);

// The residual's own checks; everything else is validated as in the calls
// without one (validation_test.cc).
class ResidualValidation : public ::testing::Test {
 protected:
  static constexpr int64_t kC = 3;
  static constexpr int64_t kCount = 4 * kC * 5;
  const bnorm_desc d_ = Desc(kC, BNORM_LAYOUT_NCHW, kResidualBlock);
  const bnorm_shape shape_ = Shape({4, kC, 5});
  std::vector<float> memory_ = Uniform(8 * kCount, 0.5f, 1, 1);
  float* x_ = memory_.data();
  float* residual_ = x_ + kCount;
  float* y_ = x_ + 2 * kCount;
  float* dy_ = x_ + 3 * kCount;
  float* dx_ = x_ + 4 * kCount;
  float* d_residual_ = x_ + 5 * kCount;
  float* params_ = x_ + 6 * kCount;  // mean, var, gamma, beta

  bnorm_status Inference(const float* residual, float* y) {
    return bnorm_forward_inference_residual(&d_, &shape_, x_, residual, y, params_, params_ + kC,
                                            params_ + 2 * kC, params_ + 3 * kC);
  }
  bnorm_status Backward(float* dx, float* d_residual) {
    return bnorm_backward_residual(&d_, &shape_, x_, dy_, y_, params_ + 2 * kC, params_,
                                   params_ + kC, dx, d_residual, nullptr, nullptr);
  }
  // Runs `call`, expects `status` and `message`, and that nothing changed.
  template <class Call>
  void ExpectRejected(const Call& call, bnorm_status status, const std::string& message) {
    const std::vector<float> before = memory_;
    EXPECT_EQ(call(), status);
    EXPECT_STREQ(bnorm_last_error(), message.c_str());
    EXPECT_EQ(memory_, before);
  }
};

TEST_F(ResidualValidation, ResidualIsRequiredAndChecked) {
  ExpectRejected([&] { return Inference(nullptr, y_); }, BNORM_ERR_NULL_POINTER,
                 "residual is NULL");
  ExpectRejected([&] { return Inference(residual_, residual_ + 1); }, BNORM_ERR_ALIASING,
                 "y overlaps residual (in place is allowed only with the same pointer)");
  ExpectRejected(
      [&] {
        return bnorm_forward_training_residual(&d_, &shape_, x_, nullptr, y_, params_ + 2 * kC,
                                               params_ + 3 * kC, nullptr, nullptr, nullptr,
                                               nullptr);
      },
      BNORM_ERR_NULL_POINTER, "residual is NULL");
  const bnorm_desc wide = Desc(8, BNORM_LAYOUT_NCHW, kResidualBlock);
  ExpectRejected(
      [&] {
        return bnorm_forward_inference_residual(&wide, &shape_, x_, residual_, y_, params_,
                                                params_ + kC, params_ + 2 * kC, params_ + 3 * kC);
      },
      BNORM_ERR_FEATURE_MISMATCH, "input channel dimension (dim 1) is 3 but num_features is 8");
  EXPECT_EQ(Inference(residual_, residual_), BNORM_OK) << bnorm_last_error();
}

TEST_F(ResidualValidation, BackwardNeedsBothGradientsApart) {
  ExpectRejected([&] { return Backward(nullptr, d_residual_); }, BNORM_ERR_NULL_POINTER,
                 "dx is NULL");
  ExpectRejected([&] { return Backward(dx_, nullptr); }, BNORM_ERR_NULL_POINTER,
                 "d_residual is NULL");
  ExpectRejected([&] { return Backward(dy_, dy_); }, BNORM_ERR_ALIASING, "dx overlaps d_residual");
  ExpectRejected([&] { return Backward(dx_, x_); }, BNORM_ERR_ALIASING, "d_residual overlaps x");
  EXPECT_EQ(Backward(dx_, dy_), BNORM_OK) << bnorm_last_error();
}

}  // namespace
}  // namespace bnorm_test
