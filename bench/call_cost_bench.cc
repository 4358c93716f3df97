// What a call costs beyond moving its bytes, on tensors small enough that the
// bytes cost next to nothing: <mode>/<shape>/<threads>, hot (the same buffers
// every iteration), f32, channels-first, beside copy/<shape>, a memcpy of the
// bytes the call must read and write. A call's fixed cost (validation,
// dispatch, the per-channel set-up, any thread start-up) is its time less
// the copy's. threads 0 is OpenMP's default (both CPUs here): the library
// must keep tensors this small on one thread rather than wake others.
#include <benchmark/benchmark.h>
#include <bnorm/bnorm.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

struct SmallShape {
  int64_t n, c, h, w;
  std::string Name() const {
    return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
           std::to_string(w);
  }
  int64_t Elements() const { return n * c * h * w; }
};

// 2 values per channel and up: 32 B, 1 KiB, 16 KiB and 48 KiB of x.
const SmallShape kShapes[] = {{2, 4, 1, 1}, {2, 16, 2, 4}, {4, 64, 4, 4}, {4, 48, 8, 8}};

enum class Mode { kInfer, kTrain, kBwd };

void Call(benchmark::State& state, Mode mode, SmallShape s, int threads) {
  bnorm_desc d;
  bnorm_desc_init(&d, s.c);
  d.num_threads = threads;
  const bnorm_shape shape = {4, {s.n, s.c, s.h, s.w}};
  const int64_t n = s.Elements();
  std::vector<float> x(n), y(n), dy(n), dx(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 7) * 0.5f;
    dy[i] = static_cast<float>(i % 5) * 0.25f;
  }
  std::vector<float> mean(s.c, 0.5f), var(s.c, 1.5f), gamma(s.c, 1.0f), beta(s.c, 0.0f),
      running_mean(s.c, 0.0f), running_var(s.c, 1.0f), save_mean(s.c), save_invstd(s.c),
      dgamma(s.c), dbeta(s.c);
  bnorm_forward_training(&d, &shape, x.data(), y.data(), gamma.data(), beta.data(),
                         running_mean.data(), running_var.data(), save_mean.data(),
                         save_invstd.data());
  for (auto _ : state) {
    bnorm_status status = BNORM_OK;
    switch (mode) {
      case Mode::kInfer:
        status = bnorm_forward_inference(&d, &shape, x.data(), y.data(), mean.data(), var.data(),
                                         gamma.data(), beta.data());
        break;
      case Mode::kTrain:
        status = bnorm_forward_training(&d, &shape, x.data(), y.data(), gamma.data(), beta.data(),
                                        running_mean.data(), running_var.data(), save_mean.data(),
                                        save_invstd.data());
        break;
      case Mode::kBwd:
        status =
            bnorm_backward(&d, &shape, x.data(), dy.data(), nullptr, gamma.data(), save_mean.data(),
                           save_invstd.data(), dx.data(), dgamma.data(), dbeta.data());
        break;
    }
    if (status != BNORM_OK) {
      state.SkipWithError(bnorm_last_error());
      break;
    }
    benchmark::ClobberMemory();
  }
}

// The bytes a forward call reads and writes, copied.
void Copy(benchmark::State& state, SmallShape s) {
  std::vector<float> x(s.Elements(), 1.0f), y(s.Elements());
  for (auto _ : state) {
    benchmark::DoNotOptimize(x.data());
    std::memcpy(y.data(), x.data(), x.size() * sizeof(float));
    benchmark::ClobberMemory();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<Mode, const char*> modes[] = {
      {Mode::kInfer, "infer"}, {Mode::kTrain, "train"}, {Mode::kBwd, "bwd"}};
  for (const SmallShape& s : kShapes) {
    benchmark::RegisterBenchmark(("copy/" + s.Name()).c_str(), Copy, s)
        ->Unit(benchmark::kMicrosecond);
    for (const auto& [mode, mode_name] : modes) {
      for (int threads : {1, 0}) {
        const std::string name =
            std::string(mode_name) + "/" + s.Name() + "/t" + std::to_string(threads);
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
