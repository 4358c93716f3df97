#include "peer_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bnorm_call.h"
#include "buffers.h"
#include "half_convert.h"
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

// bf16 / f16 tensor outputs: two units of roundoff of the type (2^-7, 2^-10),
// the final rounding plus the float kernels' own error; a wrong argument or
// layout is off by far more.
double HalfTolerance(DType dtype) { return dtype == DType::kBF16 ? 0x1p-7 : 0x1p-10; }

class Checker {
 public:
  void Expect(const std::string& what, const float* got, const float* ref, int64_t n,
              double tolerance = kTolerance) {
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < n; ++i) {
      max_ref = std::max(max_ref, std::fabs(double{ref[i]}));
      // NaN in got must fail, so compare with !(<=).
      const double d = std::fabs(double{got[i]} - ref[i]);
      if (!(d <= max_diff)) max_diff = std::isnan(d) ? INFINITY : d;
    }
    const double err = max_diff / std::max(max_ref, 1e-30);
    const bool ok = err <= tolerance;
    std::printf("%s %-52s rel err %.2e\n", ok ? "PASS" : "FAIL", what.c_str(), err);
    (ok ? passed_ : failed_)++;
  }
  // Bit-exact 16-bit results (the 2-byte roof kernels).
  void ExpectBits(const std::string& what, const uint16_t* got, const uint16_t* ref, int64_t n) {
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += got[i] != ref[i];
    std::printf("%s %-52s %lld of %lld differ\n", wrong == 0 ? "PASS" : "FAIL", what.c_str(),
                static_cast<long long>(wrong), static_cast<long long>(n));
    (wrong == 0 ? passed_ : failed_)++;
  }
  void Fail(const std::string& what, const std::string& why) {
    std::printf("FAIL %-52s %s\n", what.c_str(), why.c_str());
    failed_++;
  }
  // A comparison that cannot be made here, with the reason.
  void Skip(const std::string& what, const std::string& why) {
    std::printf("SKIP %-52s %s\n", what.c_str(), why.c_str());
    skipped_++;
  }
  int passed() const { return passed_; }
  int failed() const { return failed_; }
  int skipped() const { return skipped_; }

 private:
  int passed_ = 0, failed_ = 0, skipped_ = 0;
};

int64_t ChannelOf(const LogicalShape& s, Layout layout, int64_t i) {
  if (layout == Layout::kNHWC || s.rank == 2) return i % s.c;
  return (i / (s.h * s.w)) % s.c;
}

// Gives each channel its own mean and spread, so a wrong channel mapping or a
// swapped per-channel vector shows up as an error.
void MakeChannelsDistinct(const LogicalShape& s, Layout layout, float* x, ChannelVectors& ch) {
  for (int64_t i = 0; i < s.Elements(); ++i) {
    const int64_t c = ChannelOf(s, layout, i);
    x[i] = x[i] * (0.5f + 0.25f * static_cast<float>(c % 5)) + static_cast<float>(c % 3) - 1;
  }
  for (int64_t c = 0; c < s.c; ++c) {
    ch.mean[c] = 0.3f * static_cast<float>(c % 4) - 0.5f;
    ch.var[c] = 0.5f + 0.1f * static_cast<float>(c % 3);
  }
}

// The naive loops' outputs on the check's inputs (x and dy as floats), and
// the per-channel vectors each call starts from. Backward takes the
// reference training statistics as inputs.
struct References {
  ChannelVectors initial, ref, backward_inputs;
  std::vector<float> y_infer, y_train, dx;
};

References MakeReferences(const LogicalShape& s, Layout layout, const float* x, const float* dy,
                          const ChannelVectors& initial) {
  const int64_t n = s.Elements();
  References r{initial,
               initial,
               initial,
               std::vector<float>(n),
               std::vector<float>(n),
               std::vector<float>(n)};
  ChannelVectors& ref = r.ref;
  NaiveInference(s, layout, x, r.y_infer.data(), ref.mean.data(), ref.var.data(), ref.gamma.data(),
                 ref.beta.data(), kEps);
  NaiveTraining(s, layout, x, r.y_train.data(), ref.gamma.data(), ref.beta.data(), kEps,
                /*momentum=*/0.1f, ref.running_mean.data(), ref.running_var.data(),
                ref.save_mean.data(), ref.save_var.data(), ref.save_invstd.data());
  NaiveBackward(s, layout, x, dy, ref.gamma.data(), ref.save_mean.data(), ref.save_invstd.data(),
                r.dx.data(), ref.dgamma.data(), ref.dbeta.data());
  r.backward_inputs.save_mean = ref.save_mean;
  r.backward_inputs.save_var = ref.save_var;
  r.backward_inputs.save_invstd = ref.save_invstd;
  return r;
}

// bnorm (through the benchmark's wrapper) and, where given, oneDNN in each
// mode on tensors t (a TensorSet, or a HalfTensorSet of `dtype`), against the
// references: tensors through expect_tensor(what, got, want), per-channel
// vectors at the float tolerance.
template <class Tensors, class ExpectTensor>
void CheckCalls(Checker& check, const LogicalShape& s, Layout layout, DType dtype, bool onednn,
                const std::string& tag, Tensors& t, const References& r,
                const ExpectTensor& expect_tensor) {
  const int64_t c = s.c;
  const ChannelVectors& ref = r.ref;
  {
    ChannelVectors ch = r.initial;
    bnorm_status st = BnormCall(s, layout, Mode::kInference, kThreads, dtype).Run(t, ch);
    if (st != BNORM_OK) {
      check.Fail("bnorm " + tag + "infer", bnorm_last_error());
    } else {
      expect_tensor("bnorm " + tag + "infer y", t.y.get(), r.y_infer);
    }
    ch = r.initial;
    st = BnormCall(s, layout, Mode::kTraining, kThreads, dtype).Run(t, ch);
    if (st != BNORM_OK) {
      check.Fail("bnorm " + tag + "train", bnorm_last_error());
    } else {
      expect_tensor("bnorm " + tag + "train y", t.y.get(), r.y_train);
      check.Expect("bnorm " + tag + "train save_mean", ch.save_mean.data(), ref.save_mean.data(),
                   c);
      check.Expect("bnorm " + tag + "train save_invstd", ch.save_invstd.data(),
                   ref.save_invstd.data(), c);
      check.Expect("bnorm " + tag + "train running_var", ch.running_var.data(),
                   ref.running_var.data(), c);
    }
    ch = r.backward_inputs;
    st = BnormCall(s, layout, Mode::kBackward, kThreads, dtype).Run(t, ch);
    if (st != BNORM_OK) {
      check.Fail("bnorm " + tag + "bwd", bnorm_last_error());
    } else {
      expect_tensor("bnorm " + tag + "bwd dx", t.dx.get(), r.dx);
      check.Expect("bnorm " + tag + "bwd dgamma", ch.dgamma.data(), ref.dgamma.data(), c);
      check.Expect("bnorm " + tag + "bwd dbeta", ch.dbeta.data(), ref.dbeta.data(), c);
    }
  }

#ifdef BNORM_BENCH_HAVE_DNNL
  if (onednn) {
    ChannelVectors ch = r.initial;
    OneDnnBatchNorm(s, layout, Mode::kInference, kEps, dtype).Run(t, ch, kThreads);
    expect_tensor("onednn " + tag + "infer y", t.y.get(), r.y_infer);
    ch = r.initial;
    OneDnnBatchNorm(s, layout, Mode::kTraining, kEps, dtype).Run(t, ch, kThreads);
    expect_tensor("onednn " + tag + "train y", t.y.get(), r.y_train);
    check.Expect("onednn " + tag + "train mean", ch.save_mean.data(), ref.save_mean.data(), c);
    check.Expect("onednn " + tag + "train var", ch.save_var.data(), ref.save_var.data(), c);
    ch = r.backward_inputs;
    OneDnnBatchNorm(s, layout, Mode::kBackward, kEps, dtype).Run(t, ch, kThreads);
    expect_tensor("onednn " + tag + "bwd dx", t.dx.get(), r.dx);
    check.Expect("onednn " + tag + "bwd dgamma", ch.dgamma.data(), ref.dgamma.data(), c);
    check.Expect("onednn " + tag + "bwd dbeta", ch.dbeta.data(), ref.dbeta.data(), c);
  }
#else
  (void)onednn;
#endif
}

void CheckShape(Checker& check, const LogicalShape& s, Layout layout) {
  BufferRing ring(s, DType::kF32, 1);
  TensorSet& t = ring.set(0);
  const int64_t n = s.Elements();
  MakeChannelsDistinct(s, layout, t.x.get(), ring.channels());
  const std::string tag = s.Name() + " " + LayoutName(layout) + " ";
  const References refs = MakeReferences(s, layout, t.x.get(), t.dy.get(), ring.channels());
  CheckCalls(check, s, layout, DType::kF32, /*onednn=*/true, tag, t, refs,
             [&](const std::string& what, const float* got, const std::vector<float>& want) {
               check.Expect(what, got, want.data(), n);
             });

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

// y = max(y + residual, 0), the reference's add and ReLU (double, then rounded).
void AddReluReference(std::vector<float>& y, const float* residual) {
  for (size_t i = 0; i < y.size(); ++i) {
    const double v = double{y[i]} + residual[i];
    y[i] = static_cast<float>(v > 0 ? v : 0);
  }
}

// The residual block (batch norm, + residual, ReLU): bnorm's fused calls and
// the unfused path the bnorm_then_addrelu rows time, against the naive loops
// plus a reference add and ReLU. Backward takes the reference training output
// as y, so its ReLU mask is the one the forward produced.
void CheckResidual(Checker& check, const LogicalShape& s, Layout layout) {
  BufferRing ring(s, DType::kF32, 1);
  ring.AddResidualTensors();
  TensorSet& t = ring.set(0);
  const int64_t n = s.Elements();
  const int64_t c = s.c;
  MakeChannelsDistinct(s, layout, t.x.get(), ring.channels());
  const ChannelVectors initial = ring.channels();
  const std::string tag = s.Name() + " " + LayoutName(layout) + " ";

  ChannelVectors ref = initial;
  std::vector<float> y_infer(n), y_train(n), g(n), dx(n);
  NaiveInference(s, layout, t.x.get(), y_infer.data(), ref.mean.data(), ref.var.data(),
                 ref.gamma.data(), ref.beta.data(), kEps);
  AddReluReference(y_infer, t.residual.get());
  NaiveTraining(s, layout, t.x.get(), y_train.data(), ref.gamma.data(), ref.beta.data(), kEps,
                /*momentum=*/0.1f, ref.running_mean.data(), ref.running_var.data(),
                ref.save_mean.data(), ref.save_var.data(), ref.save_invstd.data());
  AddReluReference(y_train, t.residual.get());
  std::copy(y_train.begin(), y_train.end(), t.y_relu.get());
  int64_t active = 0;
  for (int64_t i = 0; i < n; ++i) {
    g[i] = y_train[i] > 0 ? t.dy[i] : 0.0f;
    active += y_train[i] > 0;
  }
  NaiveBackward(s, layout, t.x.get(), g.data(), ref.gamma.data(), ref.save_mean.data(),
                ref.save_invstd.data(), dx.data(), ref.dgamma.data(), ref.dbeta.data());
  ChannelVectors backward_inputs = initial;
  backward_inputs.save_mean = ref.save_mean;
  backward_inputs.save_var = ref.save_var;
  backward_inputs.save_invstd = ref.save_invstd;
  // A mask of all ones or all zeros would leave the ReLU untested.
  if (active == 0 || active == n) check.Fail(tag + "residual data", "ReLU mask is uniform");

  for (const bool fused : {true, false}) {
    const std::string impl = fused ? "bnorm_res " : "bnorm_then_addrelu ";
    auto run = [&](Mode mode, ChannelVectors& ch) {
      const BnormCall call(s, layout, mode, kThreads);
      return fused ? call.RunResidual(t, ch) : call.RunThenAddRelu(t, ch);
    };
    ChannelVectors ch = initial;
    if (run(Mode::kInference, ch) != BNORM_OK) {
      check.Fail(impl + tag + "infer", bnorm_last_error());
    } else {
      check.Expect(impl + tag + "infer y", t.y.get(), y_infer.data(), n);
    }
    ch = initial;
    if (run(Mode::kTraining, ch) != BNORM_OK) {
      check.Fail(impl + tag + "train", bnorm_last_error());
    } else {
      check.Expect(impl + tag + "train y", t.y.get(), y_train.data(), n);
      check.Expect(impl + tag + "train save_mean", ch.save_mean.data(), ref.save_mean.data(), c);
      check.Expect(impl + tag + "train save_invstd", ch.save_invstd.data(), ref.save_invstd.data(),
                   c);
      check.Expect(impl + tag + "train running_var", ch.running_var.data(), ref.running_var.data(),
                   c);
    }
    ch = backward_inputs;
    if (run(Mode::kBackward, ch) != BNORM_OK) {
      check.Fail(impl + tag + "bwd", bnorm_last_error());
    } else {
      check.Expect(impl + tag + "bwd dx", t.dx.get(), dx.data(), n);
      check.Expect(impl + tag + "bwd d_residual", t.d_residual.get(), g.data(), n);
      check.Expect(impl + tag + "bwd dgamma", ch.dgamma.data(), ref.dgamma.data(), c);
      check.Expect(impl + tag + "bwd dbeta", ch.dbeta.data(), ref.dbeta.data(), c);
    }
  }

  // The residual backward's roof kernel: exact results expected.
  std::vector<float> sum0(n), sum1(n);
  for (int64_t i = 0; i < n; ++i) {
    sum0[i] = t.x[i] + t.dy[i];
    sum1[i] = t.dy[i] + t.y_relu[i];
  }
  for (Store store : {Store::kPlain, Store::kStreaming}) {
    const std::string name = std::string("roof_") + StoreName(store) + " " + tag;
    RoofAddPair(t.x.get(), t.dy.get(), t.y_relu.get(), t.dx.get(), t.d_residual.get(), n, kThreads,
                store);
    check.Expect(name + "add pair dx", t.dx.get(), sum0.data(), n);
    check.Expect(name + "add pair d_residual", t.d_residual.get(), sum1.data(), n);
  }
}

std::vector<float> ToFloats(DType dtype, const uint16_t* h, int64_t n) {
  std::vector<float> f(n);
  for (int64_t i = 0; i < n; ++i) f[i] = HalfToFloat(dtype, h[i]);
  return f;
}

// The bf16 / f16 rows: bnorm (and oneDNN where it has the dtype) on 2-byte
// tensors, against the naive loops on those tensors' exact float values
// (per-channel outputs are f32, held to kTolerance); and the 2-byte roof
// kernels, bit for bit.
void CheckHalf(Checker& check, const LogicalShape& s, Layout layout, DType dtype,
               bool onednn_has_dtype) {
  BufferRing ring(s, dtype, 1);
  HalfTensorSet& t = ring.half_set(0);
  const int64_t n = s.Elements();
  // The f32 check's inputs, rounded to the dtype; the references take the
  // rounded values, which are exact in float.
  std::vector<float> x = ToFloats(dtype, t.x.get(), n);
  MakeChannelsDistinct(s, layout, x.data(), ring.channels());
  for (int64_t i = 0; i < n; ++i) t.x[i] = FloatToHalf(dtype, x[i]);
  x = ToFloats(dtype, t.x.get(), n);
  const std::vector<float> dy = ToFloats(dtype, t.dy.get(), n);
  const std::string tag = s.Name() + " " + LayoutName(layout) + " " + DTypeName(dtype) + " ";
  const double tolerance = HalfTolerance(dtype);
  const References refs = MakeReferences(s, layout, x.data(), dy.data(), ring.channels());
  CheckCalls(check, s, layout, dtype, onednn_has_dtype, tag, t, refs,
             [&](const std::string& what, const uint16_t* got, const std::vector<float>& want) {
               check.Expect(what, ToFloats(dtype, got, n).data(), want.data(), n, tolerance);
             });

  // The 2-byte roof kernels: a copy and a 16-bit integer add, exact.
  std::vector<uint16_t> sum(n);
  for (int64_t i = 0; i < n; ++i) sum[i] = static_cast<uint16_t>(t.x[i] + t.dy[i]);
  for (Store store : {Store::kPlain, Store::kStreaming}) {
    const std::string name = std::string("roof_") + StoreName(store) + " " + tag;
    RoofCopy16(t.x.get(), t.y.get(), n, kThreads, store);
    check.ExpectBits(name + "copy", t.y.get(), t.x.get(), n);
    RoofAdd16(t.x.get(), t.dy.get(), t.dx.get(), n, kThreads, store);
    check.ExpectBits(name + "add", t.dx.get(), sum.data(), n);
  }
}

}  // namespace

int RunPeerCheck() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep the lines printed so far if a peer aborts
  Checker check;
  const LogicalShape shapes[] = {{4, 32, 17, 17, 4}, {3, 5, 7, 9, 4}, {64, 48, 1, 1, 2}};
  for (const LogicalShape& s : shapes) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      CheckShape(check, s, layout);
      CheckResidual(check, s, layout);
    }
  }
  for (DType dtype : {DType::kBF16, DType::kF16}) {
#ifdef BNORM_BENCH_HAVE_DNNL
    const std::string onednn_missing = OneDnnMissingReason(dtype);
#else
    const std::string onednn_missing = "oneDNN not built";
#endif
    for (const LogicalShape& s : shapes) {
      for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
        CheckHalf(check, s, layout, dtype, onednn_missing.empty());
      }
    }
    if (!onednn_missing.empty()) {
      check.Skip(std::string("onednn ") + DTypeName(dtype) + " (every shape and mode)",
                 onednn_missing);
    }
  }
#ifdef BNORM_BENCH_HAVE_DNNL
  check.Skip("onednn_res (residual block, every shape and mode)", OneDnnResidualStatus());
#endif
  std::printf("%d passed, %d failed, %d skipped\n", check.passed(), check.failed(),
              check.skipped());
  return check.failed();
}

}  // namespace bnorm_bench
