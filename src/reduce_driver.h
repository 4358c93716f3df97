// The control flow shared by training forward and backward: per-channel sums
// over the whole tensor, a per-channel step that turns the sums into
// coefficients, then an elementwise pass. The sums are always formed in the
// same order (the plan's chunks, added in chunk order), whichever way the work
// is spread over threads, so results do not depend on num_threads.
//
// Ops provides:
//   PrepareChannels(range)           per-channel set-up before any sum
//   SpanSums(c, segment, n, &sums)   adds channel c's channels-first segments
//                                    segment, segment + C, ... (n of them)
//   RowsSums(offset, rows, pos, f, s) adds channels-last rows, positions
//                                    [pos, pos + rows.width), into f[], s[]
//   Finish(c, sums)                  per-channel coefficients from the sums
//   ElementwiseChannel(c, next)      the elementwise pass of one channel;
//                                    next (or -1) is the channel whose sums
//                                    come next, for the ops to prefetch
//   ElementwiseShare(t, nt)          thread t's share of the elementwise pass
//   ElementwiseDone()                after a thread's last ElementwiseChannel
#ifndef BNORM_SRC_REDUCE_DRIVER_H_
#define BNORM_SRC_REDUCE_DRIVER_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>

#include "src/kernel_table.h"
#include "src/parallel.h"
#include "src/plan.h"

namespace bnorm {

// Scratch the reduction needs, beyond what Ops keeps. Computed wide: a shape
// with an absurd channel count must fail to allocate, not wrap around.
inline unsigned __int128 ReductionScratchBytes(const Plan& p) {
  using Wide = unsigned __int128;
  if (p.by_rows) return Wide{2 * sizeof(double)} * p.num_chunks * p.width;
  return Wide{sizeof(SumPair)} * p.channels * p.chunks_per_channel;
}

// Clamps a wide byte count to what malloc can be asked for (and refuse).
inline size_t ClampBytes(unsigned __int128 bytes) {
  return bytes > SIZE_MAX / 2 ? SIZE_MAX / 2 : static_cast<size_t>(bytes);
}

template <class Ops>
SumPair ChunkSums(const Plan& p, int64_t c, int64_t chunk, Ops& ops) {
  SumPair sums;
  const int64_t first = chunk * p.segments_per_chunk;
  const int64_t last = std::min(p.outer, first + p.segments_per_chunk);
  if (last > first) ops.SpanSums(c, first * p.channels + c, last - first, &sums);
  return sums;
}

inline void AddTo(SumPair* total, const SumPair& part) {
  total->first += part.first;
  total->second += part.second;
}

// Rows view: partial sums of chunk j over position block b.
template <class Ops>
void RowChunkSums(const Plan& p, int64_t j, int64_t b, double* first, double* second, Ops& ops) {
  const int64_t pos = b * p.block_width;
  const int64_t n = std::min(p.block_width, p.width - pos);
  double* f = first + j * p.width + pos;
  double* s = second + j * p.width + pos;
  std::fill_n(f, n, 0.0);
  std::fill_n(s, n, 0.0);
  const int64_t row_begin = j * p.rows_per_chunk;
  const int64_t row_end = std::min(p.rows, row_begin + p.rows_per_chunk);
  const size_t stride = static_cast<size_t>(p.width);
  if (row_end > row_begin) {
    ops.RowsSums(row_begin * p.width + pos,
                 Rows{static_cast<size_t>(row_end - row_begin), static_cast<size_t>(n), stride},
                 pos, f, s);
  }
  const int64_t tail_n = std::min(n, p.tail_width - pos);
  if (j == p.num_chunks - 1 && tail_n > 0) {
    ops.RowsSums(p.rows * p.width + pos, Rows{1, static_cast<size_t>(tail_n), stride}, pos, f, s);
  }
}

// Channel c's total over the row partials, in chunk, fold, then run order.
inline SumPair MergeRowPartials(const Plan& p, int64_t c, const double* first,
                                const double* second) {
  SumPair total;
  for (int64_t j = 0; j < p.num_chunks; ++j) {
    for (int64_t f = 0; f < p.fold; ++f) {
      const int64_t begin = j * p.width + (f * p.channels + c) * p.run;
      for (int64_t i = begin; i < begin + p.run; ++i) {
        total.first += first[i];
        total.second += second[i];
      }
    }
  }
  return total;
}

// ops.Finish for channels [channels.begin, channels.end) of the rows view. With
// one position per channel run (channels-last), a channel's partials sit at
// the same offset of every chunk and fold, so blocks of channels are merged
// with the channel innermost; each channel's additions keep the order of
// MergeRowPartials, so the results are the same.
template <class Ops>
void FinishRowChannels(const Plan& p, Range channels, const double* first, const double* second,
                       Ops& ops) {
  if (p.run != 1) {
    for (int64_t c = channels.begin; c < channels.end; ++c) {
      ops.Finish(c, MergeRowPartials(p, c, first, second));
    }
    return;
  }
  constexpr int64_t kBlock = 256;
  double sum_first[kBlock], sum_second[kBlock];
  for (int64_t c0 = channels.begin; c0 < channels.end; c0 += kBlock) {
    const int64_t n = std::min(kBlock, channels.end - c0);
    std::fill_n(sum_first, n, 0.0);
    std::fill_n(sum_second, n, 0.0);
    for (int64_t j = 0; j < p.num_chunks; ++j) {
      for (int64_t f = 0; f < p.fold; ++f) {
        const int64_t base = j * p.width + f * p.channels + c0;
        for (int64_t i = 0; i < n; ++i) {
          sum_first[i] += first[base + i];
          sum_second[i] += second[base + i];
        }
      }
    }
    for (int64_t i = 0; i < n; ++i) ops.Finish(c0 + i, SumPair{sum_first[i], sum_second[i]});
  }
}

// n segments of one channel of the spans view, from one of its segments on.
inline Spans ChannelSpans(const Plan& p, int64_t n) {
  return Spans{static_cast<size_t>(p.inner), static_cast<size_t>(n),
               static_cast<size_t>(p.channels * p.inner)};
}

// Whether the elementwise pass of a training or backward call streams its
// output: over the tensor in order (ElementwiseShare), and one channel at a
// time (ElementwiseChannel), whose segments lie C segments apart.
struct OutputStreams {
  bool in_order;
  bool by_channel;
};
template <typename T>
OutputStreams OutputStreamsFor(const Plan& p) {
  constexpr double kBytes = sizeof(T);
  const bool in_order = kBytes * p.count * p.channels >= StreamMinBytes(sizeof(T));
  return {in_order, in_order && kBytes * p.inner >= kMinStreamedSegmentBytes};
}

// Channels-first channels smaller than this are processed kMaxGroup at a time.
constexpr int64_t kGroupBytes = 16 * 1024;
constexpr int64_t kMaxGroup = 16;

// `scratch` holds ReductionScratchBytes(p).
template <class Ops>
void ReduceThenElementwise(const Plan& p, int num_threads, void* scratch, Ops& ops) {
  // One thread per channel, stats then the elementwise pass while the channel
  // is still in cache, when there are channels enough to keep threads busy.
  const bool per_channel = !p.by_rows && (num_threads == 1 || p.channels >= 4 * num_threads);
  RunParallel(num_threads, [&](int t, int nt) {
    const Range channels = ShareOf(p.channels, t, nt);
    if (per_channel) {
      // Small channels go in groups, each step for the whole group: a
      // channel's sums, coefficients and elementwise pass form one chain of
      // dependent latencies, and independent channels side by side overlap
      // them. The group stays within L1, so the second pass still hits cache.
      const int64_t group = std::clamp<int64_t>(kGroupBytes / (p.count * 4), 1, kMaxGroup);
      SumPair totals[kMaxGroup];
      for (int64_t c0 = channels.begin; c0 < channels.end; c0 += group) {
        const int64_t c_end = std::min(channels.end, c0 + group);
        ops.PrepareChannels(Range{c0, c_end});
        for (int64_t c = c0; c < c_end; ++c) {
          SumPair& total = totals[c - c0];
          total = SumPair{};
          for (int64_t j = 0; j < p.chunks_per_channel; ++j) AddTo(&total, ChunkSums(p, c, j, ops));
        }
        for (int64_t c = c0; c < c_end; ++c) ops.Finish(c, totals[c - c0]);
        // A group's channels were all just summed; one channel alone is
        // followed by the next one's sums, which the ops may prefetch.
        const bool has_next = group == 1 && c_end < channels.end;
        for (int64_t c = c0; c < c_end; ++c) ops.ElementwiseChannel(c, has_next ? c + 1 : -1);
      }
      ops.ElementwiseDone();
      return;
    }
    ops.PrepareChannels(channels);
#pragma omp barrier
    if (p.by_rows) {
      double* first = static_cast<double*>(scratch);
      double* second = first + p.num_chunks * p.width;
      const Range tasks = ShareOf(p.num_chunks * p.num_blocks, t, nt);
      for (int64_t task = tasks.begin; task < tasks.end; ++task) {
        RowChunkSums(p, task / p.num_blocks, task % p.num_blocks, first, second, ops);
      }
#pragma omp barrier
      FinishRowChannels(p, channels, first, second, ops);
    } else {
      SumPair* partials = static_cast<SumPair*>(scratch);
      const Range tasks = ShareOf(p.channels * p.chunks_per_channel, t, nt);
      for (int64_t task = tasks.begin; task < tasks.end; ++task) {
        partials[task] =
            ChunkSums(p, task / p.chunks_per_channel, task % p.chunks_per_channel, ops);
      }
#pragma omp barrier
      for (int64_t c = channels.begin; c < channels.end; ++c) {
        SumPair total;
        for (int64_t j = 0; j < p.chunks_per_channel; ++j) {
          AddTo(&total, partials[c * p.chunks_per_channel + j]);
        }
        ops.Finish(c, total);
      }
    }
#pragma omp barrier
    ops.ElementwiseShare(t, nt);
  });
}

}  // namespace bnorm

#endif  // BNORM_SRC_REDUCE_DRIVER_H_
