// The split (distributed) phases' own costs, beside the fused calls:
// - merge/<channels>/<blocks>: bnorm_merge_stats over gathered blocks, the
//   only phase whose cost grows with the number of processes;
// - <mode>/<layout>/<shape>/{fused,split}: one process running the whole
//   batch through bnorm_forward_training or bnorm_backward, or through the
//   phases with nothing between them. The split form reads x (and dy) once
//   more, since the exchange sits between the reduction and the elementwise
//   pass: for training forward 12 B per element instead of 8, for backward
//   20 instead of 12 (2 reads of x and dy, 1 write of dx) once data leaves cache.
// Same buffers every iteration; compare rows of one run only.
#include <benchmark/benchmark.h>
#include <bnorm/bnorm.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

constexpr int64_t kValuesPerChannel = BNORM_SPLIT_VALUES_PER_CHANNEL;

bool Check(benchmark::State& state, bnorm_status status) {
  if (status == BNORM_OK) return true;
  state.SkipWithError(bnorm_last_error());
  return false;
}

void Merge(benchmark::State& state, int64_t channels, int32_t blocks) {
  bnorm_desc d;
  bnorm_desc_init(&d, channels);  // tracks running statistics, as training does
  std::vector<double> gathered(blocks * kValuesPerChannel * channels);
  for (size_t i = 0; i < gathered.size(); i += kValuesPerChannel) {
    gathered[i] = 6272;  // 32 x 14 x 14 values per channel and process
    gathered[i + 1] = 0.001 * static_cast<double>(i % 97);
    gathered[i + 2] = 6000 + static_cast<double>(i % 13);
  }
  std::vector<float> mean(channels), invstd(channels), running_mean(channels, 0.0f),
      running_var(channels, 1.0f);
  for (auto _ : state) {
    if (!Check(state, bnorm_merge_stats(&d, blocks, gathered.data(), nullptr, mean.data(),
                                        invstd.data(), running_mean.data(), running_var.data())))
      break;
    benchmark::DoNotOptimize(invstd.data());
  }
}

struct Tensors {
  bnorm_desc d;
  bnorm_shape shape;
  int64_t c;
  std::vector<float> x, y, dy, dx, gamma, beta, running_mean, running_var, mean, invstd, dgamma,
      dbeta;
  std::vector<double> stats, sums;
  Tensors(int64_t n, int64_t c, int64_t hw, bnorm_layout layout) : c(c) {
    bnorm_desc_init(&d, c);
    d.layout = layout;
    shape = layout == BNORM_LAYOUT_NCHW ? bnorm_shape{4, {n, c, hw, hw}}
                                        : bnorm_shape{4, {n, hw, hw, c}};
    const size_t count = static_cast<size_t>(n * c * hw * hw);
    x.resize(count);
    for (size_t i = 0; i < count; ++i) x[i] = static_cast<float>((i * 7919) % 1000) * 0.002f;
    y = dy = dx = x;
    gamma = beta = running_mean = running_var = mean = invstd = dgamma = dbeta =
        std::vector<float>(c, 1.0f);
    stats = sums = std::vector<double>(kValuesPerChannel * c);
    bnorm_forward_training(&d, &shape, x.data(), y.data(), gamma.data(), beta.data(),
                           running_mean.data(), running_var.data(), mean.data(), invstd.data());
  }
};

void Forward(benchmark::State& state, Tensors& t, bool split) {
  for (auto _ : state) {
    bnorm_status s;
    if (!split) {
      s = bnorm_forward_training(&t.d, &t.shape, t.x.data(), t.y.data(), t.gamma.data(),
                                 t.beta.data(), t.running_mean.data(), t.running_var.data(),
                                 t.mean.data(), t.invstd.data());
    } else if ((s = bnorm_local_stats(&t.d, &t.shape, t.x.data(), t.stats.data())) == BNORM_OK &&
               (s = bnorm_merge_stats(&t.d, 1, t.stats.data(), nullptr, t.mean.data(),
                                      t.invstd.data(), t.running_mean.data(),
                                      t.running_var.data())) == BNORM_OK) {
      s = bnorm_forward_normalize(&t.d, &t.shape, t.x.data(), t.y.data(), t.gamma.data(),
                                  t.beta.data(), t.mean.data(), t.invstd.data());
    }
    if (!Check(state, s)) break;
  }
  state.SetBytesProcessed(state.iterations() * 8 * static_cast<int64_t>(t.x.size()));
}

void Backward(benchmark::State& state, Tensors& t, bool split) {
  for (auto _ : state) {
    bnorm_status s;
    if (!split) {
      s = bnorm_backward(&t.d, &t.shape, t.x.data(), t.dy.data(), nullptr, t.gamma.data(),
                         t.mean.data(), t.invstd.data(), t.dx.data(), t.dgamma.data(),
                         t.dbeta.data());
    } else if ((s = bnorm_backward_reduce(&t.d, &t.shape, t.x.data(), t.dy.data(), nullptr,
                                          t.mean.data(), t.invstd.data(), t.sums.data(),
                                          t.dgamma.data(), t.dbeta.data())) == BNORM_OK) {
      s = bnorm_backward_elementwise(&t.d, &t.shape, t.x.data(), t.dy.data(), nullptr,
                                     t.gamma.data(), t.mean.data(), t.invstd.data(), 1,
                                     t.sums.data(), t.dx.data());
    }
    if (!Check(state, s)) break;
  }
  state.SetBytesProcessed(state.iterations() * 12 * static_cast<int64_t>(t.x.size()));
}

void RegisterAll() {
  for (int32_t blocks : {1, 2, 4, 16, 64}) {
    benchmark::RegisterBenchmark(("merge/2048/" + std::to_string(blocks)).c_str(),
                                 [blocks](benchmark::State& s) { Merge(s, 2048, blocks); });
  }
  // (32, 1024, 14, 14): 25.7 MB, from memory; (8, 256, 14, 14): 1.6 MB, in cache.
  struct Case {
    const char* name;
    int64_t n, c, hw;
  };
  for (const Case& k : {Case{"32x1024x14x14", 32, 1024, 14}, Case{"8x256x14x14", 8, 256, 14}}) {
    for (bnorm_layout layout : {BNORM_LAYOUT_NCHW, BNORM_LAYOUT_NHWC}) {
      auto* tensors = new Tensors(k.n, k.c, k.hw, layout);  // lives as long as the process
      const std::string suffix =
          std::string(layout == BNORM_LAYOUT_NCHW ? "/nchw/" : "/nhwc/") + k.name;
      for (bool split : {false, true}) {
        const std::string how = split ? "/split" : "/fused";
        benchmark::RegisterBenchmark(("train" + suffix + how).c_str(), [tensors, split](
                                                                           benchmark::State& s) {
          Forward(s, *tensors, split);
        })->UseRealTime();
        benchmark::RegisterBenchmark(("bwd" + suffix + how).c_str(), [tensors,
                                                                      split](benchmark::State& s) {
          Backward(s, *tensors, split);
        })->UseRealTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
