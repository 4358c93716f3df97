// How a validated tensor shape is walked: the canonical form every driver
// uses, and the chunking that fixes the reduction order. The plan depends on
// the shape only (never on threads or target), which is what makes results
// bit-identical for any num_threads.
#ifndef BNORM_SRC_PLAN_H_
#define BNORM_SRC_PLAN_H_

#include <stdint.h>

namespace bnorm {

struct Plan {
  // Channels-last: rows of C channels (NHWC, and any shape whose spatial
  // size is 1, which has the same memory order in both layouts).
  // Channels-first: N segments of `inner` contiguous values per channel.
  bool channels_last;
  int64_t channels;
  int64_t outer;  // channels-first: N; channels-last: rows (N * spatial)
  int64_t inner;  // channels-first: spatial size (> 1); channels-last: 1
  int64_t count;  // values per channel: outer * inner

  // Channels-first reductions sum each channel in chunks of consecutive
  // segments; the chunk partials are added in chunk order.
  int64_t segments_per_chunk;
  int64_t chunks_per_channel;

  // Channels-last: `fold` consecutive rows are processed as one row of
  // width = C * fold positions, so that few channels still fill vectors;
  // position i belongs to channel i % C. Rows past the last whole folded row
  // form a partial one of tail_width positions.
  int64_t fold;
  int64_t width;
  int64_t folded_rows;
  int64_t tail_width;
  // Positions are processed in blocks of at most kMaxRowWidth (only when
  // fold == 1 and C is large).
  int64_t block_width;
  int64_t num_blocks;
  // Reductions sum folded rows in chunks; partials are added in chunk order.
  int64_t rows_per_chunk;
  int64_t num_chunks;
};

// dims in memory order; the caller has validated them.
Plan MakePlan(bool nhwc, int rank, const int64_t* dims);

}  // namespace bnorm

#endif  // BNORM_SRC_PLAN_H_
