// Batch norm folded for inference: the per-channel scale and shift, inference
// from them on every target and layout, and folding into the layer before.
#include <gtest/gtest.h>
#include <stdint.h>

#include <cmath>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

TEST(FoldScaleShiftTest, MatchesTheFormula) {
  for (int64_t c : {1, 3, 17, 67}) {
    for (uint32_t flags : {0u, BNORM_FLAG_AFFINE}) {
      SCOPED_TRACE("C=" + std::to_string(c) + " " + FlagNames(flags));
      const Layer layer(c, 10 + static_cast<uint32_t>(c));
      bnorm_desc d = Desc(c, BNORM_LAYOUT_NCHW, flags);
      d.eps = 1e-3f;
      const bool affine = flags & BNORM_FLAG_AFFINE;
      std::vector<float> scale(c), shift(c);
      ASSERT_EQ(bnorm_fold_scale_shift(
                    &d, layer.mean.data(), layer.var.data(), affine ? layer.gamma.data() : nullptr,
                    affine ? layer.beta.data() : nullptr, scale.data(), shift.data()),
                BNORM_OK)
          << bnorm_last_error();
      std::vector<double> want_scale(c), want_shift(c);
      for (int64_t i = 0; i < c; ++i) {
        want_scale[i] = layer.Scale(i, d.eps, affine);
        want_shift[i] = (affine ? layer.beta[i] : 0.0) - layer.mean[i] * want_scale[i];
      }
      EXPECT_TRUE(NearAll("scale", scale.data(), want_scale, 1e-7));
      EXPECT_TRUE(NearAll("shift", shift.data(), want_shift, 1e-7));
    }
  }
}

class ScaleShiftInferenceTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

// The folded pair gives bnorm_forward_inference's result, to float rounding.
TEST_P(ScaleShiftInferenceTest, MatchesInferenceWithTheStatistics) {
  uint32_t seed = 500;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    const Layer layer(g.c, seed++);
    for (uint32_t relu : {0u, BNORM_FLAG_FUSE_RELU}) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(relu));
      const bnorm_desc d = Desc(g.c, layout(), BNORM_FLAG_AFFINE | relu);
      std::vector<float> scale(g.c), shift(g.c);
      ASSERT_EQ(bnorm_fold_scale_shift(&d, layer.mean.data(), layer.var.data(), layer.gamma.data(),
                                       layer.beta.data(), scale.data(), shift.data()),
                BNORM_OK);
      std::vector<float> y(x.size(), -7.0f);
      ASSERT_EQ(
          bnorm_forward_scale_shift(&d, &shape, x.data(), y.data(), scale.data(), shift.data()),
          BNORM_OK)
          << bnorm_last_error();
      EXPECT_STREQ(bnorm_last_error(), "");
      // The float64 result of the float scale and shift, and of the statistics.
      std::vector<double> want(x.size());
      for (int64_t c = 0; c < g.c; ++c) {
        g.ForChannel(c, [&](int64_t i) {
          const double v = x[i] * static_cast<double>(scale[c]) + shift[c];
          want[i] = relu && !(v > 0) && !std::isnan(v) ? 0.0 : v;
        });
      }
      EXPECT_TRUE(NearAll("y", y.data(), want, 1e-6));
      Inputs in;
      in.gamma = layer.gamma.data();
      in.beta = layer.beta.data();
      in.eps = d.eps;
      in.relu = relu != 0;
      EXPECT_TRUE(NearAll("y vs inference", y.data(),
                          ReferenceInference(g, x.data(), layer.mean.data(), layer.var.data(), in),
                          1e-5));
      std::vector<float> data = x;
      ASSERT_EQ(bnorm_forward_scale_shift(&d, &shape, data.data(), data.data(), scale.data(),
                                          shift.data()),
                BNORM_OK);
      EXPECT_EQ(data, y) << "in place";
    }
  }
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(ScaleShiftInferenceTest);

TEST(FoldIntoLayerTest, ScalesEachOutputChannelsRowAndShiftsItsBias) {
  for (int64_t c : {1, 3, 17}) {
    for (int64_t row_length : {1, 9, 27}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE("C=" + std::to_string(c) + " row_length=" + std::to_string(row_length) +
                     (with_bias ? " bias" : " no bias"));
        const Layer layer(c, 40);
        const bnorm_desc d = Desc(c, BNORM_LAYOUT_NCHW, BNORM_FLAG_AFFINE);
        const std::vector<float> w = Uniform(c * row_length, -1, 1, 41);
        const std::vector<float> b = Uniform(c, -1, 1, 42);
        std::vector<float> fw(w.size(), -7.0f), fb(c, -7.0f);
        ASSERT_EQ(bnorm_fold_into_layer(&d, row_length, w.data(), with_bias ? b.data() : nullptr,
                                        layer.mean.data(), layer.var.data(), layer.gamma.data(),
                                        layer.beta.data(), fw.data(), fb.data()),
                  BNORM_OK)
            << bnorm_last_error();
        std::vector<double> want_w(w.size()), want_b(c);
        for (int64_t o = 0; o < c; ++o) {
          const double s = layer.Scale(o, d.eps, true);
          for (int64_t k = 0; k < row_length; ++k) {
            want_w[o * row_length + k] = w[o * row_length + k] * s;
          }
          want_b[o] = ((with_bias ? b[o] : 0.0) - layer.mean[o]) * s + layer.beta[o];
        }
        EXPECT_TRUE(NearAll("folded_weights", fw.data(), want_w, 1e-7));
        EXPECT_TRUE(NearAll("folded_bias", fb.data(), want_b, 1e-7));

        // In place: the same results.
        std::vector<float> w2 = w, b2 = b;
        ASSERT_EQ(
            bnorm_fold_into_layer(&d, row_length, w2.data(), with_bias ? b2.data() : nullptr,
                                  layer.mean.data(), layer.var.data(), layer.gamma.data(),
                                  layer.beta.data(), w2.data(), with_bias ? b2.data() : fb.data()),
            BNORM_OK)
            << bnorm_last_error();
        EXPECT_EQ(w2, fw);
        if (with_bias) {
          EXPECT_EQ(b2, fb);
        }
      }
    }
  }
}

// A rejected call names the problem and writes nothing.
TEST(FoldingValidationTest, RejectsBadArgumentsWithoutWriting) {
  const int64_t c = 4, row_length = 3;
  const Layer layer(c, 60);
  const bnorm_desc d = Desc(c, BNORM_LAYOUT_NCHW, BNORM_FLAG_AFFINE);
  std::vector<float> w = Uniform(c * row_length, -1, 1, 61), b = Uniform(c, -1, 1, 62);
  std::vector<float> out(2 * c * row_length + 2 * c, -7.0f);
  const std::vector<float> untouched = out;
  float* fw = out.data();
  float* fb = out.data() + c * row_length;

  const auto fold = [&](const bnorm_desc* desc, int64_t rows, const float* gamma,
                        float* weights_out, float* bias_out) {
    return bnorm_fold_into_layer(desc, rows, w.data(), b.data(), layer.mean.data(),
                                 layer.var.data(), gamma, layer.beta.data(), weights_out, bias_out);
  };
  EXPECT_EQ(fold(nullptr, row_length, layer.gamma.data(), fw, fb), BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "desc is NULL");
  EXPECT_EQ(fold(&d, 0, layer.gamma.data(), fw, fb), BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("row_length is 0"), std::string::npos);
  EXPECT_EQ(fold(&d, INT64_MAX / 2, layer.gamma.data(), fw, fb), BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(fold(&d, row_length, nullptr, fw, fb), BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "gamma is NULL but BNORM_FLAG_AFFINE is set");
  // folded_bias overlapping the end of folded_weights.
  EXPECT_EQ(fold(&d, row_length, layer.gamma.data(), fw, fw + c * row_length - 1),
            BNORM_ERR_ALIASING);
  EXPECT_STREQ(bnorm_last_error(), "folded_weights overlaps folded_bias");
  // In place is only the same pointer.
  EXPECT_EQ(
      bnorm_fold_into_layer(&d, row_length, w.data(), b.data(), layer.mean.data(), layer.var.data(),
                            layer.gamma.data(), layer.beta.data(), w.data() + 1, fb),
      BNORM_ERR_ALIASING);
  bnorm_desc bad_eps = d;
  bad_eps.eps = 0;
  EXPECT_EQ(fold(&bad_eps, row_length, layer.gamma.data(), fw, fb), BNORM_ERR_INVALID_ARGUMENT);

  float* scale = out.data();
  EXPECT_EQ(bnorm_fold_scale_shift(&d, layer.mean.data(), layer.var.data(), layer.gamma.data(),
                                   layer.beta.data(), scale, scale + 1),
            BNORM_ERR_ALIASING);
  EXPECT_EQ(bnorm_fold_scale_shift(&d, nullptr, layer.var.data(), layer.gamma.data(),
                                   layer.beta.data(), scale, scale + c),
            BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "mean is NULL");

  // Inference from a scale and shift checks the input's channels like the rest.
  const bnorm_shape wrong = Shape({2, 5, 3});
  std::vector<float> x(30, 1.0f);
  EXPECT_EQ(bnorm_forward_scale_shift(&d, &wrong, x.data(), out.data(), layer.gamma.data(),
                                      layer.beta.data()),
            BNORM_ERR_FEATURE_MISMATCH);
  EXPECT_STREQ(bnorm_last_error(), "input channel dimension (dim 1) is 5 but num_features is 4");
  EXPECT_EQ(out, untouched);
}

}  // namespace
}  // namespace bnorm_test
