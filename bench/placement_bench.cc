// bnorm's time against where its output lies relative to its inputs, modulo
// 4 KiB: <dtype>/<layout>/<mode>/out+<bytes>, the output (y, or dx) that many
// bytes ahead of x and dy modulo a page (4064: 32 bytes behind). A load whose
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
#include <string>

#include "bnorm_call.h"
#include "buffers.h"
#include "shapes.h"

#ifdef BNORM_BENCH_HAVE_DNNL
#include "onednn_peer.h"
#endif

namespace bnorm_bench {
namespace {

constexpr int64_t kPage = 4096;
const LogicalShape kShape{32, 2048, 7, 7, 4};

// Three page-aligned regions (x, dy, output), each with a spare page; the
// output starts `offset` bytes into its region.
class PlacedTensors {
 public:
  PlacedTensors(DType dtype, int64_t offset)
      : count_(kShape.Elements()),
        bytes_(count_ * ElementBytes(dtype)),
        region_((bytes_ + 2 * kPage - 1) / kPage * kPage),
        memory_(static_cast<uint8_t*>(std::aligned_alloc(kPage, 3 * region_))),
        out_(memory_.get() + 2 * region_ + offset) {
    Fill(dtype, x(), 1);
    Fill(dtype, dy(), 2);
    std::memset(out_, 0, bytes_);
  }
  uint8_t* x() { return memory_.get(); }
  uint8_t* dy() { return memory_.get() + region_; }
  uint8_t* out() { return out_; }
  int64_t bytes() const { return bytes_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  void Fill(DType dtype, uint8_t* p, uint64_t seed) const {
    if (dtype == DType::kF32) {
      FillUniform(reinterpret_cast<float*>(p), count_, seed);
    } else {
      FillUniformHalf(reinterpret_cast<uint16_t*>(p), count_, seed, dtype);
    }
  }

  int64_t count_, bytes_, region_;
  std::unique_ptr<uint8_t, Free> memory_;
  uint8_t* out_;
};

// `run(x, y, dy, dx, channels)` per iteration, y and dx both the placed output.
template <class RunOn>
void TimePlaced(benchmark::State& state, DType dtype, Mode mode, int64_t offset, const RunOn& run) {
  PlacedTensors t(dtype, offset);
  ChannelVectors ch = MakeChannelVectors(kShape.c);
  for (auto _ : state) {
    if (!run(t.x(), t.out(), t.dy(), t.out(), ch)) break;
  }
  state.SetBytesProcessed(state.iterations() * MinimalBytes(kShape, mode, dtype));
}

void Bnorm(benchmark::State& state, DType dtype, Layout layout, Mode mode, int64_t offset) {
  const BnormCall call(kShape, layout, mode, 1, dtype);
  TimePlaced(state, dtype, mode, offset,
             [&](const void* x, void* y, const void* dy, void* dx, ChannelVectors& ch) {
               if (call.RunOn(x, y, dy, dx, ch) == BNORM_OK) return true;
               state.SkipWithError(bnorm_last_error());
               return false;
             });
}

#ifdef BNORM_BENCH_HAVE_DNNL
// oneDNN's batch_normalization primitive, created outside the timed loop.
void OneDnn(benchmark::State& state, DType dtype, Layout layout, Mode mode, int64_t offset) {
  std::unique_ptr<OneDnnBatchNorm> peer;
  try {
    peer = std::make_unique<OneDnnBatchNorm>(kShape, layout, mode, kEps, dtype);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  TimePlaced(state, dtype, mode, offset,
             [&](const void* x, void* y, const void* dy, void* dx, ChannelVectors& ch) {
               peer->RunOn(x, y, dy, dx, ch, 1);
               return true;
             });
  state.SetLabel(peer->ImplName());
}
#endif

}  // namespace
}  // namespace bnorm_bench

int main(int argc, char** argv) {
  using namespace bnorm_bench;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      for (Mode mode : {Mode::kInference, Mode::kTraining, Mode::kBackward}) {
        for (int64_t offset : {0, 32, 64, 128, 256, 512, 4064}) {
          const std::string name = std::string(DTypeName(dtype)) + "/" + LayoutName(layout) + "/" +
                                   ModeName(mode) + "/out+" + std::to_string(offset);
          benchmark::RegisterBenchmark(name.c_str(), Bnorm, dtype, layout, mode, offset)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
#ifdef BNORM_BENCH_HAVE_DNNL
          benchmark::RegisterBenchmark(("onednn/" + name).c_str(), OneDnn, dtype, layout, mode,
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
