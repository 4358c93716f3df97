#include "buffers.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

namespace bnorm_bench {

void FreeDeleter::operator()(float* p) const { std::free(p); }

AlignedFloats AlignedAlloc(int64_t count) {
  constexpr size_t kAlign = 64;
  size_t bytes = static_cast<size_t>(count) * sizeof(float);
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;  // aligned_alloc wants a multiple
  void* p = std::aligned_alloc(kAlign, std::max<size_t>(bytes, kAlign));
  if (p == nullptr) throw std::bad_alloc();
  return AlignedFloats(static_cast<float*>(p));
}

void FillUniform(float* data, int64_t count, uint64_t seed) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    // splitmix64 of (seed, i): independent per element, so any thread order
    // gives the same data.
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    data[i] = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // 24 bits
  }
}

namespace {

// Writes every page of an output buffer, so no row pays for first-touch faults.
void FillZero(float* data, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = 0.0f;
}

void ClampNegativeToZero(float* data, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = data[i] > 0.0f ? data[i] : 0.0f;
}

// Statistics matching FillUniform's data: uniform in [-1, 1) has mean 0 and
// variance 1/3. Exact values do not matter for timing, only that they are
// plausible and finite.
ChannelVectors MakeChannelVectors(int64_t c) {
  ChannelVectors v;
  const float var = 1.0f / 3.0f;
  v.mean.assign(c, 0.0f);
  v.var.assign(c, var);
  v.gamma.resize(c);
  v.beta.resize(c);
  for (int64_t i = 0; i < c; ++i) {
    v.gamma[i] = 0.5f + 0.1f * static_cast<float>(i % 7);
    v.beta[i] = -0.2f + 0.05f * static_cast<float>(i % 9);
  }
  v.running_mean.assign(c, 0.0f);
  v.running_var.assign(c, var);
  v.save_mean.assign(c, 0.0f);
  v.save_var.assign(c, var);
  v.save_invstd.assign(c, 1.0f / std::sqrt(var + kEps));
  v.dgamma.assign(c, 0.0f);
  v.dbeta.assign(c, 0.0f);
  return v;
}

}  // namespace

BufferRing::BufferRing(const LogicalShape& shape, int64_t num_sets)
    : shape_(shape), channels_(MakeChannelVectors(shape.c)) {
  const int64_t n = shape.Elements();
  sets_.reserve(num_sets);
  for (int64_t i = 0; i < num_sets; ++i) {
    TensorSet s;
    s.x = AlignedAlloc(n);
    s.y = AlignedAlloc(n);
    s.dy = AlignedAlloc(n);
    s.dx = AlignedAlloc(n);
    FillUniform(s.x.get(), n, 2 * i + 1);
    FillUniform(s.dy.get(), n, 2 * i + 2);
    FillZero(s.y.get(), n);
    FillZero(s.dx.get(), n);
    sets_.push_back(std::move(s));
  }
}

void BufferRing::AddResidualTensors() {
  const int64_t n = shape_.Elements();
  const int64_t sets = num_sets();
  for (int64_t i = 0; i < sets; ++i) {
    TensorSet& s = sets_[i];
    if (s.residual != nullptr) continue;
    s.residual = AlignedAlloc(n);
    s.y_relu = AlignedAlloc(n);
    s.d_residual = AlignedAlloc(n);
    // Seeds after those of x and dy (2i+1, 2i+2 for i < sets).
    FillUniform(s.residual.get(), n, 2 * (sets + i) + 1);
    FillUniform(s.y_relu.get(), n, 2 * (sets + i) + 2);
    ClampNegativeToZero(s.y_relu.get(), n);  // a ReLU output: about half zeros
    FillZero(s.d_residual.get(), n);
  }
}

TensorSet& BufferRing::Next(Policy policy) {
  if (policy == Policy::kHot) return sets_[0];
  TensorSet& s = sets_[cursor_];
  cursor_ = (cursor_ + 1) % num_sets();
  return s;
}

int64_t LastLevelCacheBytes() {
  static const int64_t bytes = [] {
    const char* env = std::getenv("BNORM_BENCH_LLC_BYTES");
    int64_t v = env != nullptr ? std::atoll(env) : 0;
    return v > 0 ? v : int64_t{32} << 20;
  }();
  return bytes;
}

bool HotFitsInCache(const LogicalShape& shape, Mode mode) {
  return MinimalBytes(shape, mode) <= LastLevelCacheBytes();
}

bool ResidualHotFitsInCache(const LogicalShape& shape, Mode mode) {
  return ResidualMinimalBytes(shape, mode) <= LastLevelCacheBytes();
}

BufferRing& RingFor(const LogicalShape& shape) {
  static std::unique_ptr<BufferRing> ring;
  if (ring != nullptr && ring->shape().Name() == shape.Name()) return *ring;
  ring.reset();  // free the previous shape's ring before allocating the next
  // Size by the smallest footprint a call touches (forward: x and y), so that
  // even the forward modes cycle through at least 2 x LLC of data. (Residual
  // rows touch more of each set, so they cycle through more.)
  const int64_t set_bytes = MinimalBytes(shape, Mode::kInference);
  const int64_t ring_bytes = 2 * LastLevelCacheBytes();
  const int64_t num_sets = std::max<int64_t>(2, (ring_bytes + set_bytes - 1) / set_bytes);
  ring = std::make_unique<BufferRing>(shape, num_sets);
  return *ring;
}

}  // namespace bnorm_bench
