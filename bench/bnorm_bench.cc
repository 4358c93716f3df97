// bnorm's benchmark: bnorm beside oneDNN, a naive scalar loop and the
// memory-bandwidth roof, over a fixed shape table.
//
// Row names: <impl>/<shape>/<layout>/<mode>/t<threads>/<policy>[/<dtype>], e.g.
//   bnorm/32x256x56x56/nhwc/train/t2/cold        (f32: no dtype part)
//   bnorm/32x256x56x56/nhwc/train/t2/cold/bf16
// impl:   bnorm, onednn, naive (1 thread only), roof_plain, roof_stream,
//         bnorm@<TARGET> (SIMD target capped, a few hot rows),
//         bnorm_folded (inference from a folded scale and shift, hot rows);
//         the residual block y = max(bn(x) + residual, 0) and its backward:
//         bnorm_res (bnorm's fused *_residual calls), bnorm_then_addrelu
//         (the plain bnorm call and separate add+ReLU / ReLU-backward passes).
//         No onednn_res: oneDNN 2.6 has no fuse_norm_add_relu (context key
//         onednn_residual says why).
// mode:   infer, train, bwd; the roof rows' layout is "any" and their mode is
//         "fwd" (copy: serves infer and train), "bwd" (2-in-1-out add: serves
//         bwd and the residual block's infer and train) or "bwd_res"
//         (3-in-2-out: the residual block's bwd).
// policy: cold (ring of buffers > 2 x LLC) or hot (same buffers; registered
//         only where a call's data fits in the LLC, otherwise hot == cold).
// dtype:  bf16 or f16 tensors (per-channel vectors stay f32) for the bnorm and
//         onednn rows; "16bit" for their roof rows (roof_plain, roof_stream:
//         the same copy / add on 2-byte elements, half the f32 roof's bytes).
//         oneDNN rows it has no primitive for (f16 in 2.6) skip with its
//         error (context keys onednn_bf16, onednn_f16 give the probe's result).
// bench/compare.py parses these names; keep them in step.
//
// Extra flag: --check runs the peer correctness check instead of benchmarks.
#include <benchmark/benchmark.h>
#include <bnorm/bnorm.h>

#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bnorm_call.h"
#include "buffers.h"
#include "naive.h"
#include "peer_check.h"
#include "roof.h"
#include "shapes.h"
#ifdef BNORM_BENCH_HAVE_DNNL
#include "onednn_peer.h"
#endif

namespace bnorm_bench {
namespace {

constexpr int kThreadCounts[] = {1, 2};
// Shapes that also get one row per SIMD target: one from DRAM, one in cache.
const char* const kPerTargetShapes[] = {"32x256x56x56", "1x256x56x56"};

struct Row {
  LogicalShape shape;
  Layout layout;
  Mode mode;
  int threads;
  Policy policy;
  bool residual = false;      // the residual block: its tensors and minimal bytes
  DType dtype = DType::kF32;  // bf16 / f16: the batch-norm rows only
};

std::string RowName(const std::string& impl, const Row& row) {
  std::string name = impl + "/" + row.shape.Name() + "/" + LayoutName(row.layout) + "/" +
                     ModeName(row.mode) + "/t" + std::to_string(row.threads) + "/" +
                     PolicyName(row.policy);
  if (row.dtype != DType::kF32) name += std::string("/") + DTypeName(row.dtype);
  return name;
}

// The skip message of a failed bnorm call, e.g. "BNORM_ERR_UNSUPPORTED: a
// valid request this build does not implement: dtype BF16 is not supported".
std::string BnormError(bnorm_status status) {
  return std::string(bnorm_status_string(status)) + ": " + bnorm_last_error();
}

// Times `call(tensors, channels)` once per iteration on the row's data policy.
// `call` returns false after reporting an error with SkipWithError.
template <class Call>
void TimeRow(benchmark::State& state, const Row& row, Call&& call) {
  BufferRing& ring = RingFor(row.shape);  // allocated outside the timed loop
  if (row.residual) ring.AddResidualTensors();
  for (auto _ : state) {
    if (!call(ring.Next(row.policy), ring.channels())) break;
  }
  // bytes_per_second counts the minimal traffic, not what the kernel moves.
  state.SetBytesProcessed(state.iterations() * (row.residual
                                                    ? ResidualMinimalBytes(row.shape, row.mode)
                                                    : MinimalBytes(row.shape, row.mode)));
}

// TimeRow for bf16 / f16 rows: `call(half_tensors, channels)` on the ring of
// the row's dtype; bytes_per_second counts 2-byte elements.
template <class Call>
void TimeHalfRow(benchmark::State& state, const Row& row, Call&& call) {
  BufferRing& ring = RingFor(row.shape, row.dtype);
  for (auto _ : state) {
    if (!call(ring.NextHalf(row.policy), ring.channels())) break;
  }
  state.SetBytesProcessed(state.iterations() * MinimalBytes(row.shape, row.mode, row.dtype));
}

// TimeRow or TimeHalfRow by the row's dtype; `call` takes either tensor set.
template <class Call>
void TimeAnyDTypeRow(benchmark::State& state, const Row& row, Call&& call) {
  if (row.dtype == DType::kF32) {
    TimeRow(state, row, call);
  } else {
    TimeHalfRow(state, row, call);
  }
}

void Register(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), std::move(fn))
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void TimeBnorm(benchmark::State& state, const Row& row) {
  const BnormCall call(row.shape, row.layout, row.mode, row.threads, row.dtype);
  TimeAnyDTypeRow(state, row, [&](auto& t, ChannelVectors& ch) {
    const bnorm_status status = call.Run(t, ch);
    if (status == BNORM_OK) return true;
    state.SkipWithError(BnormError(status).c_str());
    return false;
  });
  state.SetLabel(bnorm_active_target());
}

void RegisterBnorm(const Row& row) {
  Register(RowName("bnorm", row), [row](benchmark::State& state) { TimeBnorm(state, row); });
}

// bnorm_forward_scale_shift after bnorm_fold_scale_shift (not timed).
void RegisterBnormFolded(const Row& row) {
  Register(RowName("bnorm_folded", row), [row](benchmark::State& state) {
    BnormCall call(row.shape, row.layout, row.mode, row.threads);
    if (call.FoldStatistics(RingFor(row.shape).channels()) != BNORM_OK) {
      state.SkipWithError(bnorm_last_error());
      return;
    }
    TimeRow(state, row, [&](TensorSet& t, ChannelVectors&) {
      if (call.RunFolded(t) == BNORM_OK) return true;
      state.SkipWithError(bnorm_last_error());
      return false;
    });
    state.SetLabel(bnorm_active_target());
  });
}

// bnorm capped at one SIMD target; the cap is lifted again afterwards.
void RegisterBnormTarget(const Row& row, const std::string& target) {
  Register(RowName("bnorm@" + target, row), [row, target](benchmark::State& state) {
    if (bnorm_set_max_target(target.c_str()) != BNORM_OK) {
      state.SkipWithError(bnorm_last_error());
      return;
    }
    TimeBnorm(state, row);
    bnorm_set_max_target(nullptr);
  });
}

void RegisterNaive(const Row& row) {
  Register(RowName("naive", row), [row](benchmark::State& state) {
    const LogicalShape& s = row.shape;
    TimeRow(state, row, [&](TensorSet& t, ChannelVectors& ch) {
      switch (row.mode) {
        case Mode::kInference:
          NaiveInference(s, row.layout, t.x.get(), t.y.get(), ch.mean.data(), ch.var.data(),
                         ch.gamma.data(), ch.beta.data(), kEps);
          break;
        case Mode::kTraining:
          NaiveTraining(s, row.layout, t.x.get(), t.y.get(), ch.gamma.data(), ch.beta.data(), kEps,
                        0.1f, ch.running_mean.data(), ch.running_var.data(), ch.save_mean.data(),
                        ch.save_var.data(), ch.save_invstd.data());
          break;
        case Mode::kBackward:
          NaiveBackward(s, row.layout, t.x.get(), t.dy.get(), ch.gamma.data(), ch.save_mean.data(),
                        ch.save_invstd.data(), t.dx.get(), ch.dgamma.data(), ch.dbeta.data());
          break;
      }
      return true;
    });
  });
}

#ifdef BNORM_BENCH_HAVE_DNNL
void RegisterOneDnn(const Row& row) {
  Register(RowName("onednn", row), [row](benchmark::State& state) {
    try {
      OneDnnBatchNorm bn(row.shape, row.layout, row.mode, kEps, row.dtype);  // not timed
      state.SetLabel(bn.ImplName());
      TimeAnyDTypeRow(state, row, [&](auto& t, ChannelVectors& ch) {
        bn.Run(t, ch, row.threads);
        return true;
      });
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
  });
}
#endif

// The residual block fused in one bnorm call.
void RegisterBnormResidual(const Row& row) {
  Register(RowName("bnorm_res", row), [row](benchmark::State& state) {
    const BnormCall call(row.shape, row.layout, row.mode, row.threads);
    TimeRow(state, row, [&](TensorSet& t, ChannelVectors& ch) {
      if (call.RunResidual(t, ch) == BNORM_OK) return true;
      state.SkipWithError(bnorm_last_error());
      return false;
    });
    state.SetLabel(bnorm_active_target());
  });
}

// The residual block unfused: the plain bnorm call and a separate pass.
void RegisterBnormThenAddRelu(const Row& row) {
  Register(RowName("bnorm_then_addrelu", row), [row](benchmark::State& state) {
    const BnormCall call(row.shape, row.layout, row.mode, row.threads);
    TimeRow(state, row, [&](TensorSet& t, ChannelVectors& ch) {
      if (call.RunThenAddRelu(t, ch) == BNORM_OK) return true;
      state.SkipWithError(bnorm_last_error());
      return false;
    });
    state.SetLabel(bnorm_active_target());
  });
}

// The roof only depends on the traffic, so one row per shape, traffic kind
// (forward copy or backward add), threads and policy serves every layout/mode.
void RegisterRoof(const LogicalShape& shape, bool backward, int threads, Policy policy) {
  for (Store store : {Store::kPlain, Store::kStreaming}) {
    const std::string name = std::string("roof_") + StoreName(store) + "/" + shape.Name() +
                             "/any/" + (backward ? "bwd" : "fwd") + "/t" + std::to_string(threads) +
                             "/" + PolicyName(policy);
    const Row row{shape, Layout::kNCHW, backward ? Mode::kBackward : Mode::kInference, threads,
                  policy};
    Register(name, [row, store](benchmark::State& state) {
      const int64_t n = row.shape.Elements();
      TimeRow(state, row, [&](TensorSet& t, ChannelVectors&) {
        if (row.mode == Mode::kBackward) {
          RoofAdd(t.x.get(), t.dy.get(), t.dx.get(), n, row.threads, store);
        } else {
          RoofCopy(t.x.get(), t.y.get(), n, row.threads, store);
        }
        return true;
      });
      state.SetLabel(RoofIsa());
    });
  }
}

// The residual backward's roof: 3 reads (x, dy, y), 2 writes (dx, d_residual).
// (Its forward's roof is the backward one above, a 2-in-1-out add.)
void RegisterResidualRoof(const LogicalShape& shape, int threads, Policy policy) {
  for (Store store : {Store::kPlain, Store::kStreaming}) {
    const std::string name = std::string("roof_") + StoreName(store) + "/" + shape.Name() +
                             "/any/bwd_res/t" + std::to_string(threads) + "/" + PolicyName(policy);
    Row row{shape, Layout::kNCHW, Mode::kBackward, threads, policy};
    row.residual = true;
    Register(name, [row, store](benchmark::State& state) {
      const int64_t n = row.shape.Elements();
      TimeRow(state, row, [&](TensorSet& t, ChannelVectors&) {
        RoofAddPair(t.x.get(), t.dy.get(), t.y_relu.get(), t.dx.get(), t.d_residual.get(), n,
                    row.threads, store);
        return true;
      });
      state.SetLabel(RoofIsa());
    });
  }
}

std::vector<Policy> PoliciesFor(const LogicalShape& shape, Mode mode, DType dtype = DType::kF32) {
  if (HotFitsInCache(shape, mode, dtype)) return {Policy::kCold, Policy::kHot};
  return {Policy::kCold};
}

std::vector<Policy> ResidualPoliciesFor(const LogicalShape& shape, Mode mode) {
  if (ResidualHotFitsInCache(shape, mode)) return {Policy::kCold, Policy::kHot};
  return {Policy::kCold};
}

// The residual block's rows of one shape, registered after all its other rows
// so that those run before the ring grows the residual tensors.
void RegisterResidualRows(const LogicalShape& shape) {
  for (int threads : kThreadCounts) {
    for (Policy policy : ResidualPoliciesFor(shape, Mode::kBackward)) {
      RegisterResidualRoof(shape, threads, policy);
    }
  }
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    for (Mode mode : {Mode::kInference, Mode::kTraining, Mode::kBackward}) {
      for (int threads : kThreadCounts) {
        for (Policy policy : ResidualPoliciesFor(shape, mode)) {
          Row row{shape, layout, mode, threads, policy};
          row.residual = true;
          RegisterBnormResidual(row);
          RegisterBnormThenAddRelu(row);
        }
      }
    }
  }
}

// The roof of 2-byte elements (bf16, f16 rows): RegisterRoof's copy and add
// on half the bytes. Runs on the bf16 ring; only the bytes matter.
void RegisterHalfRoof(const LogicalShape& shape, bool backward, int threads, Policy policy) {
  for (Store store : {Store::kPlain, Store::kStreaming}) {
    const std::string name = std::string("roof_") + StoreName(store) + "/" + shape.Name() +
                             "/any/" + (backward ? "bwd" : "fwd") + "/t" + std::to_string(threads) +
                             "/" + PolicyName(policy) + "/16bit";
    Row row{shape, Layout::kNCHW, backward ? Mode::kBackward : Mode::kInference, threads, policy};
    row.dtype = DType::kBF16;
    Register(name, [row, store](benchmark::State& state) {
      const int64_t n = row.shape.Elements();
      TimeHalfRow(state, row, [&](HalfTensorSet& t, ChannelVectors&) {
        if (row.mode == Mode::kBackward) {
          RoofAdd16(t.x.get(), t.dy.get(), t.dx.get(), n, row.threads, store);
        } else {
          RoofCopy16(t.x.get(), t.y.get(), n, row.threads, store);
        }
        return true;
      });
      state.SetLabel(RoofIsa());
    });
  }
}

// The bf16 and f16 rows of one shape, registered after its f32 rows (each
// dtype has a ring of its own, and only one ring is kept at a time).
void RegisterHalfRows(const LogicalShape& shape) {
  for (int threads : kThreadCounts) {
    for (bool backward : {false, true}) {
      const Mode mode = backward ? Mode::kBackward : Mode::kInference;
      for (Policy policy : PoliciesFor(shape, mode, DType::kBF16)) {
        RegisterHalfRoof(shape, backward, threads, policy);
      }
    }
  }
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      for (Mode mode : {Mode::kInference, Mode::kTraining, Mode::kBackward}) {
        for (int threads : kThreadCounts) {
          for (Policy policy : PoliciesFor(shape, mode, dtype)) {
            Row row{shape, layout, mode, threads, policy};
            row.dtype = dtype;
            RegisterBnorm(row);
#ifdef BNORM_BENCH_HAVE_DNNL
            RegisterOneDnn(row);
#endif
          }
        }
      }
    }
  }
}

// Shape by shape, so the rows of one shape share one buffer ring.
void RegisterAll() {
  for (const LogicalShape& shape : ShapeTable()) {
    for (int threads : kThreadCounts) {
      for (bool backward : {false, true}) {
        for (Policy policy : PoliciesFor(shape, backward ? Mode::kBackward : Mode::kInference)) {
          RegisterRoof(shape, backward, threads, policy);
        }
      }
    }
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      for (Mode mode : {Mode::kInference, Mode::kTraining, Mode::kBackward}) {
        for (int threads : kThreadCounts) {
          for (Policy policy : PoliciesFor(shape, mode)) {
            const Row row{shape, layout, mode, threads, policy};
            RegisterBnorm(row);
#ifdef BNORM_BENCH_HAVE_DNNL
            RegisterOneDnn(row);
#endif
            if (threads == 1) RegisterNaive(row);  // the naive loop has no threads
            // Folding saves the per-channel setup, which shows where data is in cache.
            if (mode == Mode::kInference && policy == Policy::kHot) RegisterBnormFolded(row);
          }
        }
      }
    }
    for (const char* name : kPerTargetShapes) {
      if (shape.Name() != name) continue;
      for (int32_t i = 0; i < bnorm_target_count(); ++i) {
        for (Mode mode : {Mode::kInference, Mode::kTraining}) {
          RegisterBnormTarget({shape, Layout::kNCHW, mode, 1, Policy::kHot}, bnorm_target_name(i));
        }
      }
    }
    RegisterResidualRows(shape);
    RegisterHalfRows(shape);
  }
}

void AddContext() {
  benchmark::AddCustomContext("bnorm_version", bnorm_version_string());
  benchmark::AddCustomContext("bnorm_target", bnorm_active_target());
  benchmark::AddCustomContext("llc_bytes", std::to_string(LastLevelCacheBytes()));
  benchmark::AddCustomContext("roof_isa", RoofIsa());
#ifdef BNORM_BENCH_HAVE_DNNL
  benchmark::AddCustomContext("onednn_version", OneDnnVersion());
  benchmark::AddCustomContext("onednn_residual", OneDnnResidualStatus());
  benchmark::AddCustomContext("onednn_bf16", OneDnnDTypeStatus(DType::kBF16));
  benchmark::AddCustomContext("onednn_f16", OneDnnDTypeStatus(DType::kF16));
#else
  benchmark::AddCustomContext("onednn_version", "not built");
  benchmark::AddCustomContext("onednn_residual", "oneDNN not built");
  benchmark::AddCustomContext("onednn_bf16", "oneDNN not built");
  benchmark::AddCustomContext("onednn_f16", "oneDNN not built");
#endif
}

}  // namespace
}  // namespace bnorm_bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--check") == 0) return bnorm_bench::RunPeerCheck() == 0 ? 0 : 1;
  }
  // Defaults placed before the user's flags, so the user's win: medians of 5
  // repetitions, each at least 50 ms, which keeps the full table to minutes.
  static char reps[] = "--benchmark_repetitions=5";
  static char min_time[] = "--benchmark_min_time=0.05";
  static char aggregates[] = "--benchmark_report_aggregates_only=true";
  std::vector<char*> args = {argv[0], reps, min_time, aggregates};
  args.insert(args.end(), argv + 1, argv + argc);
  int args_count = static_cast<int>(args.size());
  benchmark::Initialize(&args_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 1;
  bnorm_bench::AddContext();
  bnorm_bench::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
