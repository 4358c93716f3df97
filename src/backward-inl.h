// The elementwise pass of the backward: dx = g * a + (x - center) * b + c,
// where g is dy masked by the fused ReLU. Training mode folds the batch
// statistics' gradient into b and c; frozen statistics have b = c = 0 and
// then x is not read at all.
#if defined(BNORM_SRC_BACKWARD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_BACKWARD_INL_H_
#undef BNORM_SRC_BACKWARD_INL_H_
#else
#define BNORM_SRC_BACKWARD_INL_H_
#endif

#include "hwy/highway.h"
#include "src/kernel_table.h"
#include "src/vector_io-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kRelu, bool kUseX, class D, typename T>
HWY_INLINE hn::Vec<D> InputGradient(D d, const T* x, const T* dy, const T* y, size_t i,
                                    hn::Vec<D> center, hn::Vec<D> a, hn::Vec<D> b,
                                    hn::Vec<D> c) {
  auto g = LoadElements(d, dy + i);
  if (kRelu) g = ReluGrad(d, g, LoadElements(d, y + i));
  auto v = hn::MulAdd(g, a, c);
  if (kUseX) v = hn::MulAdd(hn::Sub(LoadElements(d, x + i), center), b, v);
  return v;
}

template <bool kRelu, bool kUseX, typename T>
void BackwardSpanImpl(const T* x, const T* dy, const T* y, T* dx, size_t count, float center,
                      float a, float b, float c) {
  ForEachVector(count, [&](auto d, size_t i) HWY_ATTR {
    const auto v = InputGradient<kRelu, kUseX>(d, x, dy, y, i, hn::Set(d, center), hn::Set(d, a),
                                               hn::Set(d, b), hn::Set(d, c));
    StoreElements(v, d, dx + i);
  });
}

template <bool kRelu, bool kUseX, typename T>
void BackwardRowsImpl(const T* x, const T* dy, const T* y, T* dx, Rows rows, GradArrays p) {
  for (size_t r = 0; r < rows.rows; ++r) {
    const size_t offset = r * rows.stride;
    ForEachVector(rows.width, [&](auto d, size_t i) HWY_ATTR {
      const auto v = InputGradient<kRelu, kUseX>(
          d, x + offset, dy + offset, y + offset, i, hn::LoadU(d, p.center + i),
          hn::LoadU(d, p.a + i), hn::LoadU(d, p.b + i), hn::LoadU(d, p.c + i));
      StoreElements(v, d, dx + offset + i);
    });
  }
}

// Turns the two runtime choices into the four specialised loops, once per call.
template <template <bool, bool> class Loop, typename... Args>
void DispatchBackward(bool relu, bool use_x, Args... args) {
  if (relu) {
    use_x ? Loop<true, true>::Run(args...) : Loop<true, false>::Run(args...);
  } else {
    use_x ? Loop<false, true>::Run(args...) : Loop<false, false>::Run(args...);
  }
}

template <bool kRelu, bool kUseX>
struct BackwardSpanLoop {
  template <typename T>
  static void Run(const T* x, const T* dy, const T* y, T* dx, size_t count, float center, float a,
                  float b, float c) {
    BackwardSpanImpl<kRelu, kUseX>(x, dy, y, dx, count, center, a, b, c);
  }
};

template <bool kRelu, bool kUseX>
struct BackwardRowsLoop {
  template <typename T>
  static void Run(const T* x, const T* dy, const T* y, T* dx, Rows rows, GradArrays p) {
    BackwardRowsImpl<kRelu, kUseX>(x, dy, y, dx, rows, p);
  }
};

template <typename T>
void BackwardSpan(const T* x, const T* dy, const T* y, T* dx, size_t count, float center, float a,
                  float b, float c) {
  DispatchBackward<BackwardSpanLoop>(y != nullptr, x != nullptr, x, dy, y, dx, count, center, a,
                                     b, c);
}

template <typename T>
void BackwardRows(const T* x, const T* dy, const T* y, T* dx, Rows rows, GradArrays p) {
  DispatchBackward<BackwardRowsLoop>(y != nullptr, x != nullptr, x, dy, y, dx, rows, p);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_BACKWARD_INL_H_
