// The reduction passes: per-channel sums for the statistics (moments) and for
// the gradient, read once, accumulated in float over short blocks and then in
// double. Both share one loop shape; only the two terms summed differ:
//   moments:  a = x - shift, b = a            (sum a, sum a*b)
//   gradient: a = dy (ReLU-masked), b = x - mean
// The float blocks are short so that their rounding stays near float epsilon;
// the shift (an estimate of the mean, chosen by the caller) keeps the sum of
// squares free of cancellation when the mean is large next to the spread.
// The 16-bit types' gradient sums take double terms and blocks instead
// (GradPrecision): their dx is held to one unit of the type also where it
// cancels, and a float sum's rounding would enter every dx of the channel.
// The summation order depends on the count only, so results are reproducible.
#if defined(BNORM_SRC_ACCUMULATE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_ACCUMULATE_INL_H_
#undef BNORM_SRC_ACCUMULATE_INL_H_
#else
#define BNORM_SRC_ACCUMULATE_INL_H_
#endif

#include <algorithm>
#include <type_traits>

#include "hwy/highway.h"
#include "src/double_lanes-inl.h"
#include "src/kernel_table.h"
#include "src/vector_io-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Iterations (of four vectors) per float block of a span: each float lane
// then sums 8 terms before the block joins the double total.
constexpr size_t kSpanBlockIterations = 8;
// Rows per float block of a rows reduction.
constexpr size_t kRowBlock = 16;

// term(d, i, a, b) sets the vectors a and b for elements [i, i + Lanes(d)),
// in vectors of Lane (float, or double for double terms and blocks).
// Four independent accumulator chains hide the add latency.
template <typename Lane, class Term>
HWY_INLINE void AccumulateSpan(size_t count, const Term& term, SumPair* sums) {
  const hn::ScalableTag<Lane> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  while (i + 4 * lanes <= count) {
    auto first0 = hn::Zero(d), first1 = hn::Zero(d), first2 = hn::Zero(d), first3 = hn::Zero(d);
    auto second0 = hn::Zero(d), second1 = hn::Zero(d), second2 = hn::Zero(d), second3 = hn::Zero(d);
    for (size_t it = 0; it < kSpanBlockIterations && i + 4 * lanes <= count; ++it) {
      auto a0 = hn::Zero(d), b0 = hn::Zero(d), a1 = hn::Zero(d), b1 = hn::Zero(d);
      auto a2 = hn::Zero(d), b2 = hn::Zero(d), a3 = hn::Zero(d), b3 = hn::Zero(d);
      term(d, i, a0, b0);
      term(d, i + lanes, a1, b1);
      term(d, i + 2 * lanes, a2, b2);
      term(d, i + 3 * lanes, a3, b3);
      first0 = hn::Add(first0, a0);
      first1 = hn::Add(first1, a1);
      first2 = hn::Add(first2, a2);
      first3 = hn::Add(first3, a3);
      second0 = hn::MulAdd(a0, b0, second0);
      second1 = hn::MulAdd(a1, b1, second1);
      second2 = hn::MulAdd(a2, b2, second2);
      second3 = hn::MulAdd(a3, b3, second3);
      i += 4 * lanes;
    }
    const auto first = hn::Add(hn::Add(first0, first1), hn::Add(first2, first3));
    const auto second = hn::Add(hn::Add(second0, second1), hn::Add(second2, second3));
    sums->first += hn::GetLane(hn::SumOfLanes(d, first));
    sums->second += hn::GetLane(hn::SumOfLanes(d, second));
  }
  // Fewer than four vectors left: whole vectors, then single lanes.
  if (i + lanes <= count) {
    auto first = hn::Zero(d), second = hn::Zero(d);
    for (; i + lanes <= count; i += lanes) {
      auto a = hn::Zero(d), b = hn::Zero(d);
      term(d, i, a, b);
      first = hn::Add(first, a);
      second = hn::MulAdd(a, b, second);
    }
    sums->first += hn::GetLane(hn::SumOfLanes(d, first));
    sums->second += hn::GetLane(hn::SumOfLanes(d, second));
  }
  const hn::CappedTag<Lane, 1> d1;
  for (; i < count; ++i) {
    auto a = hn::Zero(d1), b = hn::Zero(d1);
    term(d1, i, a, b);
    const double first = hn::GetLane(a);
    sums->first += first;
    sums->second += first * hn::GetLane(b);
  }
}

// total[0, Lanes(d)) += block, each lane widened to double: the same
// additions as one position at a time, a vector at a time.
template <class D>
HWY_INLINE void AddToTotals(D d, hn::Vec<D> block, double* total) {
  if constexpr (IsDoubleLanes<D>()) {
    hn::StoreU(hn::Add(hn::LoadU(d, total), block), d, total);
  } else if constexpr (hn::MaxLanes(D()) == 1) {
    total[0] += hn::GetLane(block);
  } else {
#if HWY_TARGET != HWY_SCALAR  // whose vectors are all single lanes
    const hn::Half<D> dh;
    const hn::RepartitionToWide<D> dw;
    double* upper = total + hn::Lanes(dw);
    hn::StoreU(hn::Add(hn::LoadU(dw, total), hn::PromoteTo(dw, hn::LowerHalf(dh, block))), dw,
               total);
    hn::StoreU(hn::Add(hn::LoadU(dw, upper), hn::PromoteTo(dw, hn::UpperHalf(dh, block))), dw,
               upper);
#endif
  }
}

// Sums columns [i, i + kVectors * Lanes(d)) of rows [r0, r1) in registers,
// then adds them per position into first[] and second[].
template <size_t kVectors, class D, class Term, class Ahead>
HWY_INLINE void AccumulateColumns(D d, size_t r0, size_t r1, size_t stride, size_t i,
                                  const Term& term, const Ahead& ahead, double* first,
                                  double* second) {
  const size_t lanes = hn::Lanes(d);
  hn::Vec<D> sum_first[kVectors], sum_second[kVectors];
  for (size_t v = 0; v < kVectors; ++v) {
    sum_first[v] = hn::Zero(d);
    sum_second[v] = hn::Zero(d);
  }
  for (size_t r = r0; r < r1; ++r) {
    for (size_t v = 0; v < kVectors; ++v) {
      auto a = hn::Zero(d), b = hn::Zero(d);
      term(d, r * stride, i + v * lanes, a, b);
      ahead(d, r, i + v * lanes);
      sum_first[v] = hn::Add(sum_first[v], a);
      sum_second[v] = hn::MulAdd(a, b, sum_second[v]);
    }
  }
  for (size_t v = 0; v < kVectors; ++v) {
    AddToTotals(d, sum_first[v], first + i + v * lanes);
    AddToTotals(d, sum_second[v], second + i + v * lanes);
  }
}

// Vectors per tile. Eight for double lanes where the target has 32 vector
// registers: four double vectors of a 16-bit row are a single 64-byte line,
// and the bf16 channels-last gradient sums took 4-13% longer that way
// (32x1024x14x14, one thread). Float lanes gained nothing from eight.
template <typename Lane>
constexpr size_t kWideTileVectors = (sizeof(Lane) == 8 && HWY_TARGET <= HWY_AVX3) ? 8 : 4;

// AccumulateRows for wide rows: rows are taken kRowBlock at a time, columns
// a tile at a time, so the partial sums stay in registers.
template <typename Lane, class Term, class Ahead>
HWY_INLINE void AccumulateRowsTiled(Rows rows, const Term& term, const Ahead& ahead, double* first,
                                    double* second) {
  const hn::ScalableTag<Lane> d;
  const hn::CappedTag<Lane, 1> d1;
  const size_t lanes = hn::Lanes(d);
  constexpr size_t kWideTile = kWideTileVectors<Lane>;
  for (size_t r0 = 0; r0 < rows.rows; r0 += kRowBlock) {
    const size_t r1 = std::min(rows.rows, r0 + kRowBlock);
    size_t i = 0;
    for (; i + kWideTile * lanes <= rows.width; i += kWideTile * lanes) {
      AccumulateColumns<kWideTile>(d, r0, r1, rows.stride, i, term, ahead, first, second);
    }
    for (; i + 4 * lanes <= rows.width; i += 4 * lanes) {
      AccumulateColumns<4>(d, r0, r1, rows.stride, i, term, ahead, first, second);
    }
    for (; i + lanes <= rows.width; i += lanes) {
      AccumulateColumns<1>(d, r0, r1, rows.stride, i, term, ahead, first, second);
    }
    for (; i < rows.width; ++i) {
      AccumulateColumns<1>(d1, r0, r1, rows.stride, i, term, ahead, first, second);
    }
  }
}

// AccumulateRows for narrow rows, too narrow for the tiles' four vectors, or
// rows to be read in memory order: rows are read one after the other with
// the float sums in L1, so the additions of successive vectors do not wait on
// each other.
template <typename Lane, class Term>
HWY_INLINE void AccumulateRowsInL1(Rows rows, const Term& term, double* first, double* second) {
  HWY_ALIGN Lane block_first[kMaxRowWidth];
  HWY_ALIGN Lane block_second[kMaxRowWidth];
  for (size_t r0 = 0; r0 < rows.rows; r0 += kRowBlock) {
    const size_t r1 = std::min(rows.rows, r0 + kRowBlock);
    std::fill_n(block_first, rows.width, Lane{0});
    std::fill_n(block_second, rows.width, Lane{0});
    for (size_t r = r0; r < r1; ++r) {
      ForEachVector<Lane>(rows.width, [&](auto d, size_t i) BNORM_INLINE_LAMBDA {
        auto a = hn::Zero(d), b = hn::Zero(d);
        term(d, r * rows.stride, i, a, b);
        hn::Store(hn::Add(hn::Load(d, block_first + i), a), d, block_first + i);
        hn::Store(hn::MulAdd(a, b, hn::Load(d, block_second + i)), d, block_second + i);
      });
    }
    for (size_t i = 0; i < rows.width; ++i) {
      first[i] += block_first[i];
      second[i] += block_second[i];
    }
  }
}

// How far ahead of the rows being summed a rows reduction reads its inputs
// into L2. The tiles read kRowBlock rows at once, and from memory that ran at
// half a contiguous read's speed on the AMD EPYC, hardware prefetch or not:
// summing 100 MB of rows of 256 floats took 10.0-10.3 ms, 5.2-5.9 ms with
// the rows 64 KiB ahead prefetched into L2, and a plain read 5.7 ms (rows of
// 1024 and 2048 floats: 6.1-6.5 ms to 4.8-5.2). f32 channels-last training,
// cold, 3 interleaved rounds: (32, 256, 56, 56) 0.75-0.76 of the time,
// (32, 1024, 14, 14) 0.85-0.93, (4096, 512) 0.77-0.87; hot rows 0.97-1.05.
// Rows read in order (narrow rows, f32 gradient sums) have the hardware
// prefetcher, and took longer with this ((8, 3, 224, 224): 1.2-1.65 times as
// long). At least a block of rows ahead, so that the tiles do not prefetch
// rows they are about to read.
constexpr size_t kRowsAheadBytes = 64 * 1024;

template <typename T>
size_t RowsAhead(const Rows& rows) {
  const size_t row_bytes = std::max<size_t>(1, rows.width * sizeof(T));
  return std::max(kRowBlock, (kRowsAheadBytes + row_bytes - 1) / row_bytes);
}

// term(d, offset, i, a, b) sets a and b for row elements [offset + i, ...),
// positions [i, ...), whose inputs are of type T; prefetch(d, offset, i)
// reads those of a later row into L2 (tiles only). Adds per position into first[0, width)
// and second[0, width). Each position sums kRowBlock rows in float, in row
// order, then joins its double total; both ways below add in that same order,
// so which one runs does not change the result. kInOrder reads wide rows in
// memory order too, rather than a tile of kRowBlock rows at a time.
template <typename Lane, typename T, bool kInOrder = false, class Term, class Prefetch>
HWY_INLINE void AccumulateRows(Rows rows, const Term& term, const Prefetch& prefetch, double* first,
                               double* second) {
  const hn::ScalableTag<Lane> d;
  if (kInOrder || rows.width < 8 * hn::Lanes(d)) {
    AccumulateRowsInL1<Lane>(rows, term, first, second);
  } else {
    const size_t rows_ahead = RowsAhead<T>(rows);
    const auto ahead = [&](auto d_ahead, size_t r, size_t i) BNORM_INLINE_LAMBDA {
      if (r + rows_ahead < rows.rows) prefetch(d_ahead, (r + rows_ahead) * rows.stride, i);
    };
    AccumulateRowsTiled<Lane>(rows, term, ahead, first, second);
  }
}

// One segment's moments, added to *sums. The span and run kernels inline it:
// a run calling the span kernel per segment, its Spans argument passed in
// memory, took 2.5 times as long from L2 (32 x 64 x 196, AMD EPYC).
template <typename T>
HWY_INLINE void MomentsSegment(const T* x, size_t count, float shift, SumPair* sums,
                               const T* prefetch = nullptr) {
  AccumulateSpan<float>(
      count,
      [&](auto d, size_t i, auto& a, auto& b) HWY_ATTR {
        a = hn::Sub(LoadElements(d, x + i), hn::Set(d, shift));
        b = a;
        PrefetchToL2(d, prefetch, i);
      },
      sums);
}

template <typename T>
void MomentsSpan(const T* x, Spans spans, float shift, SumPair* sums) {
  for (size_t s = 0; s < spans.segments; ++s) {
    MomentsSegment(x + s * spans.stride, spans.count, shift, sums);
  }
}

template <typename T>
void MomentsRun(const T* x, SegmentRun run, const float* shift, SumPair* sums,
                size_t prefetch_ahead) {
  for (size_t j = 0; j < run.segments; ++j) {
    const T* seg_x = x + j * run.length;
    MomentsSegment(seg_x, run.length, shift[j], sums + j,
                   prefetch_ahead != 0 ? seg_x + prefetch_ahead : nullptr);
  }
}

template <typename T>
void MomentsRows(const T* x, Rows rows, const float* shift, double* first, double* second) {
  AccumulateRows<float, T>(
      rows,
      [&](auto d, size_t offset, size_t i, auto& a, auto& b) HWY_ATTR {
        a = hn::Sub(LoadElements(d, x + offset + i), hn::LoadU(d, shift + i));
        b = a;
      },
      [&](auto d, size_t offset, size_t i) BNORM_INLINE_LAMBDA { PrefetchToL2(d, x + offset, i); },
      first, second);
}

// Float lanes as D's lanes: as they are, or widened (exactly) to double.
template <class D>
HWY_INLINE hn::Vec<D> WidenTo(D d, hn::Vec<hn::Rebind<float, D>> v) {
  if constexpr (IsDoubleLanes<D>()) {
    return hn::PromoteTo(d, v);
  } else {
    return v;
  }
}

// The gradient's terms on d's lanes (float, or double: GradPrecision): g =
// dy masked by the fused ReLU, and x - mean, which in double is exact.
template <bool kRelu, class D, typename T>
HWY_INLINE void GradTerms(D d, const T* x, const T* dy, const T* y, hn::Vec<D> mean, hn::Vec<D>& g,
                          hn::Vec<D>& centered) {
  const hn::Rebind<float, D> df;
  auto g_f = LoadElements(df, dy);
  if (kRelu) g_f = ReluGrad(df, g_f, LoadElements(df, y));
  g = WidenTo(d, g_f);
  centered = hn::Sub(WidenTo(d, LoadElements(df, x)), mean);
}

// One segment's gradient sums, added to *sums (inlined as MomentsSegment).
template <bool kRelu, typename T>
HWY_INLINE void GradSumsSegment(const T* x, const T* dy, const T* y, size_t count, float mean,
                                SumPair* sums) {
  using Lane = GradPrecision<T>;
  AccumulateSpan<Lane>(
      count,
      [&](auto d, size_t i, auto& a, auto& b) HWY_ATTR {
        GradTerms<kRelu>(d, x + i, dy + i, Offset(y, i), hn::Set(d, Lane{mean}), a, b);
      },
      sums);
}

// f(std::true_type()) with the fused ReLU's y, f(std::false_type()) without.
template <typename T, class F>
HWY_INLINE void DispatchRelu(const T* y, const F& f) {
  if (y != nullptr) {
    f(std::true_type());
  } else {
    f(std::false_type());
  }
}

template <typename T>
void GradSumsSpan(const T* x, const T* dy, const T* y, Spans spans, float mean, SumPair* sums) {
  DispatchRelu(y, [&](auto relu) HWY_ATTR {
    for (size_t s = 0; s < spans.segments; ++s) {
      const size_t o = s * spans.stride;
      GradSumsSegment<decltype(relu)::value>(x + o, dy + o, Offset(y, o), spans.count, mean, sums);
    }
  });
}

template <typename T>
void GradSumsRun(const T* x, const T* dy, const T* y, SegmentRun run, const float* mean,
                 SumPair* sums) {
  DispatchRelu(y, [&](auto relu) HWY_ATTR {
    for (size_t j = 0; j < run.segments; ++j) {
      const size_t o = j * run.length;
      GradSumsSegment<decltype(relu)::value>(x + o, dy + o, Offset(y, o), run.length, mean[j],
                                             sums + j);
    }
  });
}

template <bool kRelu, bool kReadAhead, typename T>
void GradSumsRowsImpl(const T* x, const T* dy, const T* y, Rows rows, const float* mean,
                      double* first, double* second) {
  using Lane = GradPrecision<T>;
  // Tiles read 2 x kRowBlock rows at once here (x and dy), and from memory
  // that was slow on the AMD EPYC: f32 channels-last backward of (32, 512,
  // 28, 28), (32, 1024, 14, 14), (1, 256, 56, 56), (256, 1024) and (4096,
  // 512), cold, took 0.64-0.88 of the time with rows in order (1 and 2
  // threads, best of 5 interleaved rounds), while their hot rows took
  // 1.10-1.16 times as long (the sums go through L1). Double lanes (16-bit
  // types) keep the tiles: their sums would fill L1.
  AccumulateRows<Lane, T, sizeof(Lane) == 4>(
      rows,
      [&](auto d, size_t offset, size_t i, auto& a, auto& b) HWY_ATTR {
        const auto mean_v = WidenTo(d, hn::LoadU(hn::Rebind<float, decltype(d)>(), mean + i));
        GradTerms<kRelu>(d, x + offset + i, dy + offset + i, Offset(y, offset + i), mean_v, a, b);
      },
      [&](auto d, size_t offset, size_t i) BNORM_INLINE_LAMBDA {
        if (!kReadAhead) return;
        PrefetchToL2(d, x + offset, i);
        PrefetchToL2(d, dy + offset, i);
        if (kRelu) PrefetchToL2(d, y + offset, i);
      },
      first, second);
}

template <typename T>
void GradSumsRows(const T* x, const T* dy, const T* y, Rows rows, const float* mean,
                  bool read_ahead, double* first, double* second) {
  DispatchRelu(y, [&](auto relu) HWY_ATTR {
    if (read_ahead) {
      GradSumsRowsImpl<decltype(relu)::value, true>(x, dy, y, rows, mean, first, second);
    } else {
      GradSumsRowsImpl<decltype(relu)::value, false>(x, dy, y, rows, mean, first, second);
    }
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_ACCUMULATE_INL_H_
