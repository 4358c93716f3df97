// The tests' own bf16 and f16 oracle (half_types.h), checked on known
// constants and against itself: the float roundings (integer arithmetic),
// the double rounding (another algorithm) and, for f16, GCC's _Float16 must
// agree around every half value and on random floats.
#include "tests/half_types.h"

#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <ios>
#include <limits>
#include <random>

namespace bnorm_test {
namespace {

constexpr bnorm_dtype kBf16 = BNORM_DTYPE_BF16;
constexpr bnorm_dtype kF16 = BNORM_DTYPE_F16;

float FromBits(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t Bf16(uint32_t float_bits) { return RoundToHalf(kBf16, FromBits(float_bits)); }

// The compiler's own rounding to binary16, to nearest even, where it has
// _Float16 (GCC 12 does, which the test command builds with; clang 14 does
// not on x86-64, and there this third opinion is left out).
#if defined(__FLT16_MAX__)
constexpr bool kHasFloat16 = true;
uint16_t CompilerF16(float value) {
  const _Float16 h = static_cast<_Float16>(value);
  uint16_t bits;
  memcpy(&bits, &h, sizeof(bits));
  return bits;
}
#else
constexpr bool kHasFloat16 = false;
uint16_t CompilerF16(float) { return 0; }
#endif

TEST(HalfTypesTest, F16RoundsKnownConstants) {
  EXPECT_EQ(RoundToHalf(kF16, 1.0f), 0x3C00);
  EXPECT_EQ(RoundToHalf(kF16, 65504.0f), 0x7BFF);
  EXPECT_EQ(RoundToHalf(kF16, std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(RoundToHalf(kF16, 65520.0f), 0x7C00);  // the tie past the largest value: inf
  EXPECT_EQ(RoundToHalf(kF16, -65520.0f), 0xFC00);
  EXPECT_EQ(RoundToHalf(kF16, 0x1p-24f), 0x0001);
  EXPECT_EQ(RoundToHalf(kF16, 0x1p-25f), 0x0000);    // a tie, to even
  EXPECT_EQ(RoundToHalf(kF16, 0x1.8p-24f), 0x0002);  // a tie, to even
  EXPECT_EQ(RoundToHalf(kF16, -0.0f), 0x8000);
  EXPECT_EQ(RoundToHalf(kF16, -INFINITY), 0xFC00);
  EXPECT_TRUE(IsQuietHalfNan(kF16, RoundToHalf(kF16, NAN)));
  // A payload only in bits that f16 drops must still give a NaN, not inf.
  EXPECT_TRUE(IsQuietHalfNan(kF16, RoundToHalf(kF16, FromBits(0x7F800001))));
  EXPECT_EQ(WidenHalf(kF16, 0x0001), 0x1p-24f);
  EXPECT_EQ(WidenHalf(kF16, 0x7BFF), 65504.0f);
}

TEST(HalfTypesTest, Bf16RoundsKnownConstants) {
  EXPECT_EQ(Bf16(0x3F800000), 0x3F80);  // 1.0f
  EXPECT_EQ(Bf16(0x3F808000), 0x3F80);  // a tie, down to even
  EXPECT_EQ(Bf16(0x3F818000), 0x3F82);  // a tie, up to even
  EXPECT_EQ(Bf16(0x3F808001), 0x3F81);
  EXPECT_EQ(Bf16(0x3F807FFF), 0x3F80);
  EXPECT_EQ(Bf16(0x7F7F7FFF), 0x7F7F);
  EXPECT_EQ(Bf16(0x7F7FFFFF), 0x7F80);  // the largest float: inf
  EXPECT_EQ(Bf16(0xFF800000), 0xFF80);
  EXPECT_EQ(Bf16(0x80000000), 0x8000);
  EXPECT_EQ(Bf16(0x00008000), 0x0000);  // a subnormal tie, to even
  EXPECT_EQ(Bf16(0x00018000), 0x0002);
  // NaNs whose payload is only in the dropped bits: NaN, never inf.
  EXPECT_TRUE(IsQuietHalfNan(kBf16, Bf16(0x7F800001)));
  EXPECT_TRUE(IsQuietHalfNan(kBf16, Bf16(0xFF800001)));
  EXPECT_TRUE(IsQuietHalfNan(kBf16, Bf16(0xFFFFFFFF)));
  EXPECT_EQ(WidenHalf(kBf16, 0x3F81), 0x1.02p0f);
}

TEST(HalfTypesTest, DoublesRoundOnceNotThroughFloat) {
  // float rounds these to a tie of the half type, which then goes to even.
  const double bf16_above_tie = 1.0 + 0x1p-8 + 0x1p-30;
  EXPECT_EQ(RoundToHalf(kBf16, bf16_above_tie), 0x3F81);
  EXPECT_EQ(RoundToHalf(kBf16, static_cast<float>(bf16_above_tie)), 0x3F80);
  const double f16_above_tie = 1.0 + 0x1p-11 + 0x1p-40;
  EXPECT_EQ(RoundToHalf(kF16, f16_above_tie), 0x3C01);
  EXPECT_EQ(RoundToHalf(kF16, static_cast<float>(f16_above_tie)), 0x3C00);
  EXPECT_EQ(RoundToHalf(kBf16, 0x1.FFp127), 0x7F80);  // the tie with inf
  EXPECT_EQ(RoundToHalf(kBf16, 0x1.FEFFFFFFFp127), 0x7F7F);
  EXPECT_EQ(RoundToHalf(kBf16, 1e300), 0x7F80);
  EXPECT_EQ(RoundToHalf(kF16, -1e300), 0xFC00);
  EXPECT_EQ(RoundToHalf(kBf16, -1e-300), 0x8000);
  EXPECT_EQ(RoundToHalf(kF16, 0x1p-25 + 0x1p-60), 0x0001);
  EXPECT_TRUE(IsQuietHalfNan(kF16, RoundToHalf(kF16, std::nan(""))));
}

// Every half value widens and rounds back to itself; halfway to its neighbour
// away from zero it goes to the even one; and the float and double roundings
// agree there and one float ulp to either side.
TEST(HalfTypesTest, RoundingsAgreeAroundEveryHalfValue) {
  for (bnorm_dtype dtype : kHalfDtypes) {
    SCOPED_TRACE(DtypeName(dtype));
    for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
      const uint16_t h = static_cast<uint16_t>(bits);
      if (IsHalfNan(dtype, h)) continue;
      const float v = WidenHalf(dtype, h);
      ASSERT_EQ(RoundToHalf(dtype, v), h) << std::hex << bits;
      ASSERT_EQ(RoundToHalf(dtype, static_cast<double>(v)), h) << std::hex << bits;
      if (std::isinf(v)) continue;
      // Exact in float: the half types have far fewer significand bits.
      const float halfway = v + std::copysign(static_cast<float>(HalfUlp(dtype, v) / 2), v);
      const uint16_t even = (h & 1) ? h + 1 : h;  // h + 1 is the neighbour away from zero
      ASSERT_EQ(RoundToHalf(dtype, halfway), even) << std::hex << bits;
      for (float f : {halfway, std::nextafter(halfway, 0.0f),
                      std::nextafter(halfway, std::copysign(INFINITY, v))}) {
        ASSERT_EQ(RoundToHalf(dtype, f), RoundToHalf(dtype, static_cast<double>(f)))
            << std::hex << bits << " " << std::hexfloat << f;
        if (dtype == kF16 && kHasFloat16) {
          ASSERT_EQ(RoundToHalf(dtype, f), CompilerF16(f)) << std::hexfloat << f;
        }
      }
    }
  }
}

TEST(HalfTypesTest, RoundingsAgreeOnRandomFloats) {
  std::mt19937 rng(5);
  for (int i = 0; i < 1000000; ++i) {
    const float f = FromBits(rng());
    if (std::isnan(f)) continue;
    ASSERT_EQ(RoundToHalf(kBf16, f), RoundToHalf(kBf16, static_cast<double>(f)))
        << std::hexfloat << f;
    ASSERT_EQ(RoundToHalf(kF16, f), RoundToHalf(kF16, static_cast<double>(f)))
        << std::hexfloat << f;
    if (kHasFloat16) {
      ASSERT_EQ(RoundToHalf(kF16, f), CompilerF16(f)) << std::hexfloat << f;
    }
  }
}

TEST(HalfTypesTest, UlpDistanceCountsRepresentableSteps) {
  EXPECT_EQ(UlpDistance(kF16, 0x3C00, 0x3C01), 1u);
  EXPECT_EQ(UlpDistance(kF16, 0x3C01, 0x3C00), 1u);
  EXPECT_EQ(UlpDistance(kF16, 0x0000, 0x8000), 0u);  // +0 and -0
  EXPECT_EQ(UlpDistance(kF16, 0x0001, 0x8001), 2u);  // across zero
  EXPECT_EQ(UlpDistance(kF16, 0x7BFF, 0x7C00), 1u);  // the largest value and inf
  EXPECT_EQ(UlpDistance(kF16, 0x3C00, 0xBC00), 2u * 0x3C00);
  EXPECT_EQ(UlpDistance(kBf16, 0x3F80, 0x3F82), 2u);
  EXPECT_EQ(UlpDistance(kBf16, 0x3F80, 0x7FC0), std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(UlpDistance(kBf16, 0x7FC0, 0xFFC1), 0u);  // two NaNs
}

TEST(HalfTypesTest, HalfUlpIsTheSpacingAtThatMagnitude) {
  EXPECT_EQ(HalfUlp(kBf16, 1.0), 0x1p-7);
  EXPECT_EQ(HalfUlp(kBf16, -1.99), 0x1p-7);
  EXPECT_EQ(HalfUlp(kBf16, 2.0), 0x1p-6);
  EXPECT_EQ(HalfUlp(kBf16, 1e-45), 0x1p-133);
  EXPECT_EQ(HalfUlp(kF16, 1.0), 0x1p-10);
  EXPECT_EQ(HalfUlp(kF16, 65504.0), 32.0);
  EXPECT_EQ(HalfUlp(kF16, 0.0), 0x1p-24);
  EXPECT_EQ(HalfUlp(kF16, 0x1p-20), 0x1p-24);  // subnormal spacing
}

}  // namespace
}  // namespace bnorm_test
