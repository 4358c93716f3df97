// Walks a tensor with the normalize kernels, for inference and for the
// normalize pass of training; a residual, when not null, is added before the
// ReLU. Per-channel parameters come from a functor
// affine(c, &center, &scale, &shift), expanded into small stack arrays: this
// path allocates nothing.
#ifndef BNORM_SRC_NORMALIZE_DRIVER_H_
#define BNORM_SRC_NORMALIZE_DRIVER_H_

#include <string.h>

#include <algorithm>

#include "src/kernel_table.h"
#include "src/parallel.h"
#include "src/plan.h"

namespace bnorm {

// Per-channel parameters computed beforehand for every channel (training).
struct ChannelParams {
  const float* center;
  const float* scale;
  const float* shift;
  void operator()(int64_t c, float* center_c, float* scale_c, float* shift_c) const {
    *center_c = center[c];
    *scale_c = scale[c];
    *shift_c = shift[c];
  }
};

// Parameters of positions [begin, begin + n) of a channels-last row, or of
// channels [begin, begin + n) (the same with C positions per row).
struct AffineBlock {
  alignas(64) float center[kMaxRowWidth];
  alignas(64) float scale[kMaxRowWidth];
  alignas(64) float shift[kMaxRowWidth];

  // Channels [begin, begin + n).
  template <class ChannelAffine>
  void FillChannels(int64_t begin, int64_t n, const ChannelAffine& affine) {
    for (int64_t i = 0; i < n; ++i) affine(begin + i, &center[i], &scale[i], &shift[i]);
  }
  // Row positions [begin, begin + n).
  void FillPositions(const Plan& p, int64_t begin, int64_t n, const ChannelParams& params) {
    SpreadToPositions(p, begin, n, params.center, center);
    SpreadToPositions(p, begin, n, params.scale, scale);
    SpreadToPositions(p, begin, n, params.shift, shift);
  }
  template <class ChannelAffine>
  void FillPositions(const Plan& p, int64_t begin, int64_t n, const ChannelAffine& affine) {
    if (p.run == 1 && n > p.channels) {
      // Channels-last rows repeat the channels: compute each once, then copy.
      FillPositions(p, begin, p.channels, affine);
      for (int64_t i = p.channels; i < n; i += p.channels) {
        const size_t bytes = static_cast<size_t>(std::min(p.channels, n - i)) * sizeof(float);
        memcpy(&center[i], &center[i - p.channels], bytes);
        memcpy(&scale[i], &scale[i - p.channels], bytes);
        memcpy(&shift[i], &shift[i - p.channels], bytes);
      }
      return;
    }
    // Once per channel run: the inference affine costs a square root.
    ForEachRun(p, begin, n, [&](int64_t i_begin, int64_t i_end, int64_t c) {
      affine(c, &center[i_begin], &scale[i_begin], &shift[i_begin]);
      std::fill(&center[i_begin + 1], &center[i_end], center[i_begin]);
      std::fill(&scale[i_begin + 1], &scale[i_end], scale[i_begin]);
      std::fill(&shift[i_begin + 1], &shift[i_end], shift[i_begin]);
    });
  }
  AffineArrays arrays() const { return AffineArrays{center, scale, shift}; }
};

// Segments [begin, end) of a channels-first tensor; segment s is channel
// s % C of sample s / C. One kernel call per sample (or per block of
// kMaxRowWidth channels), in memory order: segments of the same channel lie C
// segments apart, and walking them that way, or calling a kernel per
// segment, took (32, 1024, 14, 14) inference 1.7 times as long as the
// channels-last layout's contiguous walk (AMD EPYC, one thread, cold).
template <typename T, class ChannelAffine>
void NormalizeSegments(const Plan& p, const KernelTable<T>& k, const T* x, const T* residual, T* y,
                       Elementwise options, Range segments, const ChannelAffine& affine) {
  constexpr int64_t kBlock = static_cast<int64_t>(kMaxRowWidth);
  AffineBlock block;
  int64_t block_begin = 0, block_end = 0;  // the channels the block holds
  for (int64_t s = segments.begin; s < segments.end;) {
    const int64_t c = s % p.channels;
    if (c < block_begin || c >= block_end) {
      // Only the channels the range reaches: a group's walk calls this once
      // per sample for a few channels.
      block_begin = c;
      block_end = std::min({p.channels, c + kBlock, c + (segments.end - s)});
      block.FillChannels(block_begin, block_end - block_begin, affine);
    }
    const int64_t n = std::min(segments.end - s, block_end - c);
    const int64_t i = c - block_begin;
    const int64_t offset = s * p.inner;
    k.normalize_run(x + offset, Offset(residual, offset), y + offset,
                    SegmentRun{static_cast<size_t>(n), static_cast<size_t>(p.inner)},
                    AffineArrays{block.center + i, block.scale + i, block.shift + i}, options);
    s += n;
  }
}

// Rows [begin, end) of the rows view, plus the partial last row when
// `with_tail`.
template <typename T, class ChannelAffine>
void NormalizeRowRange(const Plan& p, const KernelTable<T>& k, const T* x, const T* residual, T* y,
                       Elementwise options, Range rows, bool with_tail,
                       const ChannelAffine& affine) {
  AffineBlock block;
  for (int64_t b = 0; b < p.num_blocks; ++b) {
    const int64_t first = b * p.block_width;
    const int64_t n = std::min(p.block_width, p.width - first);
    block.FillPositions(p, first, n, affine);
    const int64_t offset = rows.begin * p.width + first;
    k.normalize_rows(x + offset, Offset(residual, offset), y + offset,
                     Rows{static_cast<size_t>(rows.end - rows.begin), static_cast<size_t>(n),
                          static_cast<size_t>(p.width)},
                     block.arrays(), options);
    const int64_t tail_n = std::min(n, p.tail_width - first);
    if (with_tail && tail_n > 0) {
      const int64_t tail_offset = p.rows * p.width + first;
      k.normalize_rows(x + tail_offset, Offset(residual, tail_offset), y + tail_offset,
                       Rows{1, static_cast<size_t>(tail_n), static_cast<size_t>(p.width)},
                       block.arrays(), options);
    }
  }
}

// Thread t's share of the whole tensor.
template <typename T, class ChannelAffine>
void NormalizeShare(const Plan& p, const KernelTable<T>& k, const T* x, const T* residual, T* y,
                    Elementwise options, int t, int nt, const ChannelAffine& affine) {
  if (p.by_rows) {
    NormalizeRowRange(p, k, x, residual, y, options, ShareOf(p.rows, t, nt), t == nt - 1, affine);
  } else {
    NormalizeSegments(p, k, x, residual, y, options, ShareOf(p.outer * p.channels, t, nt), affine);
  }
  if (options.stream) FlushStreams();
}

}  // namespace bnorm

#endif  // BNORM_SRC_NORMALIZE_DRIVER_H_
