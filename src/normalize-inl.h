// The normalize pass: y = (x - center) * scale + shift, one subtract and one
// fused multiply-add per element, then ReLU if fused.
//
// The subtract comes first, rather than folding center into shift, because a
// channel whose mean is large next to its spread would otherwise lose the
// mean's low bits: x - center is exact there (Sterbenz), x * scale is not.
#if defined(BNORM_SRC_NORMALIZE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_NORMALIZE_INL_H_
#undef BNORM_SRC_NORMALIZE_INL_H_
#else
#define BNORM_SRC_NORMALIZE_INL_H_
#endif

#include "hwy/highway.h"
#include "src/kernel_table.h"
#include "src/vector_io-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kRelu, typename T>
void NormalizeSpanImpl(const T* x, T* y, size_t count, float center, float scale, float shift) {
  ForEachVector(count, [&](auto d, size_t i) HWY_ATTR {
    auto v = hn::MulAdd(hn::Sub(LoadElements(d, x + i), hn::Set(d, center)), hn::Set(d, scale),
                        hn::Set(d, shift));
    if (kRelu) v = Relu(d, v);
    StoreElements(v, d, y + i);
  });
}

template <typename T>
void NormalizeSpan(const T* x, T* y, size_t count, float center, float scale, float shift,
                   bool relu) {
  if (relu) {
    NormalizeSpanImpl<true>(x, y, count, center, scale, shift);
  } else {
    NormalizeSpanImpl<false>(x, y, count, center, scale, shift);
  }
}

template <bool kRelu, typename T>
void NormalizeRowsImpl(const T* x, T* y, Rows rows, AffineArrays p) {
  for (size_t r = 0; r < rows.rows; ++r) {
    const T* row_x = x + r * rows.stride;
    T* row_y = y + r * rows.stride;
    ForEachVector(rows.width, [&](auto d, size_t i) HWY_ATTR {
      auto v = hn::MulAdd(hn::Sub(LoadElements(d, row_x + i), hn::LoadU(d, p.center + i)),
                          hn::LoadU(d, p.scale + i), hn::LoadU(d, p.shift + i));
      if (kRelu) v = Relu(d, v);
      StoreElements(v, d, row_y + i);
    });
  }
}

template <typename T>
void NormalizeRows(const T* x, T* y, Rows rows, AffineArrays params, bool relu) {
  if (relu) {
    NormalizeRowsImpl<true>(x, y, rows, params);
  } else {
    NormalizeRowsImpl<false>(x, y, rows, params);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_NORMALIZE_INL_H_
