// The per-target SIMD kernels, as one table of function pointers per target.
//
// Kernels see three data shapes:
// - a span: `count` contiguous elements of one channel (channels-first data),
//   with per-channel parameters passed as scalars;
// - a run: consecutive channels-first segments in memory order, with
//   per-segment parameters from arrays;
// - rows: `rows` rows of `width` contiguous elements, `stride` elements apart,
//   where position i of every row belongs to the channel whose parameters sit
//   at index i of the parameter arrays (channels-last data).
// Kernels assume valid input; the C API layer has checked everything.
#ifndef BNORM_SRC_KERNEL_TABLE_H_
#define BNORM_SRC_KERNEL_TABLE_H_

#include <stddef.h>
#include <stdint.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "hwy/base.h"

namespace bnorm {

// Sums that statistics and gradients are built from, accumulated in double.
// For moments: first = sum(x - shift), second = sum((x - shift)^2).
// For gradients: first = sum(dy), second = sum(dy * (x - mean)).
struct SumPair {
  double first = 0;
  double second = 0;
};

// Widest row a rows kernel takes: its per-position parameters and float
// partial sums live on the stack, so the inference path never allocates.
constexpr size_t kMaxRowWidth = 2048;

// Rows of channels-last data; width <= kMaxRowWidth.
struct Rows {
  size_t rows;
  size_t width;   // elements per row processed
  size_t stride;  // elements from one row to the next
};

// Per-position parameters of y = (x - center) * scale + shift.
struct AffineArrays {
  const float* center;
  const float* scale;
  const float* shift;
};

// The arithmetic of the backward's sums for elements T. The 16-bit types
// promise every dx within one unit in the last place of exact batch norm,
// also where a channel's sums cancel, so their sums' terms are double; float
// tensors sum float terms (in double totals). Their dx is checked in float and
// recomputed in double where needed (backward-inl.h).
template <typename T>
using GradPrecision = typename std::conditional<sizeof(T) == 2, double, float>::type;

// Where the float evaluation of dx is trusted for 16-bit tensors:
//   |dx| >= |g - grad_mean| * a + |x - center| * b + rest, and dx is finite.
// Its error is at most about 3 float epsilons of its terms' magnitude
//   |g - grad_mean| * |a| + |x - center| * |b| + |grad_mean| * |a|,
// which is within a quarter of the type's ulp of dx (so dx rounds to a
// neighbour of exact dx's rounding) where |dx| >= 2^-12.4 of the terms for
// bf16's 8 bits and 2^-9.4 for f16's 11; the fractions below leave margins
// of 2.6 and 1.3. Float underflow in the products stays far below the
// types' smallest ulp, but a coefficient that float cannot hold to its
// precision (infinite, or subnormal or zero though not zero in double) is
// not trusted at all. Other lanes are recomputed in
// double: for random data about 1 in 1,000 bf16 and 1 in 250 f16 elements.
struct TrustBound {
  float a;
  float b;
  float rest;
};

template <typename T>
TrustBound MakeTrustBound(double grad_mean, double a, double b) {
  const float fraction = std::is_same<T, hwy::bfloat16_t>::value ? 1.0f / 2048 : 1.0f / 512;
  for (double c : {grad_mean, a, b}) {
    const float rounded = std::fabs(static_cast<float>(c));
    // Infinite, or subnormal or zero in float though not in double.
    if (!(rounded < std::numeric_limits<float>::infinity()) ||
        (c != 0 && rounded < std::numeric_limits<float>::min())) {
      return {0, 0, std::numeric_limits<float>::infinity()};
    }
  }
  const float bound_a = fraction * std::fabs(static_cast<float>(a));
  return {bound_a, fraction * std::fabs(static_cast<float>(b)),
          bound_a * std::fabs(static_cast<float>(grad_mean))};
}

// One channel's dx = (g - grad_mean) * a + (x - center) * b, in double, and
// the trust bound of its float evaluation (used for the 16-bit types).
struct GradChannel {
  double grad_mean;
  double a;
  double b;
  TrustBound bound;
};

// Consecutive channels' dx coefficients (backward_run): center and the double
// coefficients, which the kernel rounds to float, and the trust bounds.
struct GradChannels {
  const float* center;
  const double* grad_mean;
  const double* a;
  const double* b;
  const float* bound_a;
  const float* bound_b;
  const float* bound_rest;

  GradChannel operator[](size_t j) const {
    return {grad_mean[j], a[j], b[j], {bound_a[j], bound_b[j], bound_rest[j]}};
  }
};

// g itself: what writes d_residual (the masked dy) through the same kernel.
template <typename T>
GradChannel PassGradient() {
  return {0, 1, 0, MakeTrustBound<T>(0, 1, 0)};
}

// The coefficients of dx = (g - grad_mean) * a + (x - center) * b as the
// kernels read them: float for the float evaluation, and for the 16-bit types
// also double (wide_*) and the trust bound. Narrow is float (one channel) or
// const float* (per row position), Wide the same for double; for float
// tensors the wide and bound arrays are null.
template <typename Narrow, typename Wide>
struct DxCoefficients {
  Narrow center, grad_mean, a, b;
  Wide wide_grad_mean, wide_a, wide_b;
  Narrow bound_a, bound_b, bound_rest;
};

// Per row position (backward_rows).
using GradArrays = DxCoefficients<const float*, const double*>;

// Choices for the backward's span pass.
struct GradSpanOptions {
  bool stream;  // non-temporal stores: dx (and d_residual) go to memory, not cache
  // If not 0, x and dy this many elements ahead of each segment are
  // prefetched into L2 along the way: the next channel's segments, whose sums
  // come next, so that reading them from memory overlaps this pass's work.
  size_t prefetch_ahead = 0;
};

// Choices for an elementwise pass.
struct Elementwise {
  bool relu;    // y = max(y, 0), NaN kept
  bool stream;  // non-temporal stores: the output goes to memory, not cache
  // Span kernels: as GradSpanOptions::prefetch_ahead, for x.
  size_t prefetch_ahead = 0;
  // Walk downwards where the output lies a little ahead of an input modulo
  // 4 KiB (see WalksDescending in vector_io-inl.h).
  bool reverse_when_aliased = false;
};

// One channel of a channels-first tensor: `segments` runs of `count` values,
// the runs `stride` values apart (one run per sample). A kernel walks them
// all, so short runs cost one call per channel, not one per run.
struct Spans {
  size_t count;
  size_t segments;
  size_t stride;
};

// Consecutive segments of a channels-first tensor, in memory order: segment
// j holds `length` values of the channel whose parameters sit at index j.
struct SegmentRun {
  size_t segments;
  size_t length;
};

// p + offset, or null for null p (offsetting a null pointer is undefined).
template <typename T>
inline T* Offset(T* p, size_t offset) {
  return p != nullptr ? p + offset : nullptr;
}

template <typename T>
struct KernelTable {
  int64_t target;  // Highway target bit (HWY_AVX2, ...)

  // y = (x - center) * scale + shift, plus residual (at the same offsets as x)
  // unless it is null, then max(., 0) if relu (NaN stays NaN).
  void (*normalize_span)(const T* x, const T* residual, T* y, Spans spans, float center,
                         float scale, float shift, Elementwise options);
  void (*normalize_rows)(const T* x, const T* residual, T* y, Rows rows, AffineArrays params,
                         Elementwise options);
  // The same over a run of segments, walked as one contiguous range, so that
  // streamed stores fill whole lines where two segments meet.
  void (*normalize_run)(const T* x, const T* residual, T* y, SegmentRun run, AffineArrays params,
                        Elementwise options);

  // Adds sum(x - shift) and sum((x - shift)^2) to *sums.
  void (*moments_span)(const T* x, Spans spans, float shift, SumPair* sums);
  // Adds per position: first[i] += sum(x - shift[i]), second[i] += sum((x - shift[i])^2).
  void (*moments_rows)(const T* x, Rows rows, const float* shift, double* first, double* second);
  // Adds each segment's sums to sums[j], exactly as moments_span would; if
  // prefetch_ahead is not 0, x that many elements ahead is read into L2.
  void (*moments_run)(const T* x, SegmentRun run, const float* shift, SumPair* sums,
                      size_t prefetch_ahead);

  // Adds sum(g) and sum(g * (x - mean)), where g = dy, zeroed where y <= 0 if
  // y is not null (fused ReLU).
  void (*grad_sums_span)(const T* x, const T* dy, const T* y, Spans spans, float mean,
                         SumPair* sums);
  // read_ahead: tiles read rows ahead into L2 (see AccumulateRows).
  void (*grad_sums_rows)(const T* x, const T* dy, const T* y, Rows rows, const float* mean,
                         bool read_ahead, double* first, double* second);
  void (*grad_sums_run)(const T* x, const T* dy, const T* y, SegmentRun run, const float* mean,
                        SumPair* sums);

  // dx = (g - grad_mean) * a + (x - center) * b, with g as above, and
  // d_residual = g unless d_residual is null (it may be dy). If x is null,
  // the (x - center) * b term is left out and x is not read. stream: as in
  // Elementwise, for dx.
  void (*backward_span)(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Spans spans,
                        float center, const GradChannel& k, GradSpanOptions options);
  void (*backward_rows)(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Rows rows,
                        GradArrays params, bool stream);
  // Segment j of the run with channels[j]; one call for a sample's segments.
  void (*backward_run)(const T* x, const T* dy, const T* y, T* dx, T* d_residual, SegmentRun run,
                       GradChannels channels, bool stream);
};

}  // namespace bnorm

#endif  // BNORM_SRC_KERNEL_TABLE_H_
