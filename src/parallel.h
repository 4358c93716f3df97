// The OpenMP side of the drivers: how many threads a call is worth, and a
// parallel region that costs nothing when one thread will do.
#ifndef BNORM_SRC_PARALLEL_H_
#define BNORM_SRC_PARALLEL_H_

#include <omp.h>
#include <stdint.h>
#include <unistd.h>

#include <algorithm>

#include "hwy/cache_control.h"

namespace bnorm {

// Below this much memory traffic per thread, waking another thread costs more
// than it saves. Measured on (4, 32, 17, 17) channels-last: from DRAM, two
// threads keep twice the misses in flight and pay off from here on; tensors
// under 64 KiB stay on one thread.
constexpr double kMinBytesPerThread = 64 * 1024;

// Threads for a call that moves `bytes`: at most the caller's num_threads
// (0: OpenMP's default), at least 1.
inline int ThreadsFor(int requested, double bytes) {
  const int limit = requested > 0 ? requested : omp_get_max_threads();
  const double useful = bytes / kMinBytesPerThread;
  return useful < 2 ? 1 : static_cast<int>(std::min<double>(limit, useful));
}

// Training and backward write outputs at least this large with non-temporal
// stores: they would not stay in cache beside their inputs, and streaming
// saves reading each destination line before writing it. Measured on the
// 2-vCPU Xeon of bench/RESULTS.md, A/B interleaved: f32 (32, 2048, 7, 7)
// and (4096, 512) (12.8 and 8.4 MB), 1 and 2 threads, cold and hot, took
// 0.56-0.99 of the time of ordinary stores on 25 of 28 rows (1.03-1.11 on
// three), so f32 streams from 4 MiB; at 3.2 MB the rows were mixed
// (0.77-1.35). bf16 outputs of that size streamed took 2.1-3.3 times as long
// in backward ((4096, 512), and (32, 1024, 14, 14) channels-last) and up to
// 1.5 times in training: the benchmark's buffers had put dx a little ahead of
// x or dy modulo 4 KiB, and a streamed store then holds up the loads whose
// addresses alias it (dx 32 bytes ahead: 3.6 times as long, dx in step: no
// slower). Walking those rows downwards (as inference does, WalksDescending)
// removed most of that, but then streaming 16-bit outputs from 4 MiB gained
// nothing over ordinary stores (24 cold channels-last rows, geometric mean
// 1.02), so the 16-bit types stream from 16 MiB, where streaming took
// 0.80-1.06 of the time of ordinary stores.
inline double StreamMinBytes(size_t element_bytes) {
  return element_bytes == 4 ? 4.0 * 1024 * 1024 : 16.0 * 1024 * 1024;
}
// Inference, a single pass, streams from a smaller size. Measured on the
// 2-vCPU Xeon of bench/RESULTS.md (shapes of 3.2 to 12.8 MB, 1 and 2 threads,
// A/B interleaved): streaming took 0.64-0.96 of the time of ordinary stores
// with inputs from memory, and 0.56-1.01 with the same buffers every call,
// except (4096, 512), 1.4-1.7 slower there; at 1 MiB, (256, 1024), it took
// 0.80-0.88 from memory but 1.9-3.3 times longer from cache with two
// threads, whose halves of the pass fit in their L2 caches. One thread's
// whole pass does not: there it took 0.66-0.69 of the time from memory and
// 0.77-0.81 from cache, so inference also streams smaller outputs whose pass
// overflows each thread's L2. On the AMD EPYC of bench/RESULTS.md, outputs
// of 3.2 to 12.8 MB written with ordinary stores took 1.14-1.65 times as long
// from memory and 0.31-0.68 of the time from cache: a trade, so the rule
// stays.
constexpr double kInferenceStreamMinBytes = 2.0 * 1024 * 1024;
// A pass that walks channels-first data one channel at a time writes a
// channel's segments C segments apart, so the line where two channels'
// segments meet is written in two parts at different times, and streamed,
// each part goes to memory on its own. Segments shorter than this are
// written with ordinary stores: streamed, f32 (32, 2048, 7, 7) training with
// a residual (196-byte segments) took twice as long, and bf16 (98 bytes)
// 4.6-6.7 times; f32 (32, 1024, 14, 14) (784 bytes) took 0.6-0.85 of the
// time of ordinary stores.
constexpr int64_t kMinStreamedSegmentBytes = 512;

// The per-core L2 size, read once (512 KiB where the system does not say).
inline double L2CacheBytes() {
  static const double bytes = [] {
    const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return reported > 0 ? static_cast<double>(reported) : 512.0 * 1024;
  }();
  return bytes;
}

// Orders this thread's non-temporal stores before anything after it (the end
// of the parallel region, another thread's reads).
inline void FlushStreams() { hwy::FlushStream(); }

// Runs body(thread, num_threads) on a team of up to num_threads threads; the
// body may use `#pragma omp barrier`. One thread runs inline.
template <class Body>
void RunParallel(int num_threads, const Body& body) {
  if (num_threads <= 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(num_threads)
  body(omp_get_thread_num(), omp_get_num_threads());
}

// The contiguous share [begin, end) of n items that thread t of nt takes.
struct Range {
  int64_t begin;
  int64_t end;
};
inline Range ShareOf(int64_t n, int t, int nt) {
  const int64_t base = n / nt, extra = n % nt;
  const int64_t begin = base * t + std::min<int64_t>(t, extra);
  return Range{begin, begin + base + (t < extra ? 1 : 0)};
}

}  // namespace bnorm

#endif  // BNORM_SRC_PARALLEL_H_
