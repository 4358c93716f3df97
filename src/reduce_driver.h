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
//   RunSums(segment, n, sums)        adds the n consecutive channels-first
//                                    segments from `segment` on (channels of
//                                    one sample) into sums[0, n)
//   SumsBytesPerValue()              bytes the sums read per value
//   ElementwiseChannel(c, next)      the elementwise pass of one channel;
//                                    next (or -1) is the channel whose sums
//                                    come next, for the ops to prefetch
//   ElementwiseRun(segments)         the elementwise pass of consecutive
//                                    channels-first segments
//   ElementwiseShare(t, nt)          thread t's share of the elementwise pass
//   ElementwiseDone()                after a thread's last ElementwiseChannel
//                                    or ElementwiseRun
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

// Channels-first channels are summed and then passed over a group at a
// time, and a group is walked sample by sample: its channels' segments of
// one sample lie side by side, so each sample is one contiguous piece,
// where one channel alone is segments C segments apart. Groups hold up to
// kGroupBytes of the data the sums read, more than L2: the second pass then
// reads L3, and the longer pieces pay for that. Measured on the AMD EPYC
// (f32, cold, 3 interleaved rounds, against one channel at a time or groups
// within 16 KiB): training (32, 1024, 14, 14) took 0.61-0.66 of the time,
// (32, 2048, 7, 7) 0.46-0.63, (32, 512, 28, 28) 0.77-0.81 and
// (32, 256, 56, 56) 0.71-0.83; backward 0.66-0.98 on those. Groups within
// 512 KiB took 1.1-1.2 times as long as 2 MiB ones, 6 MiB no less; a cap of
// 64 channels rather than 256 took (32, 2048, 7, 7) 1.2 times as long at
// one thread.
// A single sample's channels lie one after another anyway: its groups stay
// within kOneSampleGroupBytes, so that the second pass reads L1 (two
// channels of (1, 256, 56, 56) backward at a time took 1.3 times as long).
constexpr double kGroupBytes = 2.0 * 1024 * 1024;
constexpr double kOneSampleGroupBytes = 16.0 * 1024;
constexpr int64_t kMaxGroup = 256;

// Channels per group, for sums that read bytes_per_value per value.
inline int64_t GroupChannels(const Plan& p, double bytes_per_value) {
  const double budget = p.outer == 1 ? kOneSampleGroupBytes : kGroupBytes;
  const double group = budget / (bytes_per_value * static_cast<double>(p.count));
  return group < 1 ? 1 : std::min<int64_t>(kMaxGroup, static_cast<int64_t>(group));
}

// The sums of a group of channels [begin, begin + n), added sample by
// sample: each channel's chunks of segments in the order ChunkSums sums
// them, so that the results are those of a channel-by-channel walk.
class GroupSums {
 public:
  void Start(Range group) {
    group_ = group;
    std::fill_n(totals_, group.end - group.begin, SumPair{});
  }

  // Adds sample s; samples come in order, 0 to outer - 1.
  template <class Ops>
  void AddSample(const Plan& p, int64_t s, Ops& ops) {
    const int64_t n = group_.end - group_.begin;
    if (s % p.segments_per_chunk == 0) std::fill_n(chunk_, n, SumPair{});
    ops.RunSums(s * p.channels + group_.begin, n, chunk_);
    if ((s + 1) % p.segments_per_chunk == 0 || s + 1 == p.outer) {
      for (int64_t i = 0; i < n; ++i) AddTo(&totals_[i], chunk_[i]);
    }
  }

  // After the last sample.
  template <class Ops>
  void Finish(Ops& ops) const {
    for (int64_t c = group_.begin; c < group_.end; ++c) ops.Finish(c, totals_[c - group_.begin]);
  }

 private:
  Range group_{0, 0};
  SumPair chunk_[kMaxGroup];
  SumPair totals_[kMaxGroup];
};

// Channels one at a time: a channel's sums, then its elementwise pass while
// it is in cache, which reads the next channel ahead for its sums.
template <class Ops>
void ChannelByChannel(const Plan& p, Range channels, Ops& ops) {
  for (int64_t c = channels.begin; c < channels.end; ++c) {
    ops.PrepareChannels(Range{c, c + 1});
    SumPair total;
    for (int64_t j = 0; j < p.chunks_per_channel; ++j) AddTo(&total, ChunkSums(p, c, j, ops));
    ops.Finish(c, total);
    ops.ElementwiseChannel(c, c + 1 < channels.end ? c + 1 : -1);
  }
}

// Groups of channels, each walked sample by sample, and two groups in step:
// a sample's elementwise pass over one group, then the next group's sums of
// that sample, so that the sums' reads from memory alternate with the
// outputs' writes, as in a copy, rather than following them. Against the
// groups one after the other, f32 cold (32, 256..2048, .., ..) took 0.89-0.94
// of the time in backward and 0.85-0.95 in training ((32, 1024, 14, 14):
// 1.00-1.04), 1 and 2 threads, 3 interleaved rounds (AMD EPYC). Reading the
// next group's piece ahead in the elementwise pass instead took 1.06-1.42
// times as long.
template <class Ops>
void GroupsInStep(const Plan& p, Range channels, int64_t group, Ops& ops) {
  GroupSums sums;
  Range current{channels.begin, std::min(channels.end, channels.begin + group)};
  ops.PrepareChannels(current);
  sums.Start(current);
  for (int64_t s = 0; s < p.outer; ++s) sums.AddSample(p, s, ops);
  while (current.begin < channels.end) {
    sums.Finish(ops);
    const Range next{current.end, std::min(channels.end, current.end + group)};
    const bool has_next = next.end > next.begin;
    if (has_next) {
      ops.PrepareChannels(next);
      sums.Start(next);
    }
    for (int64_t s = 0; s < p.outer; ++s) {
      ops.ElementwiseRun(Range{s * p.channels + current.begin, s * p.channels + current.end});
      if (has_next) sums.AddSample(p, s, ops);
    }
    current = next;
  }
}

// `scratch` holds ReductionScratchBytes(p).
template <class Ops>
void ReduceThenElementwise(const Plan& p, int num_threads, void* scratch, Ops& ops) {
  // One thread per channel, stats then the elementwise pass while the channel
  // is still in cache, when there are channels enough to keep threads busy.
  const bool per_channel = !p.by_rows && (num_threads == 1 || p.channels >= 4 * num_threads);
  RunParallel(num_threads, [&](int t, int nt) {
    const Range channels = ShareOf(p.channels, t, nt);
    if (per_channel) {
      const int64_t group = GroupChannels(p, ops.SumsBytesPerValue());
      if (group == 1) {
        ChannelByChannel(p, channels, ops);
      } else {
        GroupsInStep(p, channels, group, ops);
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
