// The memory-bandwidth roof: the fastest any kernel can move the bytes a batch
// norm call must move. Forward modes read x and write y, so the roof is a copy;
// backward reads x and dy and writes dx, so the roof is a 2-in-1-out add.
// The residual block's forward (x, residual in; y out) has the add's traffic
// too; its backward (x, dy, y in; dx, d_residual out) is a 3-in-2-out pair of
// adds. bf16 and f16 rows move 2-byte elements: their roof is the same copy
// and add on half the bytes.
//
// Two store flavours, both timed; the faster one is the roof:
// - plain stores: best when the data stays in cache (hot, small tensors);
// - streaming (non-temporal) stores: best from DRAM, as they skip the read
//   for ownership of the destination line.
#ifndef BNORM_BENCH_ROOF_H_
#define BNORM_BENCH_ROOF_H_

#include <cstdint>

namespace bnorm_bench {

enum class Store { kPlain, kStreaming };

const char* StoreName(Store store);  // "plain" / "stream"

// The widest vector unit the roof kernels use on this CPU: "avx2" or "sse2".
const char* RoofIsa();

// y = x over n floats, with `threads` OpenMP threads. Pointers 64-byte aligned.
void RoofCopy(const float* x, float* y, int64_t n, int threads, Store store);

// out = a + b over n floats: the traffic of one backward call.
void RoofAdd(const float* a, const float* b, float* out, int64_t n, int threads, Store store);

// out0 = a + b and out1 = b + c over n floats: the traffic of one residual
// backward call.
void RoofAddPair(const float* a, const float* b, const float* c, float* out0, float* out1,
                 int64_t n, int threads, Store store);

// The same traffic for 2-byte elements (bf16, f16): half the bytes of the f32
// kernels for the same element count. y = x over n elements; out = a + b as
// 16-bit integers: the backward call's bytes, with no conversion to float (the
// roof measures traffic, not arithmetic). Pointers 64-byte aligned.
void RoofCopy16(const uint16_t* x, uint16_t* y, int64_t n, int threads, Store store);
void RoofAdd16(const uint16_t* a, const uint16_t* b, uint16_t* out, int64_t n, int threads,
               Store store);

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_ROOF_H_
