#include "buffers.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "half_convert.h"

namespace bnorm_bench {

void FreeDeleter::operator()(void* p) const { std::free(p); }

namespace {

void* AlignedBytes(int64_t count, size_t element_bytes) {
  constexpr size_t kAlign = 64;
  size_t bytes = static_cast<size_t>(count) * element_bytes;
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;  // aligned_alloc wants a multiple
  void* p = std::aligned_alloc(kAlign, std::max<size_t>(bytes, kAlign));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// splitmix64 of (seed, i) to a float in [-1, 1): independent per element, so
// any thread order gives the same data.
float UniformAt(uint64_t seed, int64_t i) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // 24 bits
}

}  // namespace

AlignedFloats AlignedAlloc(int64_t count) {
  return AlignedFloats(static_cast<float*>(AlignedBytes(count, sizeof(float))));
}

AlignedHalves AlignedAllocHalves(int64_t count) {
  return AlignedHalves(static_cast<uint16_t*>(AlignedBytes(count, sizeof(uint16_t))));
}

void FillUniform(float* data, int64_t count, uint64_t seed) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = UniformAt(seed, i);
}

void FillUniformHalf(uint16_t* data, int64_t count, uint64_t seed, DType dtype) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = FloatToHalf(dtype, UniformAt(seed, i));
}

namespace {

// Writes every page of an output buffer, so no row pays for first-touch faults.
// (All-zero bits are +0 in every dtype.)
template <class T>
void FillZero(T* data, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = T{0};
}

void ClampNegativeToZero(float* data, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = data[i] > 0.0f ? data[i] : 0.0f;
}

}  // namespace

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

BufferRing::BufferRing(const LogicalShape& shape, DType dtype, int64_t num_sets)
    : shape_(shape), dtype_(dtype), num_sets_(num_sets), channels_(MakeChannelVectors(shape.c)) {
  const int64_t n = shape.Elements();
  for (int64_t i = 0; i < num_sets; ++i) {
    if (dtype == DType::kF32) {
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
    } else {
      HalfTensorSet s;
      s.x = AlignedAllocHalves(n);
      s.y = AlignedAllocHalves(n);
      s.dy = AlignedAllocHalves(n);
      s.dx = AlignedAllocHalves(n);
      FillUniformHalf(s.x.get(), n, 2 * i + 1, dtype);  // the f32 ring's seeds
      FillUniformHalf(s.dy.get(), n, 2 * i + 2, dtype);
      FillZero(s.y.get(), n);
      FillZero(s.dx.get(), n);
      half_sets_.push_back(std::move(s));
    }
  }
}

void BufferRing::AddResidualTensors() {
  if (dtype_ != DType::kF32) throw std::logic_error("residual tensors exist in f32 rings only");
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

int64_t BufferRing::NextIndex(Policy policy) {
  if (policy == Policy::kHot) return 0;
  const int64_t i = cursor_;
  cursor_ = (cursor_ + 1) % num_sets_;
  return i;
}

int64_t LastLevelCacheBytes() {
  static const int64_t bytes = [] {
    const char* env = std::getenv("BNORM_BENCH_LLC_BYTES");
    int64_t v = env != nullptr ? std::atoll(env) : 0;
    return v > 0 ? v : int64_t{32} << 20;
  }();
  return bytes;
}

bool HotFitsInCache(const LogicalShape& shape, Mode mode, DType dtype) {
  return MinimalBytes(shape, mode, dtype) <= LastLevelCacheBytes();
}

bool ResidualHotFitsInCache(const LogicalShape& shape, Mode mode) {
  return ResidualMinimalBytes(shape, mode) <= LastLevelCacheBytes();
}

BufferRing& RingFor(const LogicalShape& shape, DType dtype) {
  static std::unique_ptr<BufferRing> ring;
  if (ring != nullptr && ring->shape().Name() == shape.Name() && ring->dtype() == dtype) {
    return *ring;
  }
  ring.reset();  // free the previous ring before allocating the next
  // Size by the smallest footprint a call touches (forward: x and y), so that
  // even the forward modes cycle through at least 2 x LLC of data. (Residual
  // rows touch more of each set, so they cycle through more.) A 2-byte ring
  // has twice the sets of the f32 one: the same bytes, not the same sets.
  const int64_t set_bytes = MinimalBytes(shape, Mode::kInference, dtype);
  const int64_t ring_bytes = 2 * LastLevelCacheBytes();
  const int64_t num_sets = std::max<int64_t>(2, (ring_bytes + set_bytes - 1) / set_bytes);
  ring = std::make_unique<BufferRing>(shape, dtype, num_sets);
  return *ring;
}

}  // namespace bnorm_bench
