#include "tests/half_types.h"

#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace bnorm_test {
namespace {

bool IsBf16(bnorm_dtype dtype) { return dtype == BNORM_DTYPE_BF16; }

uint16_t QuietNan(bnorm_dtype dtype, bool negative) {
  return static_cast<uint16_t>((IsBf16(dtype) ? 0x7FC0 : 0x7E00) | (negative ? 0x8000 : 0));
}

// AssertionResult formats each value on its own, so no stream manipulators.
std::string Hex(uint16_t bits) {
  char text[8];
  snprintf(text, sizeof(text), "0x%04X", bits);
  return text;
}
std::string HexFloat(double value) {
  char text[40];
  snprintf(text, sizeof(text), "%a", value);
  return text;
}

template <class T>
bool SameOrBothNan(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
::testing::AssertionResult SameBitsOf(const char* what, const T* got, const T* want, size_t count) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!SameOrBothNan(got[i], want[i]) && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << count << " differ from the float32 call; first at ["
         << first << "]: " << HexFloat(got[first]) << " vs " << HexFloat(want[first]);
}

}  // namespace

const char* DtypeName(bnorm_dtype dtype) { return IsBf16(dtype) ? "bf16" : "f16"; }

uint16_t RoundToHalf(bnorm_dtype dtype, float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof(bits));
  if (std::isnan(value)) return QuietNan(dtype, bits >> 31);
  // Adding just under half of the dropped part's range, plus the kept part's
  // lowest bit, carries into the kept part exactly when rounding up is due.
  if (IsBf16(dtype)) return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  const uint32_t sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520: inf
  if (magnitude >= 0x38800000u) {  // >= 2^-14: normal; drop 13 bits, rebias 127 -> 15
    const uint32_t rounded = magnitude + 0xFFFu + ((magnitude >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded >> 13) - (112u << 10)));
  }
  if (magnitude <= 0x33000000u) return static_cast<uint16_t>(sign);  // <= 2^-25: 0
  // A subnormal: the significand in units of 2^-24, rounded to nearest even.
  const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - (magnitude >> 23);  // 14 to 24
  const uint32_t kept = significand >> shift, dropped = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  const bool up = dropped > half || (dropped == half && (kept & 1u));
  return static_cast<uint16_t>(sign | (kept + up));
}

uint16_t RoundToHalf(bnorm_dtype dtype, double value) {
  if (std::isnan(value)) return QuietNan(dtype, std::signbit(value));
  double rounded = value;
  if (!std::isinf(value)) {
    // value / ulp is exact (a power-of-two scaling), so nearbyint, in the
    // default rounding mode, is the one rounding to nearest even.
    const double ulp = HalfUlp(dtype, value);
    rounded = std::nearbyint(value / ulp) * ulp;
    const double largest = IsBf16(dtype) ? 0x1.FEp127 : 65504.0;
    if (std::fabs(rounded) > largest) rounded = std::copysign(HUGE_VAL, value);
  }
  // Now exactly representable (or inf), so these conversions do not round.
  if (!IsBf16(dtype)) return RoundToHalf(dtype, static_cast<float>(rounded));
  const float f = static_cast<float>(rounded);
  uint32_t bits;
  memcpy(&bits, &f, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}

float WidenHalf(bnorm_dtype dtype, uint16_t bits) {
  if (IsBf16(dtype)) {
    const uint32_t wide = uint32_t{bits} << 16;
    float f;
    memcpy(&f, &wide, sizeof(f));
    return f;
  }
  // Integer arithmetic, not _Float16, which clang 14 (the TSan build) lacks.
  const float sign = (bits & 0x8000) != 0 ? -1.0f : 1.0f;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  if (exponent == 31) return mantissa == 0 ? sign * INFINITY : std::copysign(NAN, sign);
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

bool IsHalfNan(bnorm_dtype dtype, uint16_t bits) {
  return (bits & 0x7FFF) > (IsBf16(dtype) ? 0x7F80 : 0x7C00);
}

bool IsQuietHalfNan(bnorm_dtype dtype, uint16_t bits) {
  return IsHalfNan(dtype, bits) && (bits & (IsBf16(dtype) ? 0x0040 : 0x0200)) != 0;
}

double HalfUlp(bnorm_dtype dtype, double value) {
  const int significand_bits = IsBf16(dtype) ? 8 : 11;  // with the implicit one
  const int min_normal_exponent = IsBf16(dtype) ? -126 : -14;
  const double magnitude = std::fabs(value);
  if (std::isinf(magnitude)) return HUGE_VAL;
  const int exponent =
      magnitude == 0 ? min_normal_exponent : std::max(std::ilogb(magnitude), min_normal_exponent);
  return std::ldexp(1.0, exponent - (significand_bits - 1));
}

uint32_t UlpDistance(bnorm_dtype dtype, uint16_t a, uint16_t b) {
  const bool a_nan = IsHalfNan(dtype, a), b_nan = IsHalfNan(dtype, b);
  if (a_nan || b_nan) return a_nan && b_nan ? 0 : std::numeric_limits<uint32_t>::max();
  // Sign and magnitude to a number line on which neighbours are 1 apart.
  auto position = [](uint16_t h) {
    const int32_t magnitude = h & 0x7FFF;
    return (h & 0x8000) ? -magnitude : magnitude;
  };
  return static_cast<uint32_t>(std::abs(position(a) - position(b)));
}

std::vector<float> RepresentableIn(bnorm_dtype dtype, std::vector<float> values) {
  for (float& v : values) v = WidenHalf(dtype, RoundToHalf(dtype, v));
  return values;
}

::testing::AssertionResult IsRoundingOf(const char* what, bnorm_dtype dtype, const uint16_t* got,
                                        const float* want, size_t count) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < count; ++i) {
    const uint16_t rounded = RoundToHalf(dtype, want[i]);
    const bool same = IsHalfNan(dtype, rounded) ? IsHalfNan(dtype, got[i]) : got[i] == rounded;
    if (!same && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " (" << DtypeName(dtype) << "): " << bad << " of " << count
         << " are not the float32 call's result rounded; first at [" << first << "]: got "
         << Hex(got[first]) << ", want " << Hex(RoundToHalf(dtype, want[first]))
         << " (float32 result " << HexFloat(want[first]) << " = " << want[first] << ")";
}

::testing::AssertionResult SameBits(const char* what, const float* got, const float* want,
                                    size_t count) {
  return SameBitsOf(what, got, want, count);
}

::testing::AssertionResult SameBits(const char* what, const double* got, const double* want,
                                    size_t count) {
  return SameBitsOf(what, got, want, count);
}

ClauseTally& Tally(bnorm_dtype dtype) {
  static ClauseTally tallies[2];
  return tallies[IsBf16(dtype) ? 0 : 1];
}

::testing::AssertionResult NearInHalf(const char* what, bnorm_dtype dtype, const uint16_t* got,
                                      const std::vector<double>& want, double tolerance) {
  double largest = 1.0;
  for (double w : want) largest = std::max(largest, std::fabs(w));
  ClauseTally& tally = Tally(dtype);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ++tally.checked;
    if (UlpDistance(dtype, got[i], RoundToHalf(dtype, want[i])) <= 1) continue;
    const double value = WidenHalf(dtype, got[i]);
    const double bound =
        tolerance * largest + 0.5 * HalfUlp(dtype, std::max(std::fabs(value), std::fabs(want[i])));
    // Written so that NaN fails.
    if (std::fabs(value - want[i]) <= bound) {
      ++tally.by_float32_bound;
    } else if (bad++ == 0) {
      first = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " (" << DtypeName(dtype) << "): " << bad << " of " << want.size()
         << " neither within 1 ulp of the float64 reference nor within the float32 bound; first "
            "at ["
         << first << "]: got " << WidenHalf(dtype, got[first]) << " (" << Hex(got[first])
         << "), want " << want[first] << " (" << Hex(RoundToHalf(dtype, want[first]))
         << " rounded)";
}

::testing::AssertionResult WithinOneUlp(const char* what, bnorm_dtype dtype, const uint16_t* got,
                                        const std::vector<double>& want) {
  Tally(dtype).checked += static_cast<int64_t>(want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (UlpDistance(dtype, got[i], RoundToHalf(dtype, want[i])) > 1 && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " (" << DtypeName(dtype) << "): " << bad << " of " << want.size()
         << " not within 1 ulp of the float64 reference; first at [" << first << "]: got "
         << WidenHalf(dtype, got[first]) << " (" << Hex(got[first]) << "), want " << want[first]
         << " (" << Hex(RoundToHalf(dtype, want[first])) << " rounded)";
}

}  // namespace bnorm_test
