// bnorm's 2-byte tensor elements, converted here without the library (whose
// conversions are under test, and Highway 1.0.3's are not round-to-nearest-even
// on every target), so that the harness has an independent oracle:
// BNORM_DTYPE_BF16 is the upper 16 bits of an IEEE float32, BNORM_DTYPE_F16
// IEEE binary16. Integer arithmetic only: clang 14, which builds the harness,
// has no _Float16 on x86-64.
#ifndef BNORM_TESTS_FUZZ_HALF_TYPES_H_
#define BNORM_TESTS_FUZZ_HALF_TYPES_H_

#include <stdint.h>

namespace bnorm_fuzz {

// `v` rounded to `dtype` (BNORM_DTYPE_BF16 or BNORM_DTYPE_F16) to nearest,
// ties to even, as bnorm.h prescribes for a tensor output: a NaN stays a NaN
// (quiet, sign and leading payload bits kept), f16 overflow is +-inf, f16
// subnormals are produced.
uint16_t RoundToHalf(int32_t dtype, float v);

// `v` rounded once to `dtype` the same way: a long double rounded to float
// first would be rounded twice, and may then land on the farther of the two
// values of the type around it (one ulp from the nearest).
uint16_t RoundToHalf(int32_t dtype, long double v);

// The value of `bits` as a float: exact, as every half value is a float (NaN
// payloads are kept, a signaling NaN stays signaling).
float HalfToFloat(int32_t dtype, uint16_t bits);

bool IsHalfNan(int32_t dtype, uint16_t bits);
bool IsQuietHalfNan(int32_t dtype, uint16_t bits);

// How many values of the type lie from `a` to `b`, two non-NaN bit patterns
// of either type: 0 for the same value (+0 and -0 too), 1 for neighbours, the
// largest finite value and infinity included.
uint32_t UlpDistance(uint16_t a, uint16_t b);

// A data value of the type from a random number: kSane values in [-8, 8];
// kSpecial one of 0, -0, +-1, +-inf, quiet and signaling NaNs, the smallest
// subnormals, the largest finite values, the smallest normal, 3, -2.5.
uint16_t SaneHalf(int32_t dtype, uint64_t random);
uint16_t SpecialHalf(int32_t dtype, uint64_t random);

}  // namespace bnorm_fuzz

#endif  // BNORM_TESTS_FUZZ_HALF_TYPES_H_
