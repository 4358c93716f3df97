// What a call costs beyond moving its bytes, on tensors small enough that the
// bytes cost next to nothing: <mode>/<shape>/t<threads>, hot (the same buffers
// every iteration), f32, channels-first, beside copy/<shape>, a memcpy of the
// bytes the call must read and write. A call's fixed cost (validation,
// dispatch, the per-channel set-up, any thread start-up) is its time less
// the copy's. t0 is OpenMP's default (both CPUs here): the library must keep
// tensors this small on one thread rather than wake others.
#include <benchmark/benchmark.h>
#include <bnorm/bnorm.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bnorm_call.h"
#include "buffers.h"
#include "shapes.h"

namespace bnorm_bench {
namespace {

// 2 values per channel and up: 32 B, 1 KiB, 16 KiB and 48 KiB of x.
const LogicalShape kShapes[] = {
    {2, 4, 1, 1, 4}, {2, 16, 2, 4, 4}, {4, 64, 4, 4, 4}, {4, 48, 8, 8, 4}};

struct SmallTensors {
  explicit SmallTensors(const LogicalShape& s)
      : x(s.Elements()), y(s.Elements()), dy(s.Elements()), dx(s.Elements()) {
    FillUniform(x.data(), s.Elements(), 1);
    FillUniform(dy.data(), s.Elements(), 2);
  }
  std::vector<float> x, y, dy, dx;
};

void Call(benchmark::State& state, Mode mode, LogicalShape s, int threads) {
  const BnormCall call(s, Layout::kNCHW, mode, threads);
  SmallTensors t(s);
  ChannelVectors ch = MakeChannelVectors(s.c);
  for (auto _ : state) {
    if (call.RunOn(t.x.data(), t.y.data(), t.dy.data(), t.dx.data(), ch) != BNORM_OK) {
      state.SkipWithError(bnorm_last_error());
      break;
    }
    benchmark::ClobberMemory();
  }
}

// The bytes a forward call reads and writes, copied.
void Copy(benchmark::State& state, LogicalShape s) {
  SmallTensors t(s);
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.x.data());
    std::memcpy(t.y.data(), t.x.data(), t.x.size() * sizeof(float));
    benchmark::ClobberMemory();
  }
}

}  // namespace
}  // namespace bnorm_bench

int main(int argc, char** argv) {
  using namespace bnorm_bench;
  for (const LogicalShape& s : kShapes) {
    benchmark::RegisterBenchmark(("copy/" + s.Name()).c_str(), Copy, s)
        ->Unit(benchmark::kMicrosecond);
    for (Mode mode : {Mode::kInference, Mode::kTraining, Mode::kBackward}) {
      for (int threads : {1, 0}) {
        const std::string name =
            std::string(ModeName(mode)) + "/" + s.Name() + "/t" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), Call, mode, s, threads)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
