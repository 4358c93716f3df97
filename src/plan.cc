#include "src/plan.h"

#include <algorithm>

#include "src/kernel_table.h"

namespace bnorm {
namespace {

// Values summed per reduction chunk: large enough that a chunk's fixed cost
// is negligible, small enough to split a big channel across threads.
constexpr int64_t kChunkValues = 32 * 1024;
// Channels-first segments shorter than this are walked as rows by a
// reduction (measured on (32, 1024, 14, 14) and (32, 2048, 7, 7): spans cut
// training time by a fifth and backward by a third there). An elementwise
// pass walks segments of kMinRunLength values or more as runs; shorter ones
// as rows, where a vector would blend the parameters of three or more
// segments (kMinRunLength is the most float lanes of any target, AVX-512).
constexpr int64_t kMinReductionSpanValues = 32;
constexpr int64_t kMinRunLength = 16;
constexpr int64_t kMinRowsForRowsView = 16;
// Channels-last rows are folded until their width is a multiple of this many
// lanes (the widest f32 vector, AVX-512), unless that exceeds kMaxRowWidth.
constexpr int64_t kFoldLanes = 16;
// Row reductions keep double partials per chunk and position: this bounds
// them to num_chunks * width <= 128K (2 MiB of scratch).
constexpr int64_t kMaxPartialPositions = 128 * 1024;
constexpr int64_t kMaxChunks = 64;
// Pieces of work a reduction is cut into at least, where the tensor is large
// enough, so that it shares out evenly over a few threads.
constexpr int64_t kMinParallelTasks = 8;
constexpr int64_t kMinSplitValues = 16 * 1024;
// Rows views with fewer rows than this split positions rather than rows, in
// blocks of at least kMinBlockWidth positions.
constexpr int64_t kFewRows = 128;
constexpr int64_t kMinBlockWidth = 256;
// The smallest L1 data cache of the x86-64 CPUs bnorm expects.
constexpr size_t kL1DataBytes = 32 * 1024;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t Gcd(int64_t a, int64_t b) {
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

}  // namespace

Plan MakePlan(bool nhwc, int rank, const int64_t* dims, PlanKind kind, size_t element_bytes) {
  Plan p{};
  const int channel_dim = nhwc ? rank - 1 : 1;
  p.channels = dims[channel_dim];
  int64_t spatial = 1;
  for (int i = 0; i < rank; ++i) {
    if (i != 0 && i != channel_dim) spatial *= dims[i];
  }
  p.count = dims[0] * spatial;
  const bool channels_last = nhwc || spatial == 1;
  // A reduction walks channels first one channel at a time, so that its
  // second pass reads cache; only very short segments make rows pay off, when
  // there are enough rows for the register tiles (kRowBlock rows) to amortise
  // their flushes. An elementwise pass walks segments in memory order
  // (normalize_run) unless they are shorter than kMinRunLength.
  if (kind == PlanKind::kElementwise) {
    p.by_rows = channels_last || spatial < kMinRunLength;
  } else {
    p.by_rows =
        channels_last || (spatial < kMinReductionSpanValues && dims[0] >= kMinRowsForRowsView);
  }
  if (!p.by_rows) {
    p.outer = dims[0];
    p.inner = spatial;
    // At most kMaxChunks partials per channel keeps scratch O(C) for any batch.
    p.segments_per_chunk =
        std::max({int64_t{1}, kChunkValues / p.inner, CeilDiv(p.outer, kMaxChunks)});
    p.chunks_per_channel = CeilDiv(p.outer, p.segments_per_chunk);
    return p;
  }

  const int64_t max_width = static_cast<int64_t>(kMaxRowWidth);
  if (channels_last) {
    const int64_t rows = p.count;
    const int64_t fold = kFoldLanes / Gcd(p.channels, kFoldLanes);
    p.run = 1;
    p.fold = (p.channels <= max_width && p.channels * fold <= max_width && rows >= fold) ? fold : 1;
    p.width = p.channels * p.fold;
    p.rows = rows / p.fold;
    p.tail_width = (rows % p.fold) * p.channels;
  } else {
    p.run = spatial;
    p.fold = 1;
    p.width = p.channels * spatial;
    p.rows = dims[0];
    p.tail_width = 0;
  }
  p.block_width = std::min(p.width, max_width);
  // Few rows of many positions (few samples, many channels): a reduction
  // splits the positions into blocks, which share out over threads without
  // the partial sums that splitting so few rows would take, and sums all rows
  // at once. An elementwise pass shares out rows, and blocks serve it only
  // where a whole row with its parameters (12 bytes a position) would not
  // stay in L1: blocks read rows from memory in pieces, and channels-last
  // (1, 2048, 7, 7) bf16 inference took 0.50-0.63 of the time with whole rows
  // (AMD EPYC, cold), f16 0.62-0.73, while f32, whose rows and parameters
  // (40 KiB) overflow L1, took 0.74-0.90 cold but 1.18-1.37 times as long hot.
  const bool row_stays_in_l1 = p.width * (3 * sizeof(float) + 2 * element_bytes) <= kL1DataBytes;
  const bool few_rows = p.rows < kFewRows && p.width >= 2 * kMinBlockWidth &&
                        (kind == PlanKind::kReduction || !row_stays_in_l1);
  if (few_rows) {
    p.block_width = std::min(
        p.block_width,
        std::max(kMinBlockWidth, CeilDiv(p.width, kMinParallelTasks * kFoldLanes) * kFoldLanes));
  }
  p.num_blocks = CeilDiv(p.width, p.block_width);
  if (few_rows) {
    p.rows_per_chunk = std::max<int64_t>(1, p.rows);
    p.num_chunks = 1;
    return p;
  }
  const int64_t max_chunks = std::clamp<int64_t>(kMaxPartialPositions / p.width, 1, kMaxChunks);
  // At least kMinParallelTasks chunks where there are rows enough; tensors
  // too small for a second thread keep one chunk per kChunkValues.
  const bool split = p.count * p.channels >= kMinSplitValues;
  const int64_t chunk_rows = CeilDiv(kChunkValues, p.width);
  p.rows_per_chunk = std::max(
      {int64_t{1}, split ? std::min(chunk_rows, CeilDiv(p.rows, kMinParallelTasks)) : chunk_rows,
       CeilDiv(p.rows, max_chunks)});
  p.num_chunks = std::max<int64_t>(1, CeilDiv(p.rows, p.rows_per_chunk));
  return p;
}

}  // namespace bnorm
