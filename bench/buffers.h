// Buffers the benchmark rows run on, and the cold/hot data policy.
//
// Cold: a ring of buffer sets whose total exceeds the last-level cache
// several times over; each iteration takes the next set, so its data comes
// from DRAM, as it does between layers of a real network.
// Hot: the same set every iteration, so data that fits stays in cache.
//
// Every row of one shape (bnorm and its peers) runs on the same ring, so they
// see the same pages, alignment and cache state.
#ifndef BNORM_BENCH_BUFFERS_H_
#define BNORM_BENCH_BUFFERS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "shapes.h"

namespace bnorm_bench {

// Frees memory from AlignedAlloc / AlignedAllocHalves.
struct FreeDeleter {
  void operator()(void* p) const;
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;
// 2-byte elements: bf16 or f16 bits, as the ring's dtype says.
using AlignedHalves = std::unique_ptr<uint16_t[], FreeDeleter>;
// 64-byte aligned (a cache line; also what streaming stores need), uninitialised.
AlignedFloats AlignedAlloc(int64_t count);
AlignedHalves AlignedAllocHalves(int64_t count);

// One iteration's tensors, each Elements() floats. Forward reads x and writes
// y; backward reads x and dy and writes dx.
// The residual block's rows also use residual (forward input), y_relu (the
// backward's y input: a block output, about half zeros) and d_residual
// (backward output). Those three are null until BufferRing::AddResidualTensors
// allocates them, just before the first residual row runs, so the other rows
// run on exactly the allocations they had before residual rows existed.
struct TensorSet {
  AlignedFloats x, y, dy, dx;
  AlignedFloats residual, y_relu, d_residual;
};

// The same tensors in bf16 or f16 (the batch-norm rows only, no residual
// block): x and dy hold the f32 rings' values rounded to the dtype.
struct HalfTensorSet {
  AlignedHalves x, y, dy, dx;
};

// Per-channel float[C] vectors, shared by all sets of a ring: they are tiny
// and stay in cache in real use too.
struct ChannelVectors {
  std::vector<float> mean, var;  // inference statistics (running stats of a trained layer)
  std::vector<float> gamma, beta;
  std::vector<float> running_mean, running_var;         // updated by bnorm's training forward
  std::vector<float> save_mean, save_var, save_invstd;  // training outputs / backward inputs
  std::vector<float> dgamma, dbeta;
};

// Per-channel vectors for c channels, with statistics matching FillUniform's
// data (uniform in [-1, 1)).
ChannelVectors MakeChannelVectors(int64_t c);

// The epsilon every implementation is given.
constexpr float kEps = 1e-5f;

// A ring of one dtype: f32 rings hold TensorSets (set, Next), bf16 and f16
// rings HalfTensorSets (half_set, NextHalf).
class BufferRing {
 public:
  BufferRing(const LogicalShape& shape, DType dtype, int64_t num_sets);

  const LogicalShape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t num_sets() const { return num_sets_; }
  TensorSet& set(int64_t i) { return sets_[i]; }
  HalfTensorSet& half_set(int64_t i) { return half_sets_[i]; }
  ChannelVectors& channels() { return channels_; }

  // The set the next iteration uses. Cold: cycles through the ring, and keeps
  // cycling across benchmark runs, so a run never starts on a set that the
  // previous run left in cache. Hot: always set 0.
  TensorSet& Next(Policy policy) { return sets_[NextIndex(policy)]; }
  HalfTensorSet& NextHalf(Policy policy) { return half_sets_[NextIndex(policy)]; }

  // Allocates and fills every set's residual, y_relu and d_residual, once
  // (f32 rings). Call it outside timed loops (it touches every page).
  void AddResidualTensors();

 private:
  int64_t NextIndex(Policy policy);

  LogicalShape shape_;
  DType dtype_;
  int64_t num_sets_;
  std::vector<TensorSet> sets_;           // f32
  std::vector<HalfTensorSet> half_sets_;  // bf16, f16
  ChannelVectors channels_;
  int64_t cursor_ = 0;
};

// Bytes of last-level cache the cold policy must defeat: 32 MiB, or env
// BNORM_BENCH_LLC_BYTES. (Not sysconf: in this VM it reports the host's 256 MiB.)
int64_t LastLevelCacheBytes();

// True when the hot policy means something for this shape and mode: the data
// a call touches fits in the LLC. Otherwise hot is the same as cold.
bool HotFitsInCache(const LogicalShape& shape, Mode mode, DType dtype = DType::kF32);
// The same for the residual block's minimal traffic (ResidualMinimalBytes).
bool ResidualHotFitsInCache(const LogicalShape& shape, Mode mode);

// The ring for `shape` in `dtype`, sized for the cold policy (at least 2 x LLC
// for the forward modes' footprint in that dtype, at least 2 sets). Only the
// most recent (shape, dtype)'s ring is kept, so register rows shape by shape
// and, within a shape, dtype by dtype.
BufferRing& RingFor(const LogicalShape& shape, DType dtype = DType::kF32);

// Deterministic pseudo-random floats in [-1, 1), cheap enough to fill
// gigabytes: index-hashed, so the fill can run in parallel.
void FillUniform(float* data, int64_t count, uint64_t seed);
// The same values rounded to bf16 or f16 (dtype kBF16 or kF16).
void FillUniformHalf(uint16_t* data, int64_t count, uint64_t seed, DType dtype);

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_BUFFERS_H_
