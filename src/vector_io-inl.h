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

#include <initializer_list>
#include <type_traits>

#include "hwy/highway.h"
#include "src/element_convert-inl.h"

#ifndef BNORM_INLINE_LAMBDA
// A kernel lambda GCC must inline:
// - one that only prefetches: GCC deems a function whose only effect is a
//   prefetch free of effects, and drops the calls to it it does not inline;
// - a loop body: GCC left the per-vector bodies of the 16-bit types'
//   normalize and backward loops out of line, one call per vector; bf16
//   (1, 2048, 7, 7) channels-first inference took 5 times as long, and
//   16-bit channels-first inference 1.2-1.5 times as long once
//   normalize_run's body grew a second call site (AMD EPYC).
#define BNORM_INLINE_LAMBDA __attribute__((always_inline)) HWY_ATTR
#endif

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

// Elements before p reaches a boundary of the vectors the kernels store: a
// float vector's lanes of T (32 bytes of a 2-byte type under AVX-512). A
// float vector's bytes would make 2-byte rows or segments that are a multiple
// of 32 bytes but not of 64 start every other one with single lanes: the
// streamed bf16 and f16 inference of channels-last (8, 3, 224, 224), 96-byte
// rows, took 2.5 to 3.5 times as long as f32 that way.
template <typename T>
HWY_INLINE size_t ElementsToAlignment(const T* p) {
  const size_t vector_bytes = hn::Lanes(hn::ScalableTag<float>()) * sizeof(T);
  const size_t misalignment = reinterpret_cast<uintptr_t>(p) % vector_bytes;
  return misalignment == 0 ? 0 : (vector_bytes - misalignment) / sizeof(T);
}

// Calls body(d, i) on single lanes for the first `peel` elements, then on
// whole vectors, then on single lanes for the rest, so every kernel handles
// any count without reading or writing past its end (a masked store could be
// emulated by a read-modify-write of the next row, which another thread may
// be writing). `descending` visits the same pieces in reverse order (see
// WalksDescending). The vectors' lanes are floats, or doubles if Lane is.
template <typename Lane = float, class Body>
HWY_INLINE void ForEachVector(size_t count, size_t peel, bool descending, const Body& body) {
  const hn::ScalableTag<Lane> d;
  const hn::CappedTag<Lane, 1> d1;
  const size_t lanes = hn::Lanes(d);
  const size_t head = peel < count ? peel : count;
  const size_t vectors_end = head + (count - head) / lanes * lanes;
  if (!descending) {
    for (size_t i = 0; i < head; ++i) body(d1, i);
    for (size_t i = head; i < vectors_end; i += lanes) body(d, i);
    for (size_t i = vectors_end; i < count; ++i) body(d1, i);
    return;
  }
  for (size_t i = count; i > vectors_end;) body(d1, --i);
  for (size_t i = vectors_end; i > head;) body(d, i -= lanes);
  for (size_t i = head; i > 0;) body(d1, --i);
}

template <typename Lane = float, class Body>
HWY_INLINE void ForEachVector(size_t count, size_t peel, const Body& body) {
  ForEachVector<Lane>(count, peel, false, body);
}

// Whether out lies less than `near` bytes ahead of in, modulo 4 KiB. A load
// is checked against earlier stores by its address's low 12 bits first, so a
// load of in just after a store to out at the same low bits waits for that
// store as if it overlapped ("4K aliasing").
HWY_INLINE bool AheadModuloPage(const void* out, const void* in, uintptr_t near) {
  constexpr uintptr_t kPage = 4096;
  if (out == nullptr || in == nullptr) return false;
  const uintptr_t ahead =
      (reinterpret_cast<uintptr_t>(out) - reinterpret_cast<uintptr_t>(in)) % kPage;
  return ahead != 0 && ahead < near;
}

// An elementwise loop over elements of `element_bytes` walks downwards when an
// output is a little ahead of an input (modulo 4 KiB) and none is a little
// behind one: the aliased store then comes after the load, which does not
// wait for it. glibc's memmove turns its copy around the same way.
//
// Measured with bench/placement_bench, (32, 2048, 7, 7) inference, 1 thread,
// against y a whole number of pages from x: y 32 bytes ahead took 18 times as
// long for bf16, 8 times for f16, 1.9 times for f32, and walking downwards
// 1.1 to 1.4 times. "A little" is under 128 bytes for f32 and 256 for the
// 2-byte types: at 128 bytes f32 barely slowed down and walking downwards
// cost it 15%, while bf16 still took 1.8 times as long upwards.
//
// Downwards is the whole range of a call: its rows (or segments) last to
// first, each from its end. Rows walked upwards, each row downwards, were
// slow on short rows: channels-last (8, 3, 224, 224) bf16 inference (96-byte
// rows, streamed, y 64 or 128 bytes ahead, one thread) took 1726 and
// 1708 us that way, 512 and 516 us with the whole range downwards, and 767
// and 454 us upwards.
//
// Only the inference-type calls ask for this (Elementwise): the backward and
// training's normalize pass, which follow a reduction over the same channel,
// hardly slowed down there, and walking them downwards cost 25-40% on
// channels-first f32.
HWY_INLINE bool WalksDescending(size_t element_bytes, std::initializer_list<const void*> outputs,
                                std::initializer_list<const void*> inputs) {
  const uintptr_t near = 512 / element_bytes;
  bool ahead = false;
  for (const void* out : outputs) {
    for (const void* in : inputs) {
      if (AheadModuloPage(in, out, near)) return false;
      ahead = ahead || AheadModuloPage(out, in, near);
    }
  }
  return ahead;
}

// Prefetches base + i into L2 once per 64-byte line of T for a loop stepping
// by d's lanes; a no-op without a base.
template <class D, typename T>
HWY_INLINE void PrefetchToL2(D d, const T* base, size_t i) {
  constexpr size_t kLineElements = 64 / sizeof(T);
  if (base != nullptr && i % kLineElements < hn::Lanes(d)) __builtin_prefetch(base + i, 0, 2);
}

template <typename Lane = float, class Body>
HWY_INLINE void ForEachVector(size_t count, const Body& body) {
  ForEachVector<Lane>(count, 0, false, body);
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
