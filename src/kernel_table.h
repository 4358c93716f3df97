// The per-target SIMD kernels, as one table of function pointers per target.
//
// Kernels see two data shapes only:
// - a span: `count` contiguous elements of one channel (channels-first data),
//   with per-channel parameters passed as scalars;
// - rows: `rows` rows of `width` contiguous elements, `stride` elements apart,
//   where position i of every row belongs to the channel whose parameters sit
//   at index i of the parameter arrays (channels-last data).
// Kernels assume valid input; the C API layer has checked everything.
#ifndef BNORM_SRC_KERNEL_TABLE_H_
#define BNORM_SRC_KERNEL_TABLE_H_

#include <stddef.h>
#include <stdint.h>

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

// Per-position parameters of dx = dy * a + (x - center) * b + c.
struct GradArrays {
  const float* center;
  const float* a;
  const float* b;
  const float* c;
};

// Choices for an elementwise pass.
struct Elementwise {
  bool relu;    // y = max(y, 0), NaN kept
  bool stream;  // non-temporal stores: the output goes to memory, not cache
  // Span kernels: if set, the same number of values from here are prefetched
  // into L2 along the way (the next channel's segment, whose statistics come
  // next), so that reading them from memory overlaps writing this output.
  const void* prefetch = nullptr;
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

  // Adds sum(x - shift) and sum((x - shift)^2) to *sums.
  void (*moments_span)(const T* x, Spans spans, float shift, SumPair* sums);
  // Adds per position: first[i] += sum(x - shift[i]), second[i] += sum((x - shift[i])^2).
  void (*moments_rows)(const T* x, Rows rows, const float* shift, double* first, double* second);

  // Adds sum(g) and sum(g * (x - mean)), where g = dy, zeroed where y <= 0 if
  // y is not null (fused ReLU).
  void (*grad_sums_span)(const T* x, const T* dy, const T* y, Spans spans, float mean,
                         SumPair* sums);
  void (*grad_sums_rows)(const T* x, const T* dy, const T* y, Rows rows, const float* mean,
                         double* first, double* second);

  // dx = g * a + (x - center) * b + c, with g as above, and d_residual = g
  // unless d_residual is null (it may be dy). If x is null, the
  // (x - center) * b term is left out and x is not read. stream: as in
  // Elementwise, for dx.
  void (*backward_span)(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Spans spans,
                        float center, float a, float b, float c, bool stream);
  void (*backward_rows)(const T* x, const T* dy, const T* y, T* dx, T* d_residual, Rows rows,
                        GradArrays params, bool stream);
};

}  // namespace bnorm

#endif  // BNORM_SRC_KERNEL_TABLE_H_
