// bf16 and f16 tensors holding the values where rounding goes wrong first:
// NaN, infinities, -0, the type's subnormals and largest values, results
// past the type's range or in its subnormals, and exact ties. On every
// runnable SIMD target and both layouts.
#include <gtest/gtest.h>
#include <stdint.h>

#include <cmath>
#include <ios>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/half_calls.h"
#include "tests/half_types.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

class HalfSpecialValuesTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

// Sets the first values of channel c (in its memory order) to `values`.
void SetFirst(const Geometry& g, int64_t c, std::vector<float>& tensor,
              const std::vector<float>& values) {
  size_t next = 0;
  g.ForChannel(c, [&](int64_t i) {
    if (next < values.size()) tensor[i] = values[next++];
  });
}

// Five channels: NaN and infinities in channel 0; -0, the type's subnormals
// and largest values in channel 1, whose gamma sends results past f16's
// range; gammas that send channels 2 and 3 into f16's and bf16's subnormals
// and channel 4 past float's range. NaN, infinities and zeros in dy, the
// residual and the forward output y that backward's ReLU mask reads.
Batch SpecialBatch(bnorm_dtype dtype, const Geometry& g) {
  const float inf = INFINITY, nan = NAN;
  const bool bf16 = dtype == BNORM_DTYPE_BF16;
  const float largest = WidenHalf(dtype, bf16 ? 0x7F7F : 0x7BFF);
  const float smallest = WidenHalf(dtype, 0x0001);
  const float largest_subnormal = WidenHalf(dtype, bf16 ? 0x007F : 0x03FF);
  Batch b(dtype, g, 77);
  SetFirst(g, 0, b.x, {nan, inf, -inf});
  SetFirst(g, 1, b.x, {-0.0f, 0.0f, smallest, -smallest, largest_subnormal, largest, -largest});
  b.layer.gamma = {1.0f, 1e4f, 1e-6f, 1e-38f, 1e38f};
  b.layer.beta = {0.5f, -0.25f, 0.0f, 0.0f, 0.0f};
  SetFirst(g, 2, b.dy, {nan, inf, -inf, -0.0f});
  SetFirst(g, 3, b.residual, {inf, -inf, nan, -0.0f});
  b.Derive(dtype, g);
  SetFirst(g, 4, b.y, {-0.0f, 0.0f, nan, -inf, inf});
  return b;
}

TEST_P(HalfSpecialValuesTest, EveryCallHandlesThem) {
  int index = 0;
  for (bnorm_dtype dtype : kHalfDtypes) {
    for (const bnorm_shape& shape : {InLayout({4, 5, 6}, layout()), InLayout({9, 5}, layout())}) {
      const Case k = MakeCase(dtype, layout(), shape, index++, false);
      SCOPED_TRACE(Describe(k));
      CheckEveryCall(k, SpecialBatch(dtype, k.g));
    }
  }
}

// One channel of bnorm_forward_scale_shift: x * scale + shift is exact in
// float, so y is x * scale + shift rounded once to the type.
struct KnownRounding {
  const char* what;
  uint16_t x;
  float scale, shift;
  uint16_t y;
};
constexpr uint16_t kQuietNan = 0xFFFF;  // in `y`: any quiet NaN

const std::vector<KnownRounding>& KnownRoundings(bnorm_dtype dtype) {
  static const std::vector<KnownRounding> bf16 = {
      {"1 + 2^-8, a tie, to even 1", 0x3F80, 1, 0x1p-8f, 0x3F80},
      {"1 + 3 * 2^-8, a tie, to even 1 + 2^-6", 0x3F80, 1, 0x3p-8f, 0x3F82},
      {"just above a tie: up", 0x3F80, 1, 0x1p-8f + 0x1p-20f, 0x3F81},
      {"just below a tie: down", 0x3F80, 1, 0x1p-8f - 0x1p-20f, 0x3F80},
      {"the largest float: up to inf", 0x3F80, 0x1.FFFFFEp127f, 0, 0x7F80},
      {"minus the largest float: to -inf", 0xBF80, 0x1.FFFFFEp127f, 0, 0xFF80},
      {"just below the tie with inf: the largest bf16", 0x3F80, 0x1.FEFFFEp127f, 0, 0x7F7F},
      {"the smallest subnormal, 2^-133, read exactly", 0x0001, 0x1p100f, 0, 0x2F00},
      {"subnormal result 2^-130", 0x0D80, 0x1p-30f, 0, 0x0008},
      {"subnormal 1.5 * 2^-133, a tie, to even", 0x0D80, 0x1.8p-33f, 0, 0x0002},
      {"subnormal 2.5 * 2^-133, a tie, to even", 0x0D80, 0x1.4p-32f, 0, 0x0002},
      {"-0 stays -0", 0x8000, 1, -0.0f, 0x8000},
      {"1 - 1 is +0", 0x3F80, 1, -1, 0x0000},
      {"inf", 0x7F80, 1, 0, 0x7F80},
      {"-inf", 0x7F80, -1, 0, 0xFF80},
      {"inf * 0 is NaN", 0x7F80, 0, 0, kQuietNan},
      {"a signaling NaN comes out quiet", 0x7F81, 1, 0, kQuietNan},
      {"a negative NaN", 0xFFC1, 1, 0, kQuietNan},
  };
  static const std::vector<KnownRounding> f16 = {
      {"1 + 2^-11, a tie, to even 1", 0x3C00, 1, 0x1p-11f, 0x3C00},
      {"1 + 3 * 2^-11, a tie, to even 1 + 2^-9", 0x3C00, 1, 0x3p-11f, 0x3C02},
      {"just above a tie: up", 0x3C00, 1, 0x1p-11f + 0x1p-20f, 0x3C01},
      {"the largest f16", 0x3C00, 65504, 0, 0x7BFF},
      {"65519, below the tie with inf", 0x3C00, 65519, 0, 0x7BFF},
      {"65520, the tie with inf: inf", 0x3C00, 65520, 0, 0x7C00},
      {"-65520: -inf", 0x3C00, -65520, 0, 0xFC00},
      {"the smallest subnormal, 2^-24", 0x3C00, 0x1p-24f, 0, 0x0001},
      {"2^-25, a tie, to even 0", 0x3C00, 0x1p-25f, 0, 0x0000},
      {"1.5 * 2^-24, a tie, to even", 0x3C00, 0x1.8p-24f, 0, 0x0002},
      {"subnormal 2^-15", 0x3C00, 0x1p-15f, 0, 0x0200},
      {"2^-14 - 2^-25, a tie, up to the smallest normal", 0x3C00, 0x1.FFCp-15f, 0, 0x0400},
      {"-2^-26: -0", 0x3C00, -0x1p-26f, 0, 0x8000},
      {"the smallest subnormal read exactly", 0x0001, 0x1p20f, 0, 0x2C00},
      {"the largest subnormal read and written", 0x03FF, 1, 0, 0x03FF},
      {"-0 stays -0", 0x8000, 1, -0.0f, 0x8000},
      {"inf", 0x7C00, 1, 0, 0x7C00},
      {"-inf", 0x7C00, -1, 0, 0xFC00},
      {"inf * 0 is NaN", 0x7C00, 0, 0, kQuietNan},
      {"a signaling NaN comes out quiet", 0x7D00, 1, 0, kQuietNan},
      {"a negative NaN", 0xFE01, 1, 0, kQuietNan},
  };
  return dtype == BNORM_DTYPE_BF16 ? bf16 : f16;
}

// Each case fills a channel of 18 values, so that every target runs it
// through full vectors and through a remainder.
TEST_P(HalfSpecialValuesTest, ExactResultsRoundToKnownValues) {
  for (bnorm_dtype dtype : kHalfDtypes) {
    const std::vector<KnownRounding>& cases = KnownRoundings(dtype);
    const int64_t channels = static_cast<int64_t>(cases.size());
    const bnorm_shape shape = InLayout({2, channels, 9}, layout());
    const Geometry g = Geometry::Of(shape, layout());
    std::vector<uint16_t> x(g.Elements()), y(g.Elements(), 0x1234);
    std::vector<float> scale(channels), shift(channels);
    for (int64_t c = 0; c < channels; ++c) {
      g.ForChannel(c, [&](int64_t i) { x[i] = cases[c].x; });
      scale[c] = cases[c].scale;
      shift[c] = cases[c].shift;
    }
    bnorm_desc d = Desc(channels, layout(), 0);
    d.dtype = dtype;
    ASSERT_EQ(bnorm_forward_scale_shift(&d, &shape, x.data(), y.data(), scale.data(), shift.data()),
              BNORM_OK)
        << bnorm_last_error();
    for (int64_t c = 0; c < channels; ++c) {
      const KnownRounding& want = cases[c];
      SCOPED_TRACE(std::string(DtypeName(dtype)) + ": " + want.what);
      // The table agrees with the oracle (the float product is exact).
      const float exact = WidenHalf(dtype, want.x) * want.scale + want.shift;
      const uint16_t oracle = RoundToHalf(dtype, exact);
      if (want.y == kQuietNan) {
        EXPECT_TRUE(IsQuietHalfNan(dtype, oracle));
      } else {
        EXPECT_EQ(oracle, want.y) << std::hex << oracle;
      }
      int64_t wrong = 0;
      uint16_t first = 0;
      g.ForChannel(c, [&](int64_t i) {
        const bool right = want.y == kQuietNan ? IsQuietHalfNan(dtype, y[i]) : y[i] == want.y;
        if (!right && wrong++ == 0) first = y[i];
      });
      EXPECT_EQ(wrong, 0) << "of " << g.PerChannel() << "; first 0x" << std::hex << first
                          << ", want 0x" << want.y;
    }
  }
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(HalfSpecialValuesTest);

}  // namespace
}  // namespace bnorm_test
