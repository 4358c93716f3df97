// The tensor element types (float, bf16, f16) and their exact widening to
// float, for the few values the drivers read outside the SIMD kernels.
// Arithmetic is always float or wider; only loads and stores see the narrow
// types.
#ifndef BNORM_SRC_ELEMENT_TYPES_H_
#define BNORM_SRC_ELEMENT_TYPES_H_

#include <stdint.h>
#include <string.h>

#include "hwy/base.h"

namespace bnorm {

using bf16 = hwy::bfloat16_t;
using f16 = hwy::float16_t;

// bf16 elements whose outputs the CPU rounds itself, with AVX512_BF16's
// VCVTNEPS2BF16, on the AVX3 target of CPUs that have it (dispatch.cc lists
// those kernels as the target AVX3_BF16). The same bits in memory as bf16 and
// the same results; a type of its own so that its kernels are a separate
// instantiation, chosen once per call like any target, not per vector.
struct CpuRoundedBF16 : bf16 {};

inline float ToFloat(float v) { return v; }

inline float ToFloat(bf16 v) { return hwy::F32FromBF16(v); }

// Highway 1.0.3 has no scalar f16 conversion, and its vector one mishandles
// infinities and NaN below AVX2, so this one is written out.
inline float ToFloat(f16 v) {
  const uint32_t sign = static_cast<uint32_t>(v.bits & 0x8000) << 16;
  const uint32_t exponent = (v.bits >> 10) & 0x1F;
  const uint32_t mantissa = v.bits & 0x3FF;
  uint32_t bits;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    memcpy(&bits, &magnitude, sizeof(bits));
  } else if (exponent == 31) {
    bits = 0x7F800000u | (mantissa << 13);  // infinity or NaN, payload kept
  } else {
    bits = ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  bits |= sign;
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}

// Instantiates a driver for every element type: X(float) X(bf16) X(f16).
#define BNORM_FOR_EACH_ELEMENT_TYPE(X) X(float) X(::bnorm::bf16) X(::bnorm::f16)

}  // namespace bnorm

#endif  // BNORM_SRC_ELEMENT_TYPES_H_
