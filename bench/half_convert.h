// float <-> bf16 / f16 bits for the benchmark's 2-byte buffers: filling the
// inputs, and reading outputs back for the peer check. Independent of bnorm's
// own conversions (and of Highway's, which truncate in the version used), so
// the check does not compare the library with itself.
#ifndef BNORM_BENCH_HALF_CONVERT_H_
#define BNORM_BENCH_HALF_CONVERT_H_

#include <cstdint>
#include <cstring>

#include "shapes.h"

namespace bnorm_bench {

// bf16 is the upper half of a float32: round to nearest even on the bits.
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

inline float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// GCC 12's _Float16 converts with round to nearest even (F16C or libgcc).
inline uint16_t FloatToF16(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof(bits));
  return bits;
}

inline float F16ToFloat(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, sizeof(h));
  return static_cast<float>(h);
}

// dtype is kBF16 or kF16.
inline uint16_t FloatToHalf(DType dtype, float f) {
  return dtype == DType::kBF16 ? FloatToBf16(f) : FloatToF16(f);
}

inline float HalfToFloat(DType dtype, uint16_t bits) {
  return dtype == DType::kBF16 ? Bf16ToFloat(bits) : F16ToFloat(bits);
}

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_HALF_CONVERT_H_
