// Loads and stores of tensor elements as float vectors, and the loop shape
// every kernel shares. Overloads for bf16/f16 elements go here, so the kernels
// themselves stay templates over the element type.
#if defined(BNORM_SRC_VECTOR_IO_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_VECTOR_IO_INL_H_
#undef BNORM_SRC_VECTOR_IO_INL_H_
#else
#define BNORM_SRC_VECTOR_IO_INL_H_
#endif

#include <stddef.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
HWY_INLINE hn::Vec<D> LoadElements(D d, const float* p) {
  return hn::LoadU(d, p);
}

template <class D>
HWY_INLINE void StoreElements(hn::Vec<D> v, D d, float* p) {
  hn::StoreU(v, d, p);
}

// Calls body(d, i) on whole vectors, then on single lanes for the rest, so
// every kernel handles any count without reading or writing past its end
// (a masked store could be emulated by a read-modify-write of the next row,
// which another thread may be writing).
template <class Body>
HWY_INLINE void ForEachVector(size_t count, const Body& body) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) body(d, i);
  const hn::CappedTag<float, 1> d1;
  for (; i < count; ++i) body(d1, i);
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
