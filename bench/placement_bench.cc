// bnorm's time against where its output lies relative to its inputs, modulo
// 4 KiB: <dtype>/<layout>/<mode>/out+<bytes>, the output (y, or dx) that many bytes
// ahead of x and dy modulo a page (4064: 32 bytes behind). A load whose
// address matches an earlier store's in the low 12 bits waits for that store
// ("4K aliasing"), so an output slightly ahead of an input can slow a loop
// many times over; allocators place tensors that way often enough (glibc's
// heap gives 16-byte alignment). Compare each row with out+0 of the same
// dtype, layout and mode. (32, 2048, 7, 7), the same buffers every
// iteration, 1 thread. Run with --benchmark_enable_random_interleaving=true
// and repetitions, so that the rows compared share the machine's drift.
// Where oneDNN is found, onednn/... rows run its primitive on the same
// placements.
#include <benchmark/benchmark.h>
#include <bnorm/bnorm.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#ifdef BNORM_BENCH_HAVE_DNNL
#include "onednn_peer.h"
#endif

namespace {

constexpr int64_t kPage = 4096;
constexpr int64_t kDims[4] = {32, 2048, 7, 7};
constexpr int64_t kChannels = kDims[1];
constexpr int64_t kElements = kDims[0] * kDims[1] * kDims[2] * kDims[3];

enum class Mode { kInfer, kTrain, kBwd };

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

// Three page-aligned regions (x, dy, output), each with a spare page; the
// output starts `offset` bytes into its region.
class Tensors {
 public:
  Tensors(bnorm_dtype dtype, int64_t offset)
      : bytes_(kElements * (dtype == BNORM_DTYPE_F32 ? 4 : 2)),
        region_((bytes_ + 2 * kPage - 1) / kPage * kPage),
        memory_(static_cast<uint8_t*>(std::aligned_alloc(kPage, 3 * region_))) {
    Fill(dtype, x(), 1);
    Fill(dtype, dy(), 2);
    out_ = memory_.get() + 2 * region_ + offset;
    std::memset(out_, 0, bytes_);
  }
  uint8_t* x() { return memory_.get(); }
  uint8_t* dy() { return memory_.get() + region_; }
  uint8_t* out() { return out_; }
  int64_t bytes() const { return bytes_; }

 private:
  // Values of magnitude 1/8 to 2, either sign, in the dtype's bits.
  void Fill(bnorm_dtype dtype, uint8_t* p, uint32_t seed) {
    std::mt19937 random(seed);
    std::uniform_real_distribution<float> value(0.125f, 2.0f);
    for (int64_t i = 0; i < kElements; ++i) {
      const float v = (random() & 1) ? value(random) : -value(random);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      if (dtype == BNORM_DTYPE_F32) {
        std::memcpy(p + 4 * i, &v, 4);
      } else if (dtype == BNORM_DTYPE_BF16) {
        const uint16_t upper = static_cast<uint16_t>(bits >> 16);  // a nearby bf16 value
        std::memcpy(p + 2 * i, &upper, 2);
      } else {
        // Rebias the exponent, keep 10 mantissa bits: a nearby f16 value.
        const uint32_t exponent = ((bits >> 23) & 0xFF) - 127 + 15;
        const uint16_t half = static_cast<uint16_t>(((bits >> 16) & 0x8000) | (exponent << 10) |
                                                    ((bits >> 13) & 0x3FF));
        std::memcpy(p + 2 * i, &half, 2);
      }
    }
  }

  int64_t bytes_, region_;
  std::unique_ptr<uint8_t, FreeDeleter> memory_;
  uint8_t* out_;
};

void Run(benchmark::State& state, bnorm_dtype dtype, bnorm_layout layout, Mode mode,
         int64_t offset) {
  Tensors t(dtype, offset);
  bnorm_desc d;
  bnorm_desc_init(&d, kChannels);
  d.dtype = dtype;
  d.layout = layout;
  d.num_threads = 1;
  const bnorm_shape shape = layout == BNORM_LAYOUT_NCHW
                                ? bnorm_shape{4, {kDims[0], kDims[1], kDims[2], kDims[3]}}
                                : bnorm_shape{4, {kDims[0], kDims[2], kDims[3], kDims[1]}};
  std::vector<float> mean(kChannels, 0.1f), var(kChannels, 0.9f), gamma(kChannels, 1.5f),
      beta(kChannels, -0.25f), running_mean(kChannels, 0.0f), running_var(kChannels, 1.0f),
      save_mean(kChannels), save_invstd(kChannels), dgamma(kChannels), dbeta(kChannels);
  // Backward takes the statistics a training forward wrote.
  bnorm_forward_training(&d, &shape, t.x(), t.out(), gamma.data(), beta.data(), running_mean.data(),
                         running_var.data(), save_mean.data(), save_invstd.data());
  for (auto _ : state) {
    bnorm_status status = BNORM_OK;
    switch (mode) {
      case Mode::kInfer:
        status = bnorm_forward_inference(&d, &shape, t.x(), t.out(), mean.data(), var.data(),
                                         gamma.data(), beta.data());
        break;
      case Mode::kTrain:
        status = bnorm_forward_training(&d, &shape, t.x(), t.out(), gamma.data(), beta.data(),
                                        running_mean.data(), running_var.data(), save_mean.data(),
                                        save_invstd.data());
        break;
      case Mode::kBwd:
        status = bnorm_backward(&d, &shape, t.x(), t.dy(), nullptr, gamma.data(), save_mean.data(),
                                save_invstd.data(), t.out(), dgamma.data(), dbeta.data());
        break;
    }
    if (status != BNORM_OK) {
      state.SkipWithError(bnorm_last_error());
      break;
    }
  }
  const int64_t moved = (mode == Mode::kBwd ? 3 : 2) * t.bytes();
  state.SetBytesProcessed(state.iterations() * moved);
}

#ifdef BNORM_BENCH_HAVE_DNNL
// oneDNN's batch_normalization primitive, created outside the timed loop, on
// tensors placed as bnorm's.
void RunOneDnn(benchmark::State& state, bnorm_dtype dtype, bnorm_layout layout, Mode mode,
               int64_t offset) {
  namespace bb = bnorm_bench;
  const bb::LogicalShape shape{kDims[0], kDims[1], kDims[2], kDims[3], 4};
  const bb::DType peer_dtype = dtype == BNORM_DTYPE_F32    ? bb::DType::kF32
                               : dtype == BNORM_DTYPE_BF16 ? bb::DType::kBF16
                                                           : bb::DType::kF16;
  const bb::Mode peer_mode = mode == Mode::kInfer   ? bb::Mode::kInference
                             : mode == Mode::kTrain ? bb::Mode::kTraining
                                                    : bb::Mode::kBackward;
  std::unique_ptr<bb::OneDnnBatchNorm> peer;
  try {
    peer = std::make_unique<bb::OneDnnBatchNorm>(
        shape, layout == BNORM_LAYOUT_NCHW ? bb::Layout::kNCHW : bb::Layout::kNHWC, peer_mode,
        1e-5f, peer_dtype);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  Tensors t(dtype, offset);
  bb::ChannelVectors ch;
  for (auto* v : {&ch.mean, &ch.save_mean, &ch.beta, &ch.dgamma, &ch.dbeta}) {
    v->assign(kChannels, 0.1f);
  }
  for (auto* v : {&ch.var, &ch.save_var, &ch.gamma}) v->assign(kChannels, 0.9f);
  const bool backward = mode == Mode::kBwd;
  for (auto _ : state) {
    peer->RunOn(t.x(), backward ? nullptr : t.out(), backward ? t.dy() : nullptr,
                backward ? t.out() : nullptr, ch, 1);
  }
  state.SetLabel(peer->ImplName());
  const int64_t moved = (backward ? 3 : 2) * t.bytes();
  state.SetBytesProcessed(state.iterations() * moved);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::pair<bnorm_dtype, const char*> dtypes[] = {
      {BNORM_DTYPE_F32, "f32"}, {BNORM_DTYPE_BF16, "bf16"}, {BNORM_DTYPE_F16, "f16"}};
  const std::pair<Mode, const char*> modes[] = {
      {Mode::kInfer, "infer"}, {Mode::kTrain, "train"}, {Mode::kBwd, "bwd"}};
  const std::pair<bnorm_layout, const char*> layouts[] = {{BNORM_LAYOUT_NCHW, "nchw"},
                                                          {BNORM_LAYOUT_NHWC, "nhwc"}};
  for (const auto& [dtype, dtype_name] : dtypes) {
    for (const auto& [layout, layout_name] : layouts) {
      for (const auto& [mode, mode_name] : modes) {
        for (int64_t offset : {0, 32, 64, 128, 256, 512, 4064}) {
          const std::string name = std::string(dtype_name) + "/" + layout_name + "/" + mode_name +
                                   "/out+" + std::to_string(offset);
          benchmark::RegisterBenchmark(name.c_str(), Run, dtype, layout, mode, offset)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
#ifdef BNORM_BENCH_HAVE_DNNL
          benchmark::RegisterBenchmark(("onednn/" + name).c_str(), RunOneDnn, dtype, layout, mode,
                                       offset)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
#endif
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
