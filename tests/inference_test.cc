// bnorm_forward_inference against the float64 reference on every runnable
// SIMD target, both layouts, the shape sweep and every flag that applies.
#include <gtest/gtest.h>

#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

constexpr double kTolerance = 1e-5;

class InferenceTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

TEST_P(InferenceTest, MatchesReferenceForEveryShapeAndFlag) {
  uint32_t seed = 1;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    const Layer layer(g.c, seed++);
    for (uint32_t flags :
         {0u, BNORM_FLAG_AFFINE, BNORM_FLAG_FUSE_RELU, BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU}) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      const bnorm_desc d = Desc(g.c, layout(), flags);
      const bool affine = flags & BNORM_FLAG_AFFINE;
      std::vector<float> y(x.size(), -7.0f);
      // Without AFFINE, gamma and beta are ignored, so NULL is fine.
      ASSERT_EQ(bnorm_forward_inference(&d, &shape, x.data(), y.data(), layer.mean.data(),
                                        layer.var.data(), affine ? layer.gamma.data() : nullptr,
                                        affine ? layer.beta.data() : nullptr),
                BNORM_OK)
          << bnorm_last_error();
      EXPECT_STREQ(bnorm_last_error(), "");
      Inputs in;
      in.gamma = affine ? layer.gamma.data() : nullptr;
      in.beta = affine ? layer.beta.data() : nullptr;
      in.eps = d.eps;
      in.relu = flags & BNORM_FLAG_FUSE_RELU;
      EXPECT_TRUE(NearAll("y", y.data(),
                          ReferenceInference(g, x.data(), layer.mean.data(), layer.var.data(), in),
                          kTolerance));
    }
  }
}

// Outputs of 2 MiB and more are written with streaming stores, which need
// aligned vectors: odd sizes, and y one float past a cache-line boundary, so
// that every row or segment starts with a peel.
TEST_P(InferenceTest, StreamedOutputMatchesReference) {
  const std::vector<bnorm_shape> shapes =
      layout() == BNORM_LAYOUT_NCHW
          ? std::vector<bnorm_shape>{Shape({3, 17, 113, 97}), Shape({8193, 67})}
          : std::vector<bnorm_shape>{Shape({5, 41, 41, 67}), Shape({8193, 67})};
  uint32_t seed = 300;
  for (const bnorm_shape& shape : shapes) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    ASSERT_GE(x.size() * sizeof(float), size_t{2} << 20);
    const Layer layer(g.c, seed++);
    const bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU);
    std::vector<float> storage(x.size() + 16, -7.0f);
    float* y = storage.data() + 1;
    ASSERT_EQ(bnorm_forward_inference(&d, &shape, x.data(), y, layer.mean.data(), layer.var.data(),
                                      layer.gamma.data(), layer.beta.data()),
              BNORM_OK)
        << bnorm_last_error();
    Inputs in;
    in.gamma = layer.gamma.data();
    in.beta = layer.beta.data();
    in.eps = d.eps;
    in.relu = true;
    EXPECT_TRUE(NearAll("y", y,
                        ReferenceInference(g, x.data(), layer.mean.data(), layer.var.data(), in),
                        kTolerance));
    EXPECT_EQ(storage[0], -7.0f);
    EXPECT_EQ(storage[x.size() + 1], -7.0f);
  }
}

TEST_P(InferenceTest, InPlaceGivesTheSameResult) {
  uint32_t seed = 100;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const Layer layer(g.c, seed++);
    const bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU);
    const std::vector<float> x = ChannelData(g, seed++);
    std::vector<float> y(x.size());
    ASSERT_EQ(bnorm_forward_inference(&d, &shape, x.data(), y.data(), layer.mean.data(),
                                      layer.var.data(), layer.gamma.data(), layer.beta.data()),
              BNORM_OK);
    std::vector<float> data = x;
    ASSERT_EQ(bnorm_forward_inference(&d, &shape, data.data(), data.data(), layer.mean.data(),
                                      layer.var.data(), layer.gamma.data(), layer.beta.data()),
              BNORM_OK)
        << bnorm_last_error();
    EXPECT_EQ(data, y);
  }
}

TEST_P(InferenceTest, OneValuePerChannelIsFine) {
  for (const bnorm_shape& shape : {InLayout({1, 67}, layout()), InLayout({1, 3, 1, 1}, layout()),
                                   InLayout({1, 17, 1, 1, 1}, layout())}) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const Layer layer(g.c, 7);
    const std::vector<float> x = ChannelData(g, 8);
    std::vector<float> y(x.size());
    const bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_AFFINE);
    ASSERT_EQ(bnorm_forward_inference(&d, &shape, x.data(), y.data(), layer.mean.data(),
                                      layer.var.data(), layer.gamma.data(), layer.beta.data()),
              BNORM_OK)
        << bnorm_last_error();
    Inputs in;
    in.gamma = layer.gamma.data();
    in.beta = layer.beta.data();
    EXPECT_TRUE(NearAll("y", y.data(),
                        ReferenceInference(g, x.data(), layer.mean.data(), layer.var.data(), in),
                        kTolerance));
  }
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(InferenceTest);

}  // namespace
}  // namespace bnorm_test
