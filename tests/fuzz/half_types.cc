#include "half_types.h"

#include <math.h>
#include <string.h>

#include <algorithm>

#include "bnorm/bnorm.h"

namespace bnorm_fuzz {
namespace {

uint32_t BitsOf(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits;
}

float FloatOf(uint32_t bits) {
  float v;
  memcpy(&v, &bits, sizeof(v));
  return v;
}

uint16_t RoundToBf16(uint32_t bits) {
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
}

// Checked against GCC 12's float -> _Float16 cast on all 2^32 floats.
uint16_t RoundToF16(uint32_t bits) {
  const uint32_t sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u)
    return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  // 65520 = 65504 + half an ulp and up round to infinity.
  if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (magnitude >= 0x38800000u) {  // 2^-14, the smallest normal f16, and up
    const uint32_t rebiased = magnitude - ((127u - 15u) << 23);
    return static_cast<uint16_t>(sign | (rebiased + 0xFFFu + ((rebiased >> 13) & 1)) >> 13);
  }
  // Subnormal: a multiple of 2^-24. Below 2^-25 (half the smallest) is 0,
  // and 2^-25 itself ties to the even 0.
  if (magnitude <= 0x33000000u) return static_cast<uint16_t>(sign);
  const uint32_t exponent = magnitude >> 23, significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - exponent;  // from 2^(exponent - 150) units to 2^-24 units
  const uint32_t quotient = significand >> shift, rest = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  const bool up = rest > half || (rest == half && (quotient & 1));
  return static_cast<uint16_t>(sign | (quotient + up));
}

float F16ToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return FloatOf(sign | 0x7F800000u | mantissa << 13);
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;  // exact
    return FloatOf(sign | BitsOf(magnitude));
  }
  return FloatOf(sign | (exponent + 127 - 15) << 23 | mantissa << 13);
}

}  // namespace

uint16_t RoundToHalf(int32_t dtype, float v) {
  return dtype == BNORM_DTYPE_BF16 ? RoundToBf16(BitsOf(v)) : RoundToF16(BitsOf(v));
}

uint16_t RoundToHalf(int32_t dtype, long double v) {
  if (isnan(v) || isinf(v)) return RoundToHalf(dtype, static_cast<float>(v));
  // The type's unit at |v| (its subnormals' below the smallest normal): the
  // division by it is exact, and nearbyintl, in the default rounding mode,
  // rounds to nearest even.
  const bool bf16 = dtype == BNORM_DTYPE_BF16;
  const int fraction_bits = bf16 ? 7 : 10, min_exponent = bf16 ? -126 : -14;
  int exponent;
  frexpl(v, &exponent);  // |v| in [2^(exponent - 1), 2^exponent)
  const long double ulp = ldexpl(1.0L, std::max(exponent - 1, min_exponent) - fraction_bits);
  const long double rounded = nearbyintl(v / ulp) * ulp;
  // A value of the type now, which the float overload keeps exactly, or past
  // its largest finite value, which it makes infinite.
  return RoundToHalf(dtype, static_cast<float>(rounded));
}

float HalfToFloat(int32_t dtype, uint16_t bits) {
  return dtype == BNORM_DTYPE_BF16 ? FloatOf(static_cast<uint32_t>(bits) << 16) : F16ToFloat(bits);
}

bool IsHalfNan(int32_t dtype, uint16_t bits) {
  return (bits & 0x7FFFu) > (dtype == BNORM_DTYPE_BF16 ? 0x7F80u : 0x7C00u);
}

bool IsQuietHalfNan(int32_t dtype, uint16_t bits) {
  return IsHalfNan(dtype, bits) && (bits & (dtype == BNORM_DTYPE_BF16 ? 0x0040u : 0x0200u));
}

uint32_t UlpDistance(uint16_t a, uint16_t b) {
  // Sign and magnitude to a number line on which neighbours are 1 apart.
  const auto position = [](uint16_t h) {
    const int32_t magnitude = h & 0x7FFF;
    return (h & 0x8000) ? -magnitude : magnitude;
  };
  const int32_t d = position(a) - position(b);
  return static_cast<uint32_t>(d < 0 ? -d : d);
}

uint16_t SaneHalf(int32_t dtype, uint64_t random) {
  return RoundToHalf(dtype, static_cast<float>(random >> 40) * (16.0f / (1 << 24)) - 8.0f);
}

uint16_t SpecialHalf(int32_t dtype, uint64_t random) {
  static const uint16_t kBf16[16] = {0x0000, 0x8000, 0x3F80, 0xBF80, 0x7F80, 0xFF80,
                                     0x7FC0, 0xFFC0, 0x7F81, 0x0001, 0x8001, 0x7F7F,
                                     0xFF7F, 0x0080, 0x4040, 0xC020};
  static const uint16_t kF16[16] = {0x0000, 0x8000, 0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x7E00, 0xFE00,
                                    0x7C01, 0x0001, 0x8001, 0x7BFF, 0xFBFF, 0x0400, 0x4200, 0xC100};
  return (dtype == BNORM_DTYPE_BF16 ? kBf16 : kF16)[random % 16];
}

}  // namespace bnorm_fuzz
