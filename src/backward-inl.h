// The elementwise pass of the backward: dx = (g - grad_mean) * a +
// (x - center) * b, where g is dy masked by the fused ReLU. Training mode
// carries the batch statistics' gradient in grad_mean (the mean's) and b (the
// variance's); frozen statistics have grad_mean = b = 0 and then x is not
// read at all. g - grad_mean, not g * a + c: where g is the mean, dx is then
// (x - center) * b exactly, with no rounding residue of a * grad_mean. With a
// residual added before the ReLU, g is also the residual's gradient, written
// beside dx.
#if defined(BNORM_SRC_BACKWARD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_BACKWARD_INL_H_
#undef BNORM_SRC_BACKWARD_INL_H_
#else
#define BNORM_SRC_BACKWARD_INL_H_
#endif

#include <limits>

#include "hwy/highway.h"
#include "src/double_lanes-inl.h"
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

// A coefficient for the lanes [i, i + Lanes(d)): one channel's value for
// every lane (spans), or per row position from an array (rows).
template <class D, typename T>
HWY_INLINE hn::Vec<D> Fetch(D d, T value, size_t /*i*/) {
  return hn::Set(d, value);
}
template <class D, typename T>
HWY_INLINE hn::Vec<D> Fetch(D d, const T* values, size_t i) {
  return hn::LoadU(d, values + i);
}

// A coefficient in D's lanes: the float one for float lanes, the double one
// for the recomputation's double lanes.
template <class D, typename Narrow, typename Wide>
HWY_INLINE hn::Vec<D> Coefficient(D d, Narrow narrow, Wide wide, size_t i) {
  if constexpr (IsDoubleLanes<D>()) {
    return Fetch(d, wide, i);
  } else {
    return Fetch(d, narrow, i);
  }
}

// One channel's coefficients (backward_span).
using ChannelCoefficients = DxCoefficients<float, double>;

// dx = (g - grad_mean) * a + (x - center) * b on D's lanes (float or double),
// with x zero unless kUseX.
template <bool kUseX, class D, class Coefficients>
HWY_INLINE hn::Vec<D> GradientTerms(D d, hn::Vec<D> g, hn::Vec<D> x, hn::Vec<D> center, size_t i,
                                    const Coefficients& k) {
  auto v = hn::Mul(hn::Sub(g, Coefficient(d, k.grad_mean, k.wide_grad_mean, i)),
                   Coefficient(d, k.a, k.wide_a, i));
  if (kUseX) v = hn::MulAdd(hn::Sub(x, center), Coefficient(d, k.b, k.wide_b, i), v);
  return v;
}

// dx for elements [i, i + Lanes(d)). Float tensors get the float evaluation.
// The 16-bit types' lanes that its TrustBound (kernel_table.h) cannot vouch
// for are recomputed in double, where x - center is exact and every product
// and sum rounds far below their ulp. Lane by lane, so that an element's dx
// does not depend on its neighbours (nor on where vectors start).
template <bool kUseX, class D, typename T, class Coefficients>
HWY_INLINE hn::Vec<D> InputGradient(D d, hn::Vec<D> g, const T* x, size_t i,
                                    const Coefficients& k) {
  const auto x_f = kUseX ? LoadElements(d, x + i) : hn::Zero(d);
  const auto center = Fetch(d, k.center, i);
  const auto v = GradientTerms<kUseX>(d, g, x_f, center, i, k);
  if constexpr (sizeof(T) == 2) {
    auto least = hn::MulAdd(hn::Abs(hn::Sub(g, Fetch(d, k.grad_mean, i))), Fetch(d, k.bound_a, i),
                            Fetch(d, k.bound_rest, i));
    if (kUseX) least = hn::MulAdd(hn::Abs(hn::Sub(x_f, center)), Fetch(d, k.bound_b, i), least);
    const auto magnitude = hn::Abs(v);
    // NaN fails both comparisons.
    const auto trusted =
        hn::And(hn::Ge(magnitude, least),
                hn::Lt(magnitude, hn::Set(d, std::numeric_limits<float>::infinity())));
    if (!hn::AllTrue(d, trusted)) {
      const auto exact = EvaluateInDouble(d, [&](auto dw, size_t lane, const auto& widen) HWY_ATTR {
        return GradientTerms<kUseX>(dw, widen(g), widen(x_f), widen(center), i + lane, k);
      });
      return hn::IfThenElse(trusted, v, exact);
    }
  }
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

// One channel's coefficients as the kernels read them.
HWY_INLINE ChannelCoefficients CoefficientsOf(float center, const GradChannel& channel) {
  return {center,
          static_cast<float>(channel.grad_mean),
          static_cast<float>(channel.a),
          static_cast<float>(channel.b),
          channel.grad_mean,
          channel.a,
          channel.b,
          channel.bound.a,
          channel.bound.b,
          channel.bound.rest};
}

template <bool kRelu, bool kUseX, bool kStream, bool kResidualGrad>
struct BackwardLoops {
  // count elements of one channel; prefetch_x and prefetch_dy (or null) are
  // read ahead into L2 along the way.
  template <typename T>
  static HWY_INLINE void Segment(const T* x, const T* dy, const T* y, T* dx, T* d_residual,
                                 size_t count, const ChannelCoefficients& k, const T* prefetch_x,
                                 const T* prefetch_dy) {
    const size_t peel = kStream ? ElementsToAlignment(dx) : 0;
    const bool stream_residual = StreamsAlongside<kStream>(d_residual, peel);
    ForEachVector(count, peel, [&](auto d, size_t i) BNORM_INLINE_LAMBDA {
      const auto g = OutputGradient<kRelu>(d, dy, y, i);
      const auto v = InputGradient<kUseX>(d, g, x, i, k);
      // After g is formed: d_residual may be dy itself.
      if (kResidualGrad) StoreResidualGrad(g, d, d_residual + i, stream_residual);
      StoreOutput<kStream>(v, d, dx + i);
      PrefetchToL2(d, prefetch_x, i);
      PrefetchToL2(d, prefetch_dy, i);
    });
  }

  template <typename T>
  static void Span(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Spans spans,
                   const ChannelCoefficients& k, size_t prefetch_ahead) {
    for (size_t s = 0; s < spans.segments; ++s) {
      const size_t o = s * spans.stride;
      const T* seg_x = Offset(x, o);
      const T* prefetch_x = prefetch_ahead != 0 ? Offset(seg_x, prefetch_ahead) : nullptr;
      const T* prefetch_dy = prefetch_ahead != 0 ? dy + o + prefetch_ahead : nullptr;
      Segment(seg_x, dy + o, Offset(y, o), dx + o, Offset(d_residual, o), spans.count, k,
              prefetch_x, prefetch_dy);
    }
  }

  template <typename T>
  static void Run(const T* x, const T* dy, const T* y, T* dx, T* d_residual, SegmentRun run,
                  const GradChannels& channels) {
    for (size_t j = 0; j < run.segments; ++j) {
      const size_t o = j * run.length;
      Segment(Offset(x, o), dy + o, Offset(y, o), dx + o, Offset(d_residual, o), run.length,
              CoefficientsOf(channels.center[j], channels[j]), static_cast<const T*>(nullptr),
              static_cast<const T*>(nullptr));
    }
  }

  template <typename T>
  static void Rows(const T* x, const T* dy, const T* y, T* dx, T* d_residual, bnorm::Rows rows,
                   GradArrays k) {
    for (size_t r = 0; r < rows.rows; ++r) {
      const size_t offset = r * rows.stride;
      const T* row_x = Offset(x, offset);
      const T* row_y = Offset(y, offset);
      T* row_d_residual = Offset(d_residual, offset);
      const size_t peel = kStream ? ElementsToAlignment(dx + offset) : 0;
      const bool stream_residual = StreamsAlongside<kStream>(row_d_residual, peel);
      ForEachVector(rows.width, peel, [&](auto d, size_t i) BNORM_INLINE_LAMBDA {
        const auto g = OutputGradient<kRelu>(d, dy + offset, row_y, i);
        const auto v = InputGradient<kUseX>(d, g, row_x, i, k);
        if (kResidualGrad) StoreResidualGrad(g, d, row_d_residual + i, stream_residual);
        StoreOutput<kStream>(v, d, dx + offset + i);
      });
    }
  }
};

// Calls f(BackwardLoops<...>()) with one call's options as constants.
template <typename T, class F>
HWY_INLINE void DispatchBackward(const T* x, const T* y, const T* d_residual, bool stream,
                                 const F& f) {
  DispatchOptions<BackwardLoops>(f, y != nullptr, x != nullptr, stream, d_residual != nullptr);
}

template <typename T>
void BackwardSpan(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Spans spans,
                  float center, const GradChannel& channel, GradSpanOptions options) {
  const ChannelCoefficients k = CoefficientsOf(center, channel);
  DispatchBackward(x, y, d_residual, options.stream, [&](auto loops) HWY_ATTR {
    decltype(loops)::Span(x, dy, y, dx, d_residual, spans, k, options.prefetch_ahead);
  });
}

template <typename T>
void BackwardRows(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Rows rows,
                  GradArrays p, bool stream) {
  DispatchBackward(x, y, d_residual, stream, [&](auto loops) HWY_ATTR {
    decltype(loops)::Rows(x, dy, y, dx, d_residual, rows, p);
  });
}

template <typename T>
void BackwardRun(const T* x, const T* dy, const T* y, T* dx, T* d_residual, SegmentRun run,
                 GradChannels channels, bool stream) {
  DispatchBackward(x, y, d_residual, stream, [&](auto loops) HWY_ATTR {
    decltype(loops)::Run(x, dy, y, dx, d_residual, run, channels);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_BACKWARD_INL_H_
