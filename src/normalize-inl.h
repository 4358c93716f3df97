// The normalize pass: y = (x - center) * scale + shift, one subtract and one
// fused multiply-add per element, plus a residual if given (the tail of a
// ResNet block), then ReLU if fused.
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

#include <type_traits>

#include "hwy/highway.h"
#include "src/kernel_table.h"
#include "src/vector_io-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kRelu, bool kStream, bool kResidual, typename T>
void NormalizeSpanImpl(const T* x, const T* residual, T* y, Spans spans, float center, float scale,
                       float shift, size_t prefetch_ahead, bool descending) {
  for (size_t k = 0; k < spans.segments; ++k) {
    const size_t o = (descending ? spans.segments - 1 - k : k) * spans.stride;
    const T* seg_x = x + o;
    const T* seg_residual = Offset(residual, o);
    T* seg_y = y + o;
    const T* seg_prefetch = prefetch_ahead != 0 ? seg_x + prefetch_ahead : nullptr;
    const size_t peel = kStream ? ElementsToAlignment(seg_y) : 0;
    ForEachVector(spans.count, peel, descending, [&](auto d, size_t i) BNORM_INLINE_LAMBDA {
      auto v = hn::MulAdd(hn::Sub(LoadElements(d, seg_x + i), hn::Set(d, center)),
                          hn::Set(d, scale), hn::Set(d, shift));
      if (kResidual) v = hn::Add(v, LoadElements(d, seg_residual + i));
      if (kRelu) v = Relu(d, v);
      StoreOutput<kStream>(v, d, seg_y + i);
      PrefetchToL2(d, seg_prefetch, i);
    });
  }
}

// f32 rows of at least kNormalizeRowsAheadMinBytes read the row
// kNormalizeRowsAheadBytes ahead into L2: four loads a vector (x and three
// parameters) left less room for reads from memory than a plain copy has.
// f32 channels-last inference, cold, interleaved rounds of three runs (AMD
// EPYC): (32, 2048, 7, 7) 0.75-0.92 of the time, (32, 512, 28, 28) 0.84-0.96,
// (32, 256, 56, 56) 0.67-0.99, (4096, 512) 0.84-0.97, (1, 256, 56, 56)
// 0.73-0.94; hot rows 0.97-1.05, training within 0.92-1.08. Narrower rows
// showed no steady gain ((32, 64, 112, 112), 256-byte rows: 1.00-1.07 times
// as long), and bf16 rows lost as often as they gained ((32, 2048, 7, 7)
// 0.68-0.71, (32, 1024, 14, 14) 1.15-1.29).
constexpr size_t kNormalizeRowsAheadBytes = 16 * 1024;
constexpr size_t kNormalizeRowsAheadMinBytes = 512;

template <typename T>
size_t NormalizeRowsAhead(size_t width) {
  const size_t row_bytes = width * sizeof(T);
  if (sizeof(T) != 4 || row_bytes < kNormalizeRowsAheadMinBytes) return 0;
  return (kNormalizeRowsAheadBytes + row_bytes - 1) / row_bytes;
}

template <bool kRelu, bool kStream, bool kResidual, typename T>
void NormalizeRowsImpl(const T* x, const T* residual, T* y, Rows rows, AffineArrays p,
                       bool descending) {
  const size_t rows_ahead = NormalizeRowsAhead<T>(rows.width);
  for (size_t k = 0; k < rows.rows; ++k) {
    const size_t r = descending ? rows.rows - 1 - k : k;
    const T* row_x = x + r * rows.stride;
    const T* row_residual = Offset(residual, r * rows.stride);
    T* row_y = y + r * rows.stride;
    // The row rows_ahead further along the walk, if any.
    const T* row_prefetch = nullptr;
    if (rows_ahead != 0 && k + rows_ahead < rows.rows) {
      row_prefetch =
          descending ? row_x - rows_ahead * rows.stride : row_x + rows_ahead * rows.stride;
    }
    const size_t peel = kStream ? ElementsToAlignment(row_y) : 0;
    ForEachVector(rows.width, peel, descending, [&](auto d, size_t i) BNORM_INLINE_LAMBDA {
      auto v = hn::MulAdd(hn::Sub(LoadElements(d, row_x + i), hn::LoadU(d, p.center + i)),
                          hn::LoadU(d, p.scale + i), hn::LoadU(d, p.shift + i));
      if (kResidual) v = hn::Add(v, LoadElements(d, row_residual + i));
      if (kRelu) v = Relu(d, v);
      StoreOutput<kStream>(v, d, row_y + i);
      PrefetchToL2(d, row_prefetch, i);
    });
  }
}

// Segment j of the run uses parameters [j]. The walk keeps one segment's
// parameters in vectors, and a vector across segments blends their sets
// lane by lane, so every element gets exactly its own channel's arithmetic
// while the stores run over the range without a break.
template <bool kRelu, bool kStream, bool kResidual, typename T>
void NormalizeRunImpl(const T* x, const T* residual, T* y, SegmentRun run, AffineArrays p,
                      bool descending) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const size_t length = run.length;
  const auto normalize = [&](auto dv, size_t i, auto center, auto scale,
                             auto shift) BNORM_INLINE_LAMBDA {
    auto v = hn::MulAdd(hn::Sub(LoadElements(dv, x + i), center), scale, shift);
    if (kResidual) v = hn::Add(v, LoadElements(dv, residual + i));
    if (kRelu) v = Relu(dv, v);
    StoreOutput<kStream>(v, dv, y + i);
  };
  // The segment whose parameters are held, covering elements [begin, end).
  size_t segment = 0, begin = 0, end = length;
  auto center = hn::Set(d, p.center[0]);
  auto scale = hn::Set(d, p.scale[0]);
  auto shift = hn::Set(d, p.shift[0]);
  // Holds the segment of element i: mostly a neighbour of the one held.
  const auto hold = [&](size_t i) HWY_ATTR {
    if (i >= end && i - end < length) {
      ++segment;
    } else if (i < begin && begin - i <= length) {
      --segment;
    } else {
      segment = i / length;
    }
    begin = segment * length;
    end = begin + length;
    center = hn::Set(d, p.center[segment]);
    scale = hn::Set(d, p.scale[segment]);
    shift = hn::Set(d, p.shift[segment]);
  };
  const size_t peel = kStream ? ElementsToAlignment(y) : 0;
  ForEachVector(run.segments * length, peel, descending,
                [&](auto dv, size_t i) BNORM_INLINE_LAMBDA {
                  if constexpr (hn::MaxLanes(dv) != hn::MaxLanes(d)) {
                    // A single lane of the peel or the tail.
                    const size_t j = i / length;
                    normalize(dv, i, hn::Set(dv, p.center[j]), hn::Set(dv, p.scale[j]),
                              hn::Set(dv, p.shift[j]));
                  } else {
                    if (i < begin || i >= end) hold(i);
                    if (i + lanes <= end) {
                      normalize(d, i, center, scale, shift);
                      return;
                    }
                    // Lanes [0, end - i) are in the segment held; each later segment the
                    // vector reaches sets the lanes from its start on (more than one only
                    // where segments are shorter than a vector).
                    auto before = hn::FirstN(d, end - i);
                    const auto held_center = center, held_scale = scale, held_shift = shift;
                    hold(end);
                    auto vector_center = hn::IfThenElse(before, held_center, center);
                    auto vector_scale = hn::IfThenElse(before, held_scale, scale);
                    auto vector_shift = hn::IfThenElse(before, held_shift, shift);
                    while (HWY_UNLIKELY(i + lanes > end)) {
                      before = hn::FirstN(d, end - i);
                      hold(end);
                      vector_center = hn::IfThenElse(before, vector_center, center);
                      vector_scale = hn::IfThenElse(before, vector_scale, scale);
                      vector_shift = hn::IfThenElse(before, vector_shift, shift);
                    }
                    normalize(d, i, vector_center, vector_scale, vector_shift);
                  }
                });
}

// One elementwise call's run-time options as compile-time constants.
template <bool kReluChosen, bool kStreamChosen, bool kResidualChosen>
struct NormalizeChoice {
  static constexpr bool kRelu = kReluChosen;
  static constexpr bool kStream = kStreamChosen;
  static constexpr bool kResidual = kResidualChosen;
};

// Calls f(choice, descending) for one call's options, once per call. Every
// kernel shape walks y as far from x (and residual) as the whole tensors
// lie, so the direction follows from the call's pointers.
template <typename T, class F>
HWY_INLINE void DispatchNormalize(const T* x, const T* residual, const T* y, Elementwise options,
                                  const F& f) {
  const bool descending =
      options.reverse_when_aliased && WalksDescending(sizeof(T), {y}, {x, residual});
  DispatchOptions<NormalizeChoice>([&](auto choice) HWY_ATTR { f(choice, descending); },
                                   options.relu, options.stream, residual != nullptr);
}

template <typename T>
void NormalizeSpan(const T* x, const T* residual, T* y, Spans spans, float center, float scale,
                   float shift, Elementwise options) {
  DispatchNormalize(x, residual, y, options, [&](auto choice, bool descending) HWY_ATTR {
    using C = decltype(choice);
    NormalizeSpanImpl<C::kRelu, C::kStream, C::kResidual>(
        x, residual, y, spans, center, scale, shift, options.prefetch_ahead, descending);
  });
}

template <typename T>
void NormalizeRows(const T* x, const T* residual, T* y, Rows rows, AffineArrays params,
                   Elementwise options) {
  DispatchNormalize(x, residual, y, options, [&](auto choice, bool descending) HWY_ATTR {
    using C = decltype(choice);
    NormalizeRowsImpl<C::kRelu, C::kStream, C::kResidual>(x, residual, y, rows, params, descending);
  });
}

template <typename T>
void NormalizeRun(const T* x, const T* residual, T* y, SegmentRun run, AffineArrays params,
                  Elementwise options) {
  DispatchNormalize(x, residual, y, options, [&](auto choice, bool descending) HWY_ATTR {
    using C = decltype(choice);
    NormalizeRunImpl<C::kRelu, C::kStream, C::kResidual>(x, residual, y, run, params, descending);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_NORMALIZE_INL_H_
