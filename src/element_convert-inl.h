// Conversions between float vectors and bf16/f16 elements in memory. Narrow
// elements widen exactly; outputs round to nearest, ties to even, with NaN
// kept NaN (and quiet) and f16 overflow giving infinity.
//
// Highway 1.0.3 does not serve here: its bf16 DemoteTo truncates, and below
// AVX2 (no F16C) its f16 conversions truncate too and turn infinity and NaN
// into finite values. So bf16 always, and f16 without F16C, go through the
// integer forms below; with F16C the CPU's own conversions (which round to
// nearest even) are used.
#if defined(BNORM_SRC_ELEMENT_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_ELEMENT_CONVERT_INL_H_
#undef BNORM_SRC_ELEMENT_CONVERT_INL_H_
#else
#define BNORM_SRC_ELEMENT_CONVERT_INL_H_
#endif

#include <stdint.h>

#include "hwy/highway.h"
#include "src/element_types.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
constexpr bool kNativeF16 = true;
#else
constexpr bool kNativeF16 = false;
#endif

// 16-bit patterns in memory, one per float lane, widened to 32-bit lanes.
template <class D>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<D>> LoadHalfBits(D /*d*/, const void* p) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> du16;
  return hn::PromoteTo(du, hn::LoadU(du16, static_cast<const uint16_t*>(p)));
}

// 32-bit lanes holding values below 2^16, narrowed to 16-bit lanes.
template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DU>> NarrowHalfBits(DU /*du*/, hn::Vec<DU> bits) {
  const hn::RebindToSigned<DU> di;
  // A saturating narrow from signed lanes: the values fit, so it is exact.
  return hn::DemoteTo(hn::Rebind<uint16_t, DU>(), hn::BitCast(di, bits));
}

template <class D>
HWY_INLINE hn::Vec<D> BF16BitsToFloat(D d, hn::Vec<hn::RebindToUnsigned<D>> bits) {
  // Exact: bf16 is a float with the low 16 bits dropped.
  return hn::BitCast(d, hn::ShiftLeft<16>(bits));
}

template <class D>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<D>> FloatToBF16Bits(D /*d*/, hn::Vec<D> v) {
  const hn::RebindToUnsigned<D> du;
  const auto bits = hn::BitCast(du, v);
  const auto upper = hn::ShiftRight<16>(bits);
  // Adding 0x7FFF plus the kept part's lowest bit rounds ties to even.
  const auto rounded = hn::ShiftRight<16>(
      hn::Add(bits, hn::Add(hn::Set(du, 0x7FFF), hn::And(upper, hn::Set(du, 1)))));
  // A NaN could round into infinity; keep it NaN, quieted.
  const auto quiet_nan = hn::Or(upper, hn::Set(du, 0x40));
  return hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), quiet_nan, rounded);
}

template <class D>
HWY_INLINE hn::Vec<D> F16BitsToFloat(D d, hn::Vec<hn::RebindToUnsigned<D>> h) {
  const hn::RebindToUnsigned<D> du;
  const auto exponent_mask = hn::Set(du, 0x7C00u << 13);
  const auto magnitude = hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7FFF)));
  const auto exponent = hn::And(magnitude, exponent_mask);
  const auto normal = hn::Add(magnitude, hn::Set(du, (127u - 15) << 23));
  const auto inf_nan = hn::Add(normal, hn::Set(du, (128u - 16) << 23));
  // Subnormal: placed in a float's mantissa with exponent 2^-14 and the
  // implicit 1 subtracted, which is exact.
  const auto subnormal =
      hn::BitCast(du, hn::Sub(hn::BitCast(d, hn::Add(normal, hn::Set(du, 1u << 23))),
                              hn::BitCast(d, hn::Set(du, 113u << 23))));
  auto out = hn::IfThenElse(hn::Eq(exponent, exponent_mask), inf_nan, normal);
  out = hn::IfThenElse(hn::Eq(exponent, hn::Zero(du)), subnormal, out);
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000)));
  return hn::BitCast(d, hn::Or(out, sign));
}

template <class D>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<D>> FloatToF16Bits(D d, hn::Vec<D> v) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(du, v);
  const auto sign = hn::And(bits, hn::Set(du, 0x80000000u));
  const auto magnitude = hn::Xor(bits, sign);
  // Below 2^31 now, so signed comparisons order them.
  const auto m = hn::BitCast(di, magnitude);
  const auto too_large = hn::Gt(m, hn::Set(di, ((127 + 16) << 23) - 1));  // >= 65536
  const auto is_nan = hn::Gt(m, hn::Set(di, 255 << 23));
  const auto tiny = hn::Lt(m, hn::Set(di, 113 << 23));  // below 2^-14
  const auto inf_or_nan =
      hn::IfThenElse(hn::RebindMask(du, is_nan), hn::Set(du, 0x7E00), hn::Set(du, 0x7C00));
  // Subnormal results: adding 0.5 lines |v| up with the f16 subnormal grid
  // (units of 2^-24) in the low mantissa bits, the float add rounding to even.
  const auto half = hn::Set(du, 126u << 23);
  const auto subnormal =
      hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(d, magnitude), hn::BitCast(d, half))), half);
  // Normal results: rebias the exponent and round the 13 dropped bits to even.
  const auto odd = hn::And(hn::ShiftRight<13>(magnitude), hn::Set(du, 1));
  const auto normal = hn::ShiftRight<13>(hn::Add(
      hn::Add(magnitude, hn::Set(du, (static_cast<uint32_t>(15 - 127) << 23) + 0xFFF)), odd));
  auto out = hn::IfThenElse(hn::RebindMask(du, tiny), subnormal, normal);
  out = hn::IfThenElse(hn::RebindMask(du, too_large), inf_or_nan, out);
  return hn::Or(out, hn::ShiftRight<16>(sign));
}

// One lane converts out of line: inlining the emulation into every loop's
// tail, and into every element of the scalar target's loops, multiplied the
// code of the loops' option variants (the scalar target's f16 kernels took 89 s
// to compile under the sanitizers, bf16's 27 s). A call per lane costs nothing
// that matters there.
inline HWY_NOINLINE float F16LaneToFloat(uint16_t bits) {
  const hn::CappedTag<float, 1> d;
  return hn::GetLane(F16BitsToFloat(d, hn::Set(hn::RebindToUnsigned<decltype(d)>(), bits)));
}

inline HWY_NOINLINE uint16_t FloatToF16Lane(float v) {
  const hn::CappedTag<float, 1> d;
  return static_cast<uint16_t>(hn::GetLane(FloatToF16Bits(d, hn::Set(d, v))));
}

// The loads and stores the kernels call, one overload per element type.
template <class D>
HWY_INLINE hn::Vec<D> LoadElements(D d, const float* p) {
  return hn::LoadU(d, p);
}

template <class D>
HWY_INLINE hn::Vec<D> LoadElements(D d, const bf16* p) {
  return BF16BitsToFloat(d, LoadHalfBits(d, p));
}

template <class D>
HWY_INLINE hn::Vec<D> LoadElements(D d, const f16* p) {
  if constexpr (kNativeF16) {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), p));
  } else if constexpr (hn::MaxLanes(D()) == 1) {
    return hn::Set(d, F16LaneToFloat(p->bits));
  } else {
    return F16BitsToFloat(d, LoadHalfBits(d, p));
  }
}

// The 16-bit patterns of v rounded to T (bf16 or f16).
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, D>> RoundedBits(D d, hn::Vec<D> v, const bf16*) {
  const hn::RebindToUnsigned<D> du;
  return NarrowHalfBits(du, FloatToBF16Bits(d, v));
}

// The CPU's own bf16 rounding where the target has it: the same bits as
// FloatToBF16Bits, except that VCVTNEPS2BF16 flushes float subnormals to zero,
// so a vector holding one takes the integer path. The integer path's
// instructions bound bf16 inference and dx where the data is in cache: hot
// (1, 256, 56, 56) channels-first inference took 0.64 of the time this way
// (75.8 us against 117.6; one thread, AMD EPYC), of which the subnormal test
// costs about 16 us.
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, D>> RoundedBits(D d, hn::Vec<D> v, const CpuRoundedBF16*) {
#if HWY_TARGET == HWY_AVX3
  if constexpr (hn::MaxLanes(D()) == 16) {
    constexpr int kSubnormal = 0x20;  // VFPCLASSPS category
    if (_mm512_fpclass_ps_mask(v.raw, kSubnormal) == 0) {
      __m256i bits;
      // Written out: GCC 12 emits the instruction only for -mavx512bf16,
      // which Highway's AVX3 code is not compiled with (dispatch.cc runs
      // these kernels only on CPUs that have it).
      asm("vcvtneps2bf16 %1, %0" : "=v"(bits) : "v"(v.raw));
      return hn::Vec<hn::Rebind<uint16_t, D>>{bits};
    }
  }
#endif
  return RoundedBits(d, v, static_cast<const bf16*>(nullptr));
}

template <class D>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, D>> RoundedBits(D d, hn::Vec<D> v, const f16*) {
  if constexpr (kNativeF16) {
    return hn::BitCast(hn::Rebind<uint16_t, D>(), hn::DemoteTo(hn::Rebind<hwy::float16_t, D>(), v));
  } else if constexpr (hn::MaxLanes(D()) == 1) {
    return hn::Set(hn::Rebind<uint16_t, D>(), FloatToF16Lane(hn::GetLane(v)));
  } else {
    const hn::RebindToUnsigned<D> du;
    return NarrowHalfBits(du, FloatToF16Bits(d, v));
  }
}

template <class D>
HWY_INLINE void StoreElements(hn::Vec<D> v, D d, float* p) {
  hn::StoreU(v, d, p);
}

template <class D, typename T>
HWY_INLINE void StoreElements(hn::Vec<D> v, D d, T* p) {
  hn::StoreU(RoundedBits(d, v, p), hn::Rebind<uint16_t, D>(), reinterpret_cast<uint16_t*>(p));
}

// Non-temporal stores of whole vectors; p is aligned to the stored vector's
// size (ElementsToAlignment).
template <class D>
HWY_INLINE void StreamElements(hn::Vec<D> v, D d, float* p) {
  hn::Stream(v, d, p);
}

template <class D, typename T>
HWY_INLINE void StreamElements(hn::Vec<D> v, D d, T* p) {
  const hn::Rebind<uint16_t, D> du16;
  if constexpr (hn::MaxLanes(du16) * sizeof(uint16_t) >= 16) {
    hn::Stream(RoundedBits(d, v, p), du16, reinterpret_cast<uint16_t*>(p));
  } else {
    // Below a whole 16-byte vector (SSE4's 4 lanes), Highway 1.0.3's Stream
    // would write 16 bytes; a normal store writes just these.
    StoreElements(v, d, p);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_ELEMENT_CONVERT_INL_H_
