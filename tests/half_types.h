// bf16 and f16 on the test side, independent of the library: the roundings
// the kernels must reproduce (round to nearest, ties to even), the distance
// in units in the last place, and comparisons of half tensors with the
// float32 path and with the float64 reference.
//
// bf16 is the upper half of an IEEE float32, f16 IEEE binary16. Rounding from
// float is integer arithmetic, for both; from double it is one algorithm
// for both (scale by the ulp, nearbyint). half_types_test checks the two
// against each other and, with GCC, against _Float16 (whose float conversion,
// in software, is too slow for the sweeps; clang 14, the TSan build's
// compiler, has no _Float16 on x86-64, so this file does not use it). Highway's own conversions are
// not used: in Highway 1.0.3 they truncate on some targets, so they could
// not catch the same mistake.
#ifndef BNORM_TESTS_HALF_TYPES_H_
#define BNORM_TESTS_HALF_TYPES_H_

#include <gtest/gtest.h>
#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "bnorm/bnorm.h"

namespace bnorm_test {

// The half dtypes, for loops over both.
constexpr bnorm_dtype kHalfDtypes[] = {BNORM_DTYPE_BF16, BNORM_DTYPE_F16};
const char* DtypeName(bnorm_dtype dtype);

// float or double to the half type, rounded to nearest, ties to even; NaN
// gives a quiet NaN; beyond the largest finite value (after rounding), inf.
// The double overload rounds once, never through float.
uint16_t RoundToHalf(bnorm_dtype dtype, float value);
uint16_t RoundToHalf(bnorm_dtype dtype, double value);
// Exact: every half value is a float.
float WidenHalf(bnorm_dtype dtype, uint16_t bits);

bool IsHalfNan(bnorm_dtype dtype, uint16_t bits);
bool IsQuietHalfNan(bnorm_dtype dtype, uint16_t bits);

// The spacing of the half type's values at magnitude |value| (its subnormal
// spacing near 0): the ulp that a value of that size rounds to.
double HalfUlp(bnorm_dtype dtype, double value);

// How many representable values apart two halves are; +0 and -0 are the same
// value. Two NaNs are 0 apart, a NaN and a number UINT32_MAX.
uint32_t UlpDistance(bnorm_dtype dtype, uint16_t a, uint16_t b);

// `values`, each rounded to the half type and widened back: data that both
// the half call and the float32 call see exactly.
std::vector<float> RepresentableIn(bnorm_dtype dtype, std::vector<float> values);

// got[i] is want[i] rounded to the half type, bit for bit; where the rounding
// is a NaN, got[i] is a NaN too.
::testing::AssertionResult IsRoundingOf(const char* what, bnorm_dtype dtype, const uint16_t* got,
                                        const float* want, size_t count);
// Same bits, element for element, except that any NaN equals any NaN.
::testing::AssertionResult SameBits(const char* what, const float* got, const float* want,
                                    size_t count);
::testing::AssertionResult SameBits(const char* what, const double* got, const double* want,
                                    size_t count);

// How the float64 comparison went for one dtype: the elements checked, and
// those within the bound of the float32 path but not within 1 ulp.
struct ClauseTally {
  int64_t checked = 0;
  int64_t by_float32_bound = 0;
};
ClauseTally& Tally(bnorm_dtype dtype);

// Every element within 1 ulp of want[i] rounded to the half type or, where
// the float32 arithmetic itself is further off (a result that cancels to far
// below its terms), within the float32 tests' bound, tolerance * max(1,
// max |want|), plus half an ulp of the type. Counts into Tally(dtype).
::testing::AssertionResult NearInHalf(const char* what, bnorm_dtype dtype, const uint16_t* got,
                                      const std::vector<double>& want, double tolerance);

// Every element within 1 ulp of want[i] rounded to the half type (a NaN
// where that is a NaN), with no float32 allowance: the clause the backward
// calls meet. Counts into Tally(dtype).
::testing::AssertionResult WithinOneUlp(const char* what, bnorm_dtype dtype, const uint16_t* got,
                                        const std::vector<double>& want);

}  // namespace bnorm_test

#endif  // BNORM_TESTS_HALF_TYPES_H_
