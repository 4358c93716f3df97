#include "peer_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bnorm_call.h"
#include "buffers.h"
#include "naive.h"
#include "roof.h"
#include "shapes.h"
#ifdef BNORM_BENCH_HAVE_DNNL
#include "onednn_peer.h"
#endif

namespace bnorm_bench {
namespace {

// Relative to the reference's largest magnitude; loose enough for float
// kernels with any summation order, tight enough to catch a wrong argument.
constexpr double kTolerance = 1e-4;
constexpr int kThreads = 2;  // exercise the threaded paths

class Checker {
 public:
  void Expect(const std::string& what, const float* got, const float* ref, int64_t n) {
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < n; ++i) {
      max_ref = std::max(max_ref, std::fabs(double{ref[i]}));
      // NaN in got must fail, so compare with !(<=).
      const double d = std::fabs(double{got[i]} - ref[i]);
      if (!(d <= max_diff)) max_diff = std::isnan(d) ? INFINITY : d;
    }
    const double err = max_diff / std::max(max_ref, 1e-30);
    const bool ok = err <= kTolerance;
    std::printf("%s %-52s rel err %.2e\n", ok ? "PASS" : "FAIL", what.c_str(), err);
    (ok ? passed_ : failed_)++;
  }
  void Fail(const std::string& what, const std::string& why) {
    std::printf("FAIL %-52s %s\n", what.c_str(), why.c_str());
    failed_++;
  }
  int passed() const { return passed_; }
  int failed() const { return failed_; }

 private:
  int passed_ = 0, failed_ = 0;
};

int64_t ChannelOf(const LogicalShape& s, Layout layout, int64_t i) {
  if (layout == Layout::kNHWC || s.rank == 2) return i % s.c;
  return (i / (s.h * s.w)) % s.c;
}

// Gives each channel its own mean and spread, so a wrong channel mapping or a
// swapped per-channel vector shows up as an error.
void MakeChannelsDistinct(const LogicalShape& s, Layout layout, TensorSet& t, ChannelVectors& ch) {
  for (int64_t i = 0; i < s.Elements(); ++i) {
    const int64_t c = ChannelOf(s, layout, i);
    t.x[i] = t.x[i] * (0.5f + 0.25f * static_cast<float>(c % 5)) + static_cast<float>(c % 3) - 1;
  }
  for (int64_t c = 0; c < s.c; ++c) {
    ch.mean[c] = 0.3f * static_cast<float>(c % 4) - 0.5f;
    ch.var[c] = 0.5f + 0.1f * static_cast<float>(c % 3);
  }
}

void CheckShape(Checker& check, const LogicalShape& s, Layout layout) {
  BufferRing ring(s, 1);
  TensorSet& t = ring.set(0);
  const int64_t n = s.Elements();
  const int64_t c = s.c;
  MakeChannelsDistinct(s, layout, t, ring.channels());
  const ChannelVectors initial = ring.channels();
  const std::string tag = s.Name() + " " + LayoutName(layout) + " ";

  // References. Backward uses the reference training statistics as inputs.
  ChannelVectors ref = initial;
  std::vector<float> y_infer(n), y_train(n), dx(n);
  NaiveInference(s, layout, t.x.get(), y_infer.data(), ref.mean.data(), ref.var.data(),
                 ref.gamma.data(), ref.beta.data(), kEps);
  NaiveTraining(s, layout, t.x.get(), y_train.data(), ref.gamma.data(), ref.beta.data(), kEps,
                /*momentum=*/0.1f, ref.running_mean.data(), ref.running_var.data(),
                ref.save_mean.data(), ref.save_var.data(), ref.save_invstd.data());
  NaiveBackward(s, layout, t.x.get(), t.dy.get(), ref.gamma.data(), ref.save_mean.data(),
                ref.save_invstd.data(), dx.data(), ref.dgamma.data(), ref.dbeta.data());
  ChannelVectors backward_inputs = initial;
  backward_inputs.save_mean = ref.save_mean;
  backward_inputs.save_var = ref.save_var;
  backward_inputs.save_invstd = ref.save_invstd;

  // bnorm, through the benchmark's wrapper.
  {
    ChannelVectors ch = initial;
    bnorm_status st = BnormCall(s, layout, Mode::kInference, kThreads).Run(t, ch);
    if (st != BNORM_OK) {
      check.Fail("bnorm " + tag + "infer", bnorm_last_error());
    } else {
      check.Expect("bnorm " + tag + "infer y", t.y.get(), y_infer.data(), n);
    }
    ch = initial;
    st = BnormCall(s, layout, Mode::kTraining, kThreads).Run(t, ch);
    if (st != BNORM_OK) {
      check.Fail("bnorm " + tag + "train", bnorm_last_error());
    } else {
      check.Expect("bnorm " + tag + "train y", t.y.get(), y_train.data(), n);
      check.Expect("bnorm " + tag + "train save_mean", ch.save_mean.data(), ref.save_mean.data(),
                   c);
      check.Expect("bnorm " + tag + "train save_invstd", ch.save_invstd.data(),
                   ref.save_invstd.data(), c);
      check.Expect("bnorm " + tag + "train running_var", ch.running_var.data(),
                   ref.running_var.data(), c);
    }
    ch = backward_inputs;
    st = BnormCall(s, layout, Mode::kBackward, kThreads).Run(t, ch);
    if (st != BNORM_OK) {
      check.Fail("bnorm " + tag + "bwd", bnorm_last_error());
    } else {
      check.Expect("bnorm " + tag + "bwd dx", t.dx.get(), dx.data(), n);
      check.Expect("bnorm " + tag + "bwd dgamma", ch.dgamma.data(), ref.dgamma.data(), c);
      check.Expect("bnorm " + tag + "bwd dbeta", ch.dbeta.data(), ref.dbeta.data(), c);
    }
  }

#ifdef BNORM_BENCH_HAVE_DNNL
  {
    ChannelVectors ch = initial;
    OneDnnBatchNorm(s, layout, Mode::kInference, kEps).Run(t, ch, kThreads);
    check.Expect("onednn " + tag + "infer y", t.y.get(), y_infer.data(), n);
    ch = initial;
    OneDnnBatchNorm(s, layout, Mode::kTraining, kEps).Run(t, ch, kThreads);
    check.Expect("onednn " + tag + "train y", t.y.get(), y_train.data(), n);
    check.Expect("onednn " + tag + "train mean", ch.save_mean.data(), ref.save_mean.data(), c);
    check.Expect("onednn " + tag + "train var", ch.save_var.data(), ref.save_var.data(), c);
    ch = backward_inputs;
    OneDnnBatchNorm(s, layout, Mode::kBackward, kEps).Run(t, ch, kThreads);
    check.Expect("onednn " + tag + "bwd dx", t.dx.get(), dx.data(), n);
    check.Expect("onednn " + tag + "bwd dgamma", ch.dgamma.data(), ref.dgamma.data(), c);
    check.Expect("onednn " + tag + "bwd dbeta", ch.dbeta.data(), ref.dbeta.data(), c);
  }
#endif

  // The roof kernels: exact results expected.
  std::vector<float> sum(n);
  for (int64_t i = 0; i < n; ++i) sum[i] = t.x[i] + t.dy[i];
  for (Store store : {Store::kPlain, Store::kStreaming}) {
    const std::string name = std::string("roof_") + StoreName(store) + " " + tag;
    RoofCopy(t.x.get(), t.y.get(), n, kThreads, store);
    check.Expect(name + "copy", t.y.get(), t.x.get(), n);
    RoofAdd(t.x.get(), t.dy.get(), t.dx.get(), n, kThreads, store);
    check.Expect(name + "add", t.dx.get(), sum.data(), n);
  }
}

}  // namespace

int RunPeerCheck() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep the lines printed so far if a peer aborts
  Checker check;
  const LogicalShape shapes[] = {{4, 32, 17, 17, 4}, {3, 5, 7, 9, 4}, {64, 48, 1, 1, 2}};
  for (const LogicalShape& s : shapes) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) CheckShape(check, s, layout);
  }
  std::printf("%d passed, %d failed\n", check.passed(), check.failed());
  return check.failed();
}

}  // namespace bnorm_bench
