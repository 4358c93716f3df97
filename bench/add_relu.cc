#include "add_relu.h"

#include <omp.h>

#include <algorithm>

namespace bnorm_bench {
namespace {

// Plain loops; the compiler vectorizes them, once per target: the bench is
// built for baseline x86-64 (SSE2), while bnorm dispatches to the CPU's best
// SIMD target, so let these pick theirs at run time as well (GCC ifunc).
#define BNORM_BENCH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

BNORM_BENCH_CLONES void AddReluSpan(float* __restrict y, const float* __restrict residual,
                                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = y[i] + residual[i];
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

BNORM_BENCH_CLONES void ReluBackwardSpan(const float* __restrict dy, const float* __restrict y,
                                         float* __restrict g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float d = dy[i];  // read unconditionally, so no masked loads are needed
    g[i] = y[i] > 0.0f ? d : 0.0f;
  }
}

// Runs span(begin, count) on `threads` threads, each on one contiguous chunk
// that starts on a 64-byte (16-float) boundary, as omp for schedule(static)
// would, but with the span function called once per thread (the clones are
// chosen per call, and the outlined parallel body is not cloned itself).
template <class Span>
void Parallel(int64_t n, int threads, Span span) {
#pragma omp parallel num_threads(threads)
  {
    const int64_t lines = (n + 15) / 16;
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = std::min(n, lines * t / nt * 16);
    const int64_t end = std::min(n, lines * (t + 1) / nt * 16);
    if (end > begin) span(begin, end - begin);
  }
}

}  // namespace

void AddReluInPlace(float* y, const float* residual, int64_t n, int threads) {
  Parallel(n, threads, [&](int64_t i, int64_t count) { AddReluSpan(y + i, residual + i, count); });
}

void ReluBackward(const float* dy, const float* y, float* g, int64_t n, int threads) {
  Parallel(n, threads,
           [&](int64_t i, int64_t count) { ReluBackwardSpan(dy + i, y + i, g + i, count); });
}

}  // namespace bnorm_bench
