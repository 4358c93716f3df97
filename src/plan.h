// How a validated tensor shape is walked: the canonical form every driver
// uses, and the chunking that fixes the reduction order. The plan depends on
// the shape and element size only (never on threads or target), which is
// what makes results bit-identical for any num_threads.
#ifndef BNORM_SRC_PLAN_H_
#define BNORM_SRC_PLAN_H_

#include <stdint.h>
#include <string.h>

#include <algorithm>

namespace bnorm {

struct Plan {
  int64_t channels;
  int64_t count;  // values per channel

  // Two views of the tensor:
  // - spans (channels-first with a large spatial size): each channel is
  //   `outer` segments of `inner` contiguous values, C * inner apart, walked
  //   one channel at a time;
  // - rows (channels-last, or channels-first with a small spatial size):
  //   rows of `width` positions, where `run` consecutive positions belong to
  //   one channel and the channels repeat: position p is channel
  //   (p / run) % C. Small segments would otherwise cost a call, a flush and
  //   a partial cache line each.
  bool by_rows;

  // Spans view. Reductions sum each channel in chunks of consecutive
  // segments; the chunk partials are added in chunk order.
  int64_t outer;
  int64_t inner;
  int64_t segments_per_chunk;
  int64_t chunks_per_channel;

  // Rows view. Channels-last folds `fold` rows into one so that few channels
  // still fill vectors; rows left over form a partial last row of tail_width
  // positions. Positions are processed in blocks of block_width (at most
  // kMaxRowWidth). Reductions sum rows in chunks, whose partials are added in
  // chunk order.
  int64_t run;
  int64_t fold;
  int64_t width;
  int64_t rows;
  int64_t tail_width;
  int64_t block_width;
  int64_t num_blocks;
  int64_t rows_per_chunk;
  int64_t num_chunks;
};

// What a plan is for: a single elementwise pass (inference), or sums over
// each channel followed by an elementwise pass (training, backward).
enum class PlanKind { kElementwise, kReduction };

// dims in memory order; the caller has validated them.
Plan MakePlan(bool nhwc, int rank, const int64_t* dims, PlanKind kind, size_t element_bytes);

// Calls f(i_begin, i_end, channel) for each run of the row positions
// [begin, begin + n) that belong to one channel, with i counted from begin.
// Walks the channel index instead of dividing once per position.
template <class F>
void ForEachRun(const Plan& p, int64_t begin, int64_t n, const F& f) {
  int64_t c = (begin / p.run) % p.channels;
  int64_t i = 0;
  int64_t run_left = p.run - begin % p.run;
  while (i < n) {
    const int64_t end = i + run_left < n ? i + run_left : n;
    f(i, end, c);
    i = end;
    run_left = p.run;
    if (++c == p.channels) c = 0;
  }
}

// Calls f(i, channel) for the row positions [begin, begin + n), i from 0.
template <class F>
void ForEachPosition(const Plan& p, int64_t begin, int64_t n, const F& f) {
  ForEachRun(p, begin, n, [&](int64_t i_begin, int64_t i_end, int64_t c) {
    for (int64_t i = i_begin; i < i_end; ++i) f(i, c);
  });
}

// out[i] = per_channel[channel of row position begin + i], for i in [0, n).
// Channels-last rows (run 1) hold the channels in order, so this is a few
// block copies rather than a call per position.
template <typename From, typename To>
void SpreadToPositions(const Plan& p, int64_t begin, int64_t n, const From* per_channel, To* out) {
  if (p.run != 1) {
    ForEachRun(p, begin, n, [&](int64_t i_begin, int64_t i_end, int64_t c) {
      std::fill(out + i_begin, out + i_end, static_cast<To>(per_channel[c]));
    });
    return;
  }
  int64_t c = begin % p.channels;
  for (int64_t i = 0; i < n; c = 0) {
    const int64_t len = std::min(n - i, p.channels - c);
    std::copy(per_channel + c, per_channel + c + len, out + i);
    i += len;
  }
}

}  // namespace bnorm

#endif  // BNORM_SRC_PLAN_H_
