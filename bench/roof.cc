#include "roof.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>

namespace bnorm_bench {
namespace {

// Intrinsics rather than plain loops: the compiler turns a copy loop into a
// memcpy call, and glibc's memcpy picks streaming stores by its own size
// threshold, which would blur the plain/streaming distinction.
// Each kernel handles one thread's chunk, which starts 64-byte aligned.

__attribute__((target("avx2"))) void CopyAvx2(const float* x, float* y, int64_t n, Store store) {
  int64_t i = 0;
  if (store == Store::kStreaming) {
    for (; i + 32 <= n; i += 32) {
      for (int k = 0; k < 32; k += 8) _mm256_stream_ps(y + i + k, _mm256_load_ps(x + i + k));
    }
    _mm_sfence();  // streaming stores are weakly ordered
  } else {
    for (; i + 32 <= n; i += 32) {
      for (int k = 0; k < 32; k += 8) _mm256_store_ps(y + i + k, _mm256_load_ps(x + i + k));
    }
  }
  for (; i < n; ++i) y[i] = x[i];
}

__attribute__((target("avx2"))) void AddAvx2(const float* a, const float* b, float* out, int64_t n,
                                             Store store) {
  int64_t i = 0;
  if (store == Store::kStreaming) {
    for (; i + 32 <= n; i += 32) {
      for (int k = 0; k < 32; k += 8) {
        _mm256_stream_ps(out + i + k,
                         _mm256_add_ps(_mm256_load_ps(a + i + k), _mm256_load_ps(b + i + k)));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) {
      for (int k = 0; k < 32; k += 8) {
        _mm256_store_ps(out + i + k,
                        _mm256_add_ps(_mm256_load_ps(a + i + k), _mm256_load_ps(b + i + k)));
      }
    }
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

__attribute__((target("avx2"))) void AddPairAvx2(const float* a, const float* b, const float* c,
                                                 float* out0, float* out1, int64_t n, Store store) {
  int64_t i = 0;
  if (store == Store::kStreaming) {
    for (; i + 32 <= n; i += 32) {
      for (int k = 0; k < 32; k += 8) {
        const __m256 vb = _mm256_load_ps(b + i + k);
        _mm256_stream_ps(out0 + i + k, _mm256_add_ps(_mm256_load_ps(a + i + k), vb));
        _mm256_stream_ps(out1 + i + k, _mm256_add_ps(vb, _mm256_load_ps(c + i + k)));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) {
      for (int k = 0; k < 32; k += 8) {
        const __m256 vb = _mm256_load_ps(b + i + k);
        _mm256_store_ps(out0 + i + k, _mm256_add_ps(_mm256_load_ps(a + i + k), vb));
        _mm256_store_ps(out1 + i + k, _mm256_add_ps(vb, _mm256_load_ps(c + i + k)));
      }
    }
  }
  for (; i < n; ++i) {
    out0[i] = a[i] + b[i];
    out1[i] = b[i] + c[i];
  }
}

void CopySse2(const float* x, float* y, int64_t n, Store store) {
  int64_t i = 0;
  if (store == Store::kStreaming) {
    for (; i + 16 <= n; i += 16) {
      for (int k = 0; k < 16; k += 4) _mm_stream_ps(y + i + k, _mm_load_ps(x + i + k));
    }
    _mm_sfence();
  } else {
    for (; i + 16 <= n; i += 16) {
      for (int k = 0; k < 16; k += 4) _mm_store_ps(y + i + k, _mm_load_ps(x + i + k));
    }
  }
  for (; i < n; ++i) y[i] = x[i];
}

void AddSse2(const float* a, const float* b, float* out, int64_t n, Store store) {
  int64_t i = 0;
  if (store == Store::kStreaming) {
    for (; i + 16 <= n; i += 16) {
      for (int k = 0; k < 16; k += 4) {
        _mm_stream_ps(out + i + k, _mm_add_ps(_mm_load_ps(a + i + k), _mm_load_ps(b + i + k)));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 16 <= n; i += 16) {
      for (int k = 0; k < 16; k += 4) {
        _mm_store_ps(out + i + k, _mm_add_ps(_mm_load_ps(a + i + k), _mm_load_ps(b + i + k)));
      }
    }
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

void AddPairSse2(const float* a, const float* b, const float* c, float* out0, float* out1,
                 int64_t n, Store store) {
  int64_t i = 0;
  if (store == Store::kStreaming) {
    for (; i + 16 <= n; i += 16) {
      for (int k = 0; k < 16; k += 4) {
        const __m128 vb = _mm_load_ps(b + i + k);
        _mm_stream_ps(out0 + i + k, _mm_add_ps(_mm_load_ps(a + i + k), vb));
        _mm_stream_ps(out1 + i + k, _mm_add_ps(vb, _mm_load_ps(c + i + k)));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 16 <= n; i += 16) {
      for (int k = 0; k < 16; k += 4) {
        const __m128 vb = _mm_load_ps(b + i + k);
        _mm_store_ps(out0 + i + k, _mm_add_ps(_mm_load_ps(a + i + k), vb));
        _mm_store_ps(out1 + i + k, _mm_add_ps(vb, _mm_load_ps(c + i + k)));
      }
    }
  }
  for (; i < n; ++i) {
    out0[i] = a[i] + b[i];
    out1[i] = b[i] + c[i];
  }
}

// 16-bit kernels: the loops above on integer vectors, the same bytes per step.
__attribute__((target("avx2"))) void Copy16Avx2(const uint16_t* x, uint16_t* y, int64_t n,
                                                Store store) {
  int64_t i = 0;
  const auto* src = reinterpret_cast<const __m256i*>(x);
  auto* dst = reinterpret_cast<__m256i*>(y);
  if (store == Store::kStreaming) {
    for (; i + 64 <= n; i += 64) {
      for (int64_t k = i / 16; k < i / 16 + 4; ++k) {
        _mm256_stream_si256(dst + k, _mm256_load_si256(src + k));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 64 <= n; i += 64) {
      for (int64_t k = i / 16; k < i / 16 + 4; ++k) {
        _mm256_store_si256(dst + k, _mm256_load_si256(src + k));
      }
    }
  }
  for (; i < n; ++i) y[i] = x[i];
}

__attribute__((target("avx2"))) void Add16Avx2(const uint16_t* a, const uint16_t* b, uint16_t* out,
                                               int64_t n, Store store) {
  int64_t i = 0;
  const auto* va = reinterpret_cast<const __m256i*>(a);
  const auto* vb = reinterpret_cast<const __m256i*>(b);
  auto* vo = reinterpret_cast<__m256i*>(out);
  if (store == Store::kStreaming) {
    for (; i + 64 <= n; i += 64) {
      for (int64_t k = i / 16; k < i / 16 + 4; ++k) {
        _mm256_stream_si256(vo + k,
                            _mm256_add_epi16(_mm256_load_si256(va + k), _mm256_load_si256(vb + k)));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 64 <= n; i += 64) {
      for (int64_t k = i / 16; k < i / 16 + 4; ++k) {
        _mm256_store_si256(vo + k,
                           _mm256_add_epi16(_mm256_load_si256(va + k), _mm256_load_si256(vb + k)));
      }
    }
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(a[i] + b[i]);
}

void Copy16Sse2(const uint16_t* x, uint16_t* y, int64_t n, Store store) {
  int64_t i = 0;
  const auto* src = reinterpret_cast<const __m128i*>(x);
  auto* dst = reinterpret_cast<__m128i*>(y);
  if (store == Store::kStreaming) {
    for (; i + 32 <= n; i += 32) {
      for (int64_t k = i / 8; k < i / 8 + 4; ++k)
        _mm_stream_si128(dst + k, _mm_load_si128(src + k));
    }
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) {
      for (int64_t k = i / 8; k < i / 8 + 4; ++k) _mm_store_si128(dst + k, _mm_load_si128(src + k));
    }
  }
  for (; i < n; ++i) y[i] = x[i];
}

void Add16Sse2(const uint16_t* a, const uint16_t* b, uint16_t* out, int64_t n, Store store) {
  int64_t i = 0;
  const auto* va = reinterpret_cast<const __m128i*>(a);
  const auto* vb = reinterpret_cast<const __m128i*>(b);
  auto* vo = reinterpret_cast<__m128i*>(out);
  if (store == Store::kStreaming) {
    for (; i + 32 <= n; i += 32) {
      for (int64_t k = i / 8; k < i / 8 + 4; ++k) {
        _mm_stream_si128(vo + k, _mm_add_epi16(_mm_load_si128(va + k), _mm_load_si128(vb + k)));
      }
    }
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) {
      for (int64_t k = i / 8; k < i / 8 + 4; ++k) {
        _mm_store_si128(vo + k, _mm_add_epi16(_mm_load_si128(va + k), _mm_load_si128(vb + k)));
      }
    }
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(a[i] + b[i]);
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Thread t's share of n elements, split on 64-byte boundaries (16 floats, 32
// 2-byte elements) so every chunk starts aligned.
void ThreadChunk(int64_t n, int64_t* begin, int64_t* end, int64_t per_line = 16) {
  const int64_t lines = (n + per_line - 1) / per_line;
  const int t = omp_get_thread_num(), nt = omp_get_num_threads();
  *begin = std::min(n, lines * t / nt * per_line);
  *end = std::min(n, lines * (t + 1) / nt * per_line);
}

}  // namespace

const char* StoreName(Store store) { return store == Store::kPlain ? "plain" : "stream"; }

const char* RoofIsa() { return HasAvx2() ? "avx2" : "sse2"; }

void RoofCopy(const float* x, float* y, int64_t n, int threads, Store store) {
  const bool avx2 = HasAvx2();
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, end;
    ThreadChunk(n, &begin, &end);
    if (avx2) {
      CopyAvx2(x + begin, y + begin, end - begin, store);
    } else {
      CopySse2(x + begin, y + begin, end - begin, store);
    }
  }
}

void RoofAdd(const float* a, const float* b, float* out, int64_t n, int threads, Store store) {
  const bool avx2 = HasAvx2();
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, end;
    ThreadChunk(n, &begin, &end);
    if (avx2) {
      AddAvx2(a + begin, b + begin, out + begin, end - begin, store);
    } else {
      AddSse2(a + begin, b + begin, out + begin, end - begin, store);
    }
  }
}

void RoofAddPair(const float* a, const float* b, const float* c, float* out0, float* out1,
                 int64_t n, int threads, Store store) {
  const bool avx2 = HasAvx2();
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, end;
    ThreadChunk(n, &begin, &end);
    if (avx2) {
      AddPairAvx2(a + begin, b + begin, c + begin, out0 + begin, out1 + begin, end - begin, store);
    } else {
      AddPairSse2(a + begin, b + begin, c + begin, out0 + begin, out1 + begin, end - begin, store);
    }
  }
}

void RoofCopy16(const uint16_t* x, uint16_t* y, int64_t n, int threads, Store store) {
  const bool avx2 = HasAvx2();
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, end;
    ThreadChunk(n, &begin, &end, 32);
    if (avx2) {
      Copy16Avx2(x + begin, y + begin, end - begin, store);
    } else {
      Copy16Sse2(x + begin, y + begin, end - begin, store);
    }
  }
}

void RoofAdd16(const uint16_t* a, const uint16_t* b, uint16_t* out, int64_t n, int threads,
               Store store) {
  const bool avx2 = HasAvx2();
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, end;
    ThreadChunk(n, &begin, &end, 32);
    if (avx2) {
      Add16Avx2(a + begin, b + begin, out + begin, end - begin, store);
    } else {
      Add16Sse2(a + begin, b + begin, out + begin, end - begin, store);
    }
  }
}

}  // namespace bnorm_bench
