// Tensors of 2^31 values and more are indexed with 64-bit arithmetic. Running
// such a tensor takes 8 GiB a buffer (large_tensor_test does, when asked);
// this test checks, on the same shapes without their data, that the walk
// every kernel follows covers each element exactly once and finds each
// position's channel, far past 2^31 and 2^32.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/plan.h"

namespace bnorm {
namespace {

struct LargeShape {
  bool nhwc;
  std::vector<int64_t> dims;  // memory order
};

int64_t Total(const LargeShape& s) {
  int64_t total = 1;
  for (int64_t d : s.dims) total *= d;
  return total;
}

std::string Describe(const LargeShape& s, PlanKind kind) {
  std::string text = s.nhwc ? "NHWC (" : "NCHW (";
  for (size_t i = 0; i < s.dims.size(); ++i) text += (i ? "," : "") + std::to_string(s.dims[i]);
  return text + (kind == PlanKind::kReduction ? ") reduction" : ") elementwise");
}

const std::vector<LargeShape> kShapes = {
    {false, {3, 1, (int64_t{1} << 31) + 5}},  // spans, C = 1
    {false, {5, 3, int64_t{1} << 29, 3}},     // spans past 2^32
    {false, {(int64_t{1} << 31) + 7, 3}},     // BatchNorm1d: rows
    {false, {(int64_t{1} << 28) + 1, 3, 5}},  // short segments: rows
    {true, {(int64_t{1} << 31) + 3, 1}},      // channels last, C = 1
    {true, {(int64_t{1} << 30) + 1, 4, 3}},   // folded rows
    {true, {2, int64_t{1} << 20, (int64_t{1} << 11) + 1, 3}},
    {true, {1, 1024, 1024, 2049, 1}},  // rank 5, C = 1
};

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

TEST(PlanIndexingTest, WalkCoversLargeTensorsExactly) {
  for (const LargeShape& s : kShapes) {
    for (PlanKind kind : {PlanKind::kElementwise, PlanKind::kReduction}) {
      SCOPED_TRACE(Describe(s, kind));
      const int rank = static_cast<int>(s.dims.size());
      const Plan p = MakePlan(s.nhwc, rank, s.dims.data(), kind, sizeof(float));
      const int64_t total = Total(s);
      ASSERT_GT(total, int64_t{1} << 31);
      const int64_t channels = s.dims[s.nhwc ? rank - 1 : 1];
      EXPECT_EQ(p.channels, channels);
      EXPECT_EQ(p.count * p.channels, total);
      if (!p.by_rows) {
        EXPECT_EQ(p.outer * p.channels * p.inner, total);
        EXPECT_EQ(p.chunks_per_channel, CeilDiv(p.outer, p.segments_per_chunk));
        // The last value of the last channel, as the span kernels address it.
        const int64_t last =
            (p.outer - 1) * (p.channels * p.inner) + (p.channels - 1) * p.inner + (p.inner - 1);
        EXPECT_EQ(last, total - 1);
        continue;
      }
      EXPECT_EQ(p.rows * p.width + p.tail_width, total);
      EXPECT_GE(p.num_blocks * p.block_width, p.width);
      EXPECT_LT((p.num_blocks - 1) * p.block_width, p.width);
      EXPECT_GE(p.num_chunks * p.rows_per_chunk, p.rows);
      EXPECT_LT((p.num_chunks - 1) * p.rows_per_chunk, p.rows);
      // Channels of the positions at the very end of the tensor, found by
      // walking runs as the drivers do, against a division per position.
      const int64_t row_positions = p.width;
      const int64_t begin = row_positions > 64 ? row_positions - 64 : 0;
      ForEachPosition(p, begin, row_positions - begin, [&](int64_t i, int64_t c) {
        ASSERT_EQ(c, ((begin + i) / p.run) % p.channels) << "position " << begin + i;
      });
      // The first element of the last row and the tail, as offsets.
      const int64_t last_row = (p.rows - 1) * p.width;
      EXPECT_EQ(last_row + p.width + p.tail_width, total);
      EXPECT_GT(last_row, int64_t{1} << 30);
    }
  }
}

}  // namespace
}  // namespace bnorm
