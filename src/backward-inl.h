// The elementwise pass of the backward: dx = g * a + (x - center) * b + c,
// where g is dy masked by the fused ReLU. Training mode folds the batch
// statistics' gradient into b and c; frozen statistics have b = c = 0 and
// then x is not read at all. With a residual added before the ReLU, g is
// also the residual's gradient, written beside dx.
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

// dy, zeroed where the forward output y <= 0 when ReLU is fused.
template <bool kRelu, class D, typename T>
HWY_INLINE hn::Vec<D> OutputGradient(D d, const T* dy, const T* y, size_t i) {
  auto g = LoadElements(d, dy + i);
  if (kRelu) g = ReluGrad(d, g, LoadElements(d, y + i));
  return g;
}

template <bool kUseX, class D, typename T>
HWY_INLINE hn::Vec<D> InputGradient(D d, hn::Vec<D> g, const T* x, size_t i, hn::Vec<D> center,
                                    hn::Vec<D> a, hn::Vec<D> b, hn::Vec<D> c) {
  auto v = hn::MulAdd(g, a, c);
  if (kUseX) v = hn::MulAdd(hn::Sub(LoadElements(d, x + i), center), b, v);
  return v;
}

// d_residual is streamed with dx when its vectors line up with dx's (the
// loop peels to dx's alignment), as they do for buffers from one allocator.
template <bool kStream, typename T>
HWY_INLINE bool StreamsAlongside(const T* d_residual, size_t peel) {
  return kStream && d_residual != nullptr && ElementsToAlignment(d_residual) == peel;
}

template <class D, typename T>
HWY_INLINE void StoreResidualGrad(hn::Vec<D> g, D d, T* p, bool stream) {
  if (stream) {
    StoreOutput<true>(g, d, p);
  } else {
    StoreElements(g, d, p);
  }
}

template <bool kRelu, bool kUseX, bool kStream, bool kResidualGrad>
struct BackwardLoops {
  template <typename T>
  static void Span(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Spans spans,
                   float center, float a, float b, float c) {
    for (size_t s = 0; s < spans.segments; ++s) {
      const size_t o = s * spans.stride;
      const T* seg_x = Offset(x, o);
      const T* seg_dy = dy + o;
      const T* seg_y = Offset(y, o);
      T* seg_dx = dx + o;
      T* seg_d_residual = Offset(d_residual, o);
      const size_t peel = kStream ? ElementsToAlignment(seg_dx) : 0;
      const bool stream_residual = StreamsAlongside<kStream>(seg_d_residual, peel);
      ForEachVector(spans.count, peel, [&](auto d, size_t i) HWY_ATTR {
        const auto g = OutputGradient<kRelu>(d, seg_dy, seg_y, i);
        const auto v = InputGradient<kUseX>(d, g, seg_x, i, hn::Set(d, center), hn::Set(d, a),
                                            hn::Set(d, b), hn::Set(d, c));
        // After g is formed: d_residual may be dy itself.
        if (kResidualGrad) StoreResidualGrad(g, d, seg_d_residual + i, stream_residual);
        StoreOutput<kStream>(v, d, seg_dx + i);
      });
    }
  }

  template <typename T>
  static void Rows(const T* x, const T* dy, const T* y, T* dx, T* d_residual, bnorm::Rows rows,
                   GradArrays p) {
    for (size_t r = 0; r < rows.rows; ++r) {
      const size_t offset = r * rows.stride;
      const T* row_x = Offset(x, offset);
      const T* row_y = Offset(y, offset);
      T* row_d_residual = Offset(d_residual, offset);
      const size_t peel = kStream ? ElementsToAlignment(dx + offset) : 0;
      const bool stream_residual = StreamsAlongside<kStream>(row_d_residual, peel);
      ForEachVector(rows.width, peel, [&](auto d, size_t i) HWY_ATTR {
        const auto g = OutputGradient<kRelu>(d, dy + offset, row_y, i);
        const auto v =
            InputGradient<kUseX>(d, g, row_x, i, hn::LoadU(d, p.center + i), hn::LoadU(d, p.a + i),
                                 hn::LoadU(d, p.b + i), hn::LoadU(d, p.c + i));
        if (kResidualGrad) StoreResidualGrad(g, d, row_d_residual + i, stream_residual);
        StoreOutput<kStream>(v, d, dx + offset + i);
      });
    }
  }
};

template <typename T>
void BackwardSpan(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Spans spans,
                  float center, float a, float b, float c, bool stream) {
  DispatchOptions<BackwardLoops>(
      [&](auto loops)
          HWY_ATTR { decltype(loops)::Span(x, dy, y, dx, d_residual, spans, center, a, b, c); },
      y != nullptr, x != nullptr, stream, d_residual != nullptr);
}

template <typename T>
void BackwardRows(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Rows rows,
                  GradArrays p, bool stream) {
  DispatchOptions<BackwardLoops>(
      [&](auto loops) HWY_ATTR { decltype(loops)::Rows(x, dy, y, dx, d_residual, rows, p); },
      y != nullptr, x != nullptr, stream, d_residual != nullptr);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_BACKWARD_INL_H_
