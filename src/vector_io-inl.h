// Loads and stores of tensor elements as float vectors (whatever the element
// type: see element_convert-inl.h), and the loop shape every kernel shares.
#if defined(BNORM_SRC_VECTOR_IO_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_VECTOR_IO_INL_H_
#undef BNORM_SRC_VECTOR_IO_INL_H_
#else
#define BNORM_SRC_VECTOR_IO_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "hwy/highway.h"
#include "src/element_convert-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Stores an output vector; with kStream, whole vectors bypass the cache
// (non-temporal), which saves reading the destination lines first when the
// output will not be read again soon. Streamed pointers must be aligned to
// the vector size; single lanes are stored normally.
template <bool kStream, class D, typename T>
HWY_INLINE void StoreOutput(hn::Vec<D> v, D d, T* p) {
  if (kStream && std::is_same<D, hn::ScalableTag<float>>::value) {
    StreamElements(v, d, p);
  } else {
    StoreElements(v, d, p);
  }
}

// Elements before p reaches a whole-vector boundary.
template <typename T>
HWY_INLINE size_t ElementsToAlignment(const T* p) {
  const size_t vector_bytes = hn::Lanes(hn::ScalableTag<float>()) * sizeof(float);
  const size_t misalignment = reinterpret_cast<uintptr_t>(p) % vector_bytes;
  return misalignment == 0 ? 0 : (vector_bytes - misalignment) / sizeof(T);
}

// Calls body(d, i) on single lanes for the first `peel` elements, then on
// whole vectors, then on single lanes for the rest, so every kernel handles
// any count without reading or writing past its end (a masked store could be
// emulated by a read-modify-write of the next row, which another thread may
// be writing).
template <class Body>
HWY_INLINE void ForEachVector(size_t count, size_t peel, const Body& body) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i < peel && i < count; ++i) body(d1, i);
  for (; i + lanes <= count; i += lanes) body(d, i);
  for (; i < count; ++i) body(d1, i);
}

// Prefetches base + i into L2 once per 16 values (a 64-byte line of floats)
// for a loop stepping by d's lanes; a no-op without a base.
template <class D, typename T>
HWY_INLINE void PrefetchToL2(D d, const T* base, size_t i) {
  if (base != nullptr && i % 16 < hn::Lanes(d)) __builtin_prefetch(base + i, 0, 2);
}

template <class Body>
HWY_INLINE void ForEachVector(size_t count, const Body& body) {
  ForEachVector(count, 0, body);
}

// Turns runtime choices into a specialised loop, once per call:
// DispatchOptions<Loops>(f, a, b) calls f(Loops<a, b>()).
template <template <bool...> class Loops, bool... kChosen>
struct OptionDispatch {
  template <class F>
  static HWY_INLINE void Run(const F& f) {
    f(Loops<kChosen...>());
  }
  template <class F, class... Rest>
  static HWY_INLINE void Run(const F& f, bool first, Rest... rest) {
    if (first) {
      OptionDispatch<Loops, kChosen..., true>::Run(f, rest...);
    } else {
      OptionDispatch<Loops, kChosen..., false>::Run(f, rest...);
    }
  }
};

template <template <bool...> class Loops, class F, class... Options>
HWY_INLINE void DispatchOptions(const F& f, Options... options) {
  OptionDispatch<Loops>::Run(f, options...);
}

// max(v, 0) that keeps NaN, as torch.relu does.
template <class D>
HWY_INLINE hn::Vec<D> Relu(D d, hn::Vec<D> v) {
  return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
}

// dy where the forward output y > 0 or is NaN (as PyTorch's threshold_backward).
template <class D>
HWY_INLINE hn::Vec<D> ReluGrad(D d, hn::Vec<D> dy, hn::Vec<D> y) {
  return hn::IfThenZeroElse(hn::Le(y, hn::Zero(d)), dy);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_VECTOR_IO_INL_H_
