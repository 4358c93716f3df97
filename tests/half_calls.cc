#include "tests/half_calls.h"

#include <string.h>

#include <cmath>

#include "tests/half_types.h"

namespace bnorm_test {
namespace {

constexpr double kOutputTolerance = 1e-5;      // of the largest |y| or |dx|, as for float32
constexpr double kScaleShiftTolerance = 1e-6;  // of the largest |y|, as for float32
constexpr double kStatsTolerance = 1e-6;       // relative, as for float32
constexpr float kUnwritten = -7.0f;            // in every output before a call; exact in both types
constexpr int64_t kPerChannel = BNORM_SPLIT_VALUES_PER_CHANNEL;
constexpr float kMomentum = 0.25f;
const double kEps = 1e-5f;  // bnorm_desc_init's default, as a float

// Tensor storage whose first element sits `offset` elements into the
// allocation: offset 1 puts a half tensor on an address that is 2 mod 4.
template <class E>
class Tensor {
 public:
  Tensor() = default;
  Tensor(const std::vector<E>& values, size_t offset) : offset_(offset), storage_(offset) {
    storage_.insert(storage_.end(), values.begin(), values.end());
  }
  E* data() { return storage_.data() + offset_; }
  const E* data() const { return storage_.data() + offset_; }
  size_t size() const { return storage_.size() - offset_; }

 private:
  size_t offset_ = 0;
  std::vector<E> storage_;
};

// Every buffer a call takes: E is float for the float32 call, uint16_t for
// the half one. Per-channel vectors are float (sums double) in both.
template <class E>
struct Buffers {
  Tensor<E> x, residual, dy, y, dx, d_residual;
  std::vector<float> running_mean, running_var, save_mean, save_invstd, dgamma, dbeta;
  std::vector<double> sums;
};

// The float32 call's buffers: the batch's inputs, kUnwritten in the outputs.
// For the backward calls y and the saved statistics are the forward step's.
Buffers<float> MakeBuffers(const Batch& b, bool backward) {
  const size_t n = b.x.size(), c = b.layer.mean.size();
  const std::vector<float> unwritten(n, kUnwritten), unwritten_c(c, kUnwritten);
  Buffers<float> f;
  f.x = {b.x, 0};
  f.residual = {b.residual, 0};
  f.dy = {b.dy, 0};
  f.y = {backward ? b.y : unwritten, 0};
  f.dx = {unwritten, 0};
  f.d_residual = {unwritten, 0};
  f.running_mean = b.layer.mean;
  f.running_var = b.layer.var;
  f.save_mean = backward ? b.save_mean : unwritten_c;
  f.save_invstd = backward ? b.save_invstd : unwritten_c;
  f.dgamma = f.dbeta = unwritten_c;
  f.sums.assign(kPerChannel * c, kUnwritten);
  return f;
}

Tensor<uint16_t> Narrow(bnorm_dtype dtype, const Tensor<float>& t, size_t offset) {
  std::vector<uint16_t> bits(t.size());
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = RoundToHalf(dtype, t.data()[i]);
  return {bits, offset};
}

Buffers<uint16_t> Narrow(const Case& k, const Buffers<float>& f) {
  Buffers<uint16_t> h;
  h.x = Narrow(k.dtype, f.x, k.offset);
  h.residual = Narrow(k.dtype, f.residual, k.offset);
  h.dy = Narrow(k.dtype, f.dy, k.offset);
  h.y = Narrow(k.dtype, f.y, k.offset);
  h.dx = Narrow(k.dtype, f.dx, k.offset);
  h.d_residual = Narrow(k.dtype, f.d_residual, k.offset);
  h.running_mean = f.running_mean;
  h.running_var = f.running_var;
  h.save_mean = f.save_mean;
  h.save_invstd = f.save_invstd;
  h.dgamma = f.dgamma;
  h.dbeta = f.dbeta;
  h.sums = f.sums;
  return h;
}

// A call's buffers before it runs, for both calls.
struct Sources {
  Buffers<float> wide;
  Buffers<uint16_t> half;
};

Sources MakeSources(const Case& k, const Batch& b, bool backward) {
  Sources s{MakeBuffers(b, backward), {}};
  s.half = Narrow(k, s.wide);
  return s;
}

template <class E>
bool Same(const Tensor<E>& a, const Tensor<E>& b) {
  return memcmp(a.data(), b.data(), a.size() * sizeof(E)) == 0;
}

// The same bits, except that any NaN equals any NaN: which operand's NaN an
// operation passes on (or the default NaN's sign) depends on how the compiler
// ordered it, which differs between builds and code paths.
bool SameOrNan(bnorm_dtype dtype, const Tensor<uint16_t>& a, const Tensor<uint16_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const uint16_t x = a.data()[i], y = b.data()[i];
    if (x != y && !(IsHalfNan(dtype, x) && IsHalfNan(dtype, y))) return false;
  }
  return true;
}

// One tensor after both calls: the half one is the float32 one rounded. A
// tensor that neither call changed is skipped: its sources are each other's
// rounding.
void ExpectTensorRounded(const char* what, bnorm_dtype dtype, const Tensor<uint16_t>& half,
                         const Tensor<float>& wide, const Tensor<uint16_t>& half_before,
                         const Tensor<float>& wide_before) {
  if (Same(half, half_before) && Same(wide, wide_before)) return;
  EXPECT_TRUE(IsRoundingOf(what, dtype, half.data(), wide.data(), wide.size()));
}

// Every buffer, written or not: the half tensors are the float32 ones
// rounded, the per-channel vectors the same bits.
void ExpectRounded(bnorm_dtype dtype, const Sources& s, const Buffers<uint16_t>& h,
                   const Buffers<float>& f) {
  ExpectTensorRounded("x", dtype, h.x, f.x, s.half.x, s.wide.x);
  ExpectTensorRounded("residual", dtype, h.residual, f.residual, s.half.residual, s.wide.residual);
  ExpectTensorRounded("dy", dtype, h.dy, f.dy, s.half.dy, s.wide.dy);
  ExpectTensorRounded("y", dtype, h.y, f.y, s.half.y, s.wide.y);
  ExpectTensorRounded("dx", dtype, h.dx, f.dx, s.half.dx, s.wide.dx);
  ExpectTensorRounded("d_residual", dtype, h.d_residual, f.d_residual, s.half.d_residual,
                      s.wide.d_residual);
  const size_t c = f.running_mean.size();
  EXPECT_TRUE(SameBits("running_mean", h.running_mean.data(), f.running_mean.data(), c));
  EXPECT_TRUE(SameBits("running_var", h.running_var.data(), f.running_var.data(), c));
  EXPECT_TRUE(SameBits("save_mean", h.save_mean.data(), f.save_mean.data(), c));
  EXPECT_TRUE(SameBits("save_invstd", h.save_invstd.data(), f.save_invstd.data(), c));
  EXPECT_TRUE(SameBits("dgamma", h.dgamma.data(), f.dgamma.data(), c));
  EXPECT_TRUE(SameBits("dbeta", h.dbeta.data(), f.dbeta.data(), c));
  EXPECT_TRUE(SameBits("partial sums", h.sums.data(), f.sums.data(), f.sums.size()));
}

// Runs `call(desc, buffers)` on copies of the float32 sources and of their
// half narrowing, expects the half results to be the float32 ones rounded,
// and returns the half buffers after the call.
template <class Call>
Buffers<uint16_t> ExpectRoundedFloatPath(const Case& k, uint32_t flags, const Sources& s,
                                         const Call& call) {
  Buffers<float> wide = s.wide;
  Buffers<uint16_t> half = s.half;
  bnorm_desc d = Desc(k.g.c, k.layout, flags);
  d.momentum = kMomentum;
  // Results do not depend on num_threads; the half call's varies.
  d.num_threads = 1;
  EXPECT_EQ(call(d, wide), BNORM_OK) << bnorm_last_error();
  d.dtype = k.dtype;
  d.num_threads = k.threads;
  EXPECT_EQ(call(d, half), BNORM_OK) << bnorm_last_error();
  EXPECT_STREQ(bnorm_last_error(), "");
  ExpectRounded(k.dtype, s, half, wide);
  return half;
}

// Runs `call(desc, buffers)` on a copy of the half sources alone and returns
// the buffers after it. For the backward calls, which on 16-bit tensors
// compute in double (so that dx stays within 1 ulp where float arithmetic
// cancels) and so are not the float32 call rounded: they are held to the
// float64 reference instead. Inputs they only read must keep their bits.
template <class Call>
Buffers<uint16_t> RunHalfCall(const Case& k, uint32_t flags, const Sources& s, const Call& call) {
  Buffers<uint16_t> half = s.half;
  bnorm_desc d = Desc(k.g.c, k.layout, flags);
  d.dtype = k.dtype;
  d.num_threads = k.threads;
  EXPECT_EQ(call(d, half), BNORM_OK) << bnorm_last_error();
  EXPECT_STREQ(bnorm_last_error(), "");
  EXPECT_TRUE(Same(half.x, s.half.x));
  EXPECT_TRUE(Same(half.y, s.half.y));
  EXPECT_TRUE(Same(half.residual, s.half.residual));
  return half;
}

Inputs ForwardInputs(const Layer& layer, uint32_t flags, const float* residual) {
  Inputs in;
  in.gamma = flags & BNORM_FLAG_AFFINE ? layer.gamma.data() : nullptr;
  in.beta = flags & BNORM_FLAG_AFFINE ? layer.beta.data() : nullptr;
  in.residual = residual;
  in.eps = kEps;
  in.relu = flags & BNORM_FLAG_FUSE_RELU;
  return in;
}

// Where a forward call writes y: its own buffer, or in place over an input.
enum class Into { kY, kX, kResidual };

template <class E>
E* Output(Buffers<E>& t, Into into) {
  return into == Into::kX ? t.x.data() : into == Into::kResidual ? t.residual.data() : t.y.data();
}

std::vector<Into> Outputs(bool residual) {
  if (residual) return {Into::kY, Into::kX, Into::kResidual};
  return {Into::kY, Into::kX};
}

// Where a backward call writes dx and d_residual: their own buffers, or one
// of them in place over dy.
enum class Grads { kSeparate, kDxOverDy, kDResidualOverDy };

std::vector<Grads> GradOutputs(bool residual) {
  if (residual) return {Grads::kSeparate, Grads::kDxOverDy, Grads::kDResidualOverDy};
  return {Grads::kSeparate, Grads::kDxOverDy};
}

template <class E>
E* Dx(Buffers<E>& t, Grads grads) {
  return grads == Grads::kDxOverDy ? t.dy.data() : t.dx.data();
}
template <class E>
E* DResidual(Buffers<E>& t, Grads grads) {
  return grads == Grads::kDResidualOverDy ? t.dy.data() : t.d_residual.data();
}

// A per-channel float output against the float64 reference: within
// tolerance * scale, or the reference rounded to float (infinity past float's
// range), or NaN where the reference is NaN (special values).
::testing::AssertionResult NearAsFloat(const char* what, const float* got,
                                       const std::vector<double>& want,
                                       const std::vector<double>& scale, double tolerance) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool same = std::isnan(want[i]) ? std::isnan(got[i])
                                          : got[i] == static_cast<float>(want[i]) ||
                                                std::fabs(got[i] - want[i]) <= tolerance * scale[i];
    if (!same && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << want.size() << " values off; first at [" << first
         << "]: got " << got[first] << ", want " << want[first];
}

// dx against the reference for the given flags, within 1 ulp, and dgamma and
// dbeta if given.
void ExpectBackwardNearReference(const Case& k, const Batch& b, uint32_t flags, const uint16_t* dx,
                                 const float* dgamma, const float* dbeta) {
  const BackwardResult want = ReferenceBackward(
      k.g, b.x.data(), b.dy.data(), b.y.data(),
      flags & BNORM_FLAG_AFFINE ? b.layer.gamma.data() : nullptr, b.save_mean.data(),
      b.save_invstd.data(), flags & BNORM_FLAG_FUSE_RELU, flags & BNORM_FLAG_USE_GLOBAL_STATS);
  if (dx != nullptr) EXPECT_TRUE(WithinOneUlp("dx", k.dtype, dx, want.dx));
  if (dgamma != nullptr) {
    EXPECT_TRUE(NearAsFloat("dgamma", dgamma, want.dgamma, want.dgamma_scale, kStatsTolerance));
    EXPECT_TRUE(NearAsFloat("dbeta", dbeta, want.dbeta, want.dbeta_scale, kStatsTolerance));
  }
}

// The outputs of a backward call made with dx or d_residual over dy are the
// values the call with separate outputs wrote (NaN for NaN).
void ExpectSameAsSeparate(bnorm_dtype dtype, Grads grads, const Buffers<uint16_t>& half,
                          const Buffers<uint16_t>& separate) {
  if (grads == Grads::kSeparate) return;
  const bool dx_over_dy = grads == Grads::kDxOverDy;
  EXPECT_TRUE(SameOrNan(dtype, half.dy, dx_over_dy ? separate.dx : separate.d_residual));
  if (!dx_over_dy) EXPECT_TRUE(SameOrNan(dtype, half.dx, separate.dx));
  if (dx_over_dy) EXPECT_TRUE(SameOrNan(dtype, half.d_residual, separate.d_residual));
  const size_t c = half.dgamma.size();
  EXPECT_TRUE(SameBits("dgamma", half.dgamma.data(), separate.dgamma.data(), c));
  EXPECT_TRUE(SameBits("dbeta", half.dbeta.data(), separate.dbeta.data(), c));
}

// dy where the forward output is positive (or NaN) with ReLU: d_residual.
std::vector<float> MaskedGradient(const Batch& b, uint32_t flags) {
  std::vector<float> masked = b.dy;
  for (size_t i = 0; i < masked.size(); ++i) {
    if (flags & BNORM_FLAG_FUSE_RELU && b.y[i] <= 0) masked[i] = 0;
  }
  return masked;
}

Buffers<uint16_t> HalfBackward(const Case& k, const Batch& b, uint32_t flags, bool residual,
                               Grads grads) {
  const float* gamma = b.layer.gamma.data();
  return RunHalfCall(k, flags, MakeSources(k, b, true), [&](const bnorm_desc& d, auto& t) {
    return residual
               ? bnorm_backward_residual(&d, &k.shape, t.x.data(), t.dy.data(), t.y.data(), gamma,
                                         t.save_mean.data(), t.save_invstd.data(), Dx(t, grads),
                                         DResidual(t, grads), t.dgamma.data(), t.dbeta.data())
               : bnorm_backward(&d, &k.shape, t.x.data(), t.dy.data(), t.y.data(), gamma,
                                t.save_mean.data(), t.save_invstd.data(), Dx(t, grads),
                                t.dgamma.data(), t.dbeta.data());
  });
}

}  // namespace

Batch::Batch(bnorm_dtype dtype, const Geometry& g, uint32_t seed)
    : x(RepresentableIn(dtype, ChannelData(g, seed))),
      residual(RepresentableIn(dtype, Uniform(g.Elements(), -2, 2, seed + 1))),
      dy(RepresentableIn(dtype, Uniform(g.Elements(), -1, 1, seed + 2))),
      layer(g.c, seed + 3) {}

void Batch::Derive(bnorm_dtype dtype, const Geometry& g) {
  Inputs in;
  in.gamma = layer.gamma.data();
  in.beta = layer.beta.data();
  in.eps = kEps;
  forward = ReferenceTraining(g, x.data(), in, 0, nullptr, nullptr);
  y.clear();
  for (double v : forward.y) y.push_back(WidenHalf(dtype, RoundToHalf(dtype, v)));
  save_mean.assign(forward.mean.begin(), forward.mean.end());
  save_invstd.assign(forward.invstd.begin(), forward.invstd.end());
  scale.assign(g.c, 0);
  shift.assign(g.c, 0);
  for (int64_t c = 0; c < g.c; ++c) {
    const double s = layer.Scale(c, kEps, true);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(layer.beta[c] - layer.mean[c] * s);
  }
}

Case MakeCase(bnorm_dtype dtype, bnorm_layout layout, const bnorm_shape& shape, int index,
              bool vs_reference) {
  const int32_t threads[] = {0, 1, 2};
  return {dtype,
          layout,
          shape,
          Geometry::Of(shape, layout),
          threads[index % 3],
          size_t(index % 2),
          vs_reference};
}

std::string Describe(const Case& k) {
  return std::string(DtypeName(k.dtype)) + " " + ToString(k.shape) + " num_threads " +
         std::to_string(k.threads) + " offset " + std::to_string(k.offset);
}

// bnorm_forward_inference, or with `residual` bnorm_forward_inference_residual.
void CheckInference(const Case& k, const Batch& b, uint32_t flags, bool residual) {
  const Layer& l = b.layer;
  const Sources source = MakeSources(k, b, false);
  for (Into into : Outputs(residual)) {
    const Buffers<uint16_t> half =
        ExpectRoundedFloatPath(k, flags, source, [&](const bnorm_desc& d, auto& t) {
          return residual ? bnorm_forward_inference_residual(
                                &d, &k.shape, t.x.data(), t.residual.data(), Output(t, into),
                                l.mean.data(), l.var.data(), l.gamma.data(), l.beta.data())
                          : bnorm_forward_inference(&d, &k.shape, t.x.data(), Output(t, into),
                                                    l.mean.data(), l.var.data(), l.gamma.data(),
                                                    l.beta.data());
        });
    if (!k.vs_reference || into != Into::kY) continue;
    const Inputs in = ForwardInputs(l, flags, residual ? b.residual.data() : nullptr);
    EXPECT_TRUE(NearInHalf("y", k.dtype, half.y.data(),
                           ReferenceInference(k.g, b.x.data(), l.mean.data(), l.var.data(), in),
                           kOutputTolerance));
  }
}

void CheckScaleShift(const Case& k, const Batch& b, uint32_t flags) {
  const Sources source = MakeSources(k, b, false);
  for (Into into : Outputs(false)) {
    const Buffers<uint16_t> half =
        ExpectRoundedFloatPath(k, flags, source, [&](const bnorm_desc& d, auto& t) {
          return bnorm_forward_scale_shift(&d, &k.shape, t.x.data(), Output(t, into),
                                           b.scale.data(), b.shift.data());
        });
    if (!k.vs_reference || into != Into::kY) continue;
    std::vector<double> want(b.x.size());
    for (int64_t c = 0; c < k.g.c; ++c) {
      k.g.ForChannel(c, [&](int64_t i) {
        const double v = b.x[i] * static_cast<double>(b.scale[c]) + b.shift[c];
        want[i] = flags & BNORM_FLAG_FUSE_RELU && v < 0 ? 0.0 : v;
      });
    }
    EXPECT_TRUE(NearInHalf("y", k.dtype, half.y.data(), want, kScaleShiftTolerance));
  }
}

// bnorm_forward_training, or with `residual` bnorm_forward_training_residual.
void CheckTraining(const Case& k, const Batch& b, uint32_t flags, bool residual) {
  const Layer& l = b.layer;
  const Sources source = MakeSources(k, b, false);
  for (Into into : Outputs(residual)) {
    const Buffers<uint16_t> half =
        ExpectRoundedFloatPath(k, flags, source, [&](const bnorm_desc& d, auto& t) {
          return residual ? bnorm_forward_training_residual(
                                &d, &k.shape, t.x.data(), t.residual.data(), Output(t, into),
                                l.gamma.data(), l.beta.data(), t.running_mean.data(),
                                t.running_var.data(), t.save_mean.data(), t.save_invstd.data())
                          : bnorm_forward_training(&d, &k.shape, t.x.data(), Output(t, into),
                                                   l.gamma.data(), l.beta.data(),
                                                   t.running_mean.data(), t.running_var.data(),
                                                   t.save_mean.data(), t.save_invstd.data());
        });
    if (!k.vs_reference || into != Into::kY) continue;
    const Inputs in = ForwardInputs(l, flags, residual ? b.residual.data() : nullptr);
    const TrainingResult want =
        ReferenceTraining(k.g, b.x.data(), in, kMomentum, l.mean.data(), l.var.data());
    EXPECT_TRUE(NearInHalf("y", k.dtype, half.y.data(), want.y, kOutputTolerance));
    std::vector<double> spread(k.g.c), running_mean_scale(k.g.c);
    for (int64_t c = 0; c < k.g.c; ++c) {
      spread[c] = std::fabs(want.mean[c]) + std::sqrt(want.var[c]);
      running_mean_scale[c] = spread[c] + std::fabs(l.mean[c]);
    }
    EXPECT_TRUE(NearScaled("save_mean", half.save_mean.data(), want.mean, spread, kStatsTolerance));
    EXPECT_TRUE(NearScaled("save_invstd", half.save_invstd.data(), want.invstd, want.invstd,
                           kStatsTolerance));
    if (flags & BNORM_FLAG_TRACK_RUNNING_STATS) {
      EXPECT_TRUE(NearScaled("running_mean", half.running_mean.data(), want.running_mean,
                             running_mean_scale, kStatsTolerance));
      EXPECT_TRUE(NearScaled("running_var", half.running_var.data(), want.running_var,
                             want.running_var, kStatsTolerance));
    }
  }
}

// bnorm_backward, or with `residual` bnorm_backward_residual: dx within 1 ulp
// of the float64 reference, d_residual the masked dy exactly.
void CheckBackward(const Case& k, const Batch& b, uint32_t flags, bool residual) {
  Buffers<uint16_t> separate;
  for (Grads grads : GradOutputs(residual)) {
    const Buffers<uint16_t> half = HalfBackward(k, b, flags, residual, grads);
    if (grads != Grads::kSeparate) {
      ExpectSameAsSeparate(k.dtype, grads, half, separate);
      continue;
    }
    separate = half;
    ExpectBackwardNearReference(k, b, flags, half.dx.data(), half.dgamma.data(), half.dbeta.data());
    if (residual) {
      const std::vector<float> masked = MaskedGradient(b, flags);
      EXPECT_TRUE(IsRoundingOf("d_residual", k.dtype, half.d_residual.data(), masked.data(),
                               masked.size()));
    }
  }
}

void CheckLocalStats(const Case& k, const Batch& b) {
  const Buffers<uint16_t> half =
      ExpectRoundedFloatPath(k, 0, MakeSources(k, b, false), [&](const bnorm_desc& d, auto& t) {
        return bnorm_local_stats(&d, &k.shape, t.x.data(), t.sums.data());
      });
  if (!k.vs_reference) return;
  const bnorm_desc d = Desc(k.g.c, k.layout, 0);
  std::vector<float> mean(k.g.c), invstd(k.g.c);
  ASSERT_EQ(bnorm_merge_stats(&d, 1, half.sums.data(), nullptr, mean.data(), invstd.data(), nullptr,
                              nullptr),
            BNORM_OK)
      << bnorm_last_error();
  std::vector<double> spread(k.g.c);
  for (int64_t c = 0; c < k.g.c; ++c) {
    EXPECT_EQ(half.sums[kPerChannel * c], static_cast<double>(k.g.PerChannel()));
    spread[c] = std::fabs(b.forward.mean[c]) + std::sqrt(b.forward.var[c]);
  }
  EXPECT_TRUE(NearScaled("mean", mean.data(), b.forward.mean, spread, kStatsTolerance));
  EXPECT_TRUE(
      NearScaled("invstd", invstd.data(), b.forward.invstd, b.forward.invstd, kStatsTolerance));
}

void CheckNormalize(const Case& k, const Batch& b, uint32_t flags) {
  const Layer& l = b.layer;
  const Sources source = MakeSources(k, b, false);
  for (Into into : Outputs(false)) {
    const Buffers<uint16_t> half =
        ExpectRoundedFloatPath(k, flags, source, [&](const bnorm_desc& d, auto& t) {
          return bnorm_forward_normalize(&d, &k.shape, t.x.data(), Output(t, into), l.gamma.data(),
                                         l.beta.data(), b.save_mean.data(), b.save_invstd.data());
        });
    if (!k.vs_reference || into != Into::kY) continue;
    const bool affine = flags & BNORM_FLAG_AFFINE;
    std::vector<double> want(b.x.size());
    for (int64_t c = 0; c < k.g.c; ++c) {
      k.g.ForChannel(c, [&](int64_t i) {
        const double v =
            (b.x[i] - double{b.save_mean[c]}) * b.save_invstd[c] * (affine ? l.gamma[c] : 1.0) +
            (affine ? l.beta[c] : 0.0);
        want[i] = flags & BNORM_FLAG_FUSE_RELU && v < 0 ? 0.0 : v;
      });
    }
    EXPECT_TRUE(NearInHalf("y", k.dtype, half.y.data(), want, kOutputTolerance));
  }
}

Buffers<uint16_t> HalfBackwardReduce(const Case& k, const Batch& b, uint32_t flags) {
  return RunHalfCall(k, flags, MakeSources(k, b, true), [&](const bnorm_desc& d, auto& t) {
    return bnorm_backward_reduce(&d, &k.shape, t.x.data(), t.dy.data(), t.y.data(),
                                 t.save_mean.data(), t.save_invstd.data(), t.sums.data(),
                                 t.dgamma.data(), t.dbeta.data());
  });
}

// The grad sums of the whole batch, against the float64 reference through
// dgamma and dbeta, which are bnorm_backward's.
void CheckBackwardReduce(const Case& k, const Batch& b, uint32_t flags) {
  const Buffers<uint16_t> half = HalfBackwardReduce(k, b, flags);
  ExpectBackwardNearReference(k, b, flags, nullptr, half.dgamma.data(), half.dbeta.data());
  const Buffers<uint16_t> whole = HalfBackward(k, b, flags, false, Grads::kSeparate);
  EXPECT_TRUE(SameBits("dgamma", half.dgamma.data(), whole.dgamma.data(), k.g.c));
  EXPECT_TRUE(SameBits("dbeta", half.dbeta.data(), whole.dbeta.data(), k.g.c));
  for (int64_t c = 0; c < k.g.c; ++c) {
    EXPECT_EQ(half.sums[kPerChannel * c], static_cast<double>(k.g.PerChannel()));
  }
}

// dx from the whole batch's grad sums (bnorm_backward_reduce's): what
// bnorm_backward gives, bit for bit.
void CheckBackwardElementwise(const Case& k, const Batch& b, uint32_t flags) {
  const std::vector<double> sums = HalfBackwardReduce(k, b, flags).sums;
  const Buffers<uint16_t> whole = HalfBackward(k, b, flags, false, Grads::kSeparate);
  Buffers<uint16_t> separate;
  for (Grads grads : GradOutputs(false)) {
    const Buffers<uint16_t> half =
        RunHalfCall(k, flags, MakeSources(k, b, true), [&](const bnorm_desc& d, auto& t) {
          return bnorm_backward_elementwise(&d, &k.shape, t.x.data(), t.dy.data(), t.y.data(),
                                            b.layer.gamma.data(), b.save_mean.data(),
                                            b.save_invstd.data(), 1, sums.data(), Dx(t, grads));
        });
    if (grads != Grads::kSeparate) {
      ExpectSameAsSeparate(k.dtype, grads, half, separate);
      continue;
    }
    separate = half;
    EXPECT_TRUE(SameOrNan(k.dtype, half.dx, whole.dx));
    ExpectBackwardNearReference(k, b, flags, half.dx.data(), nullptr, nullptr);
  }
}

std::vector<uint32_t> InferenceFlags() {
  return {0, BNORM_FLAG_AFFINE, BNORM_FLAG_FUSE_RELU, BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU};
}

std::vector<uint32_t> ReluFlags() { return {0, BNORM_FLAG_FUSE_RELU}; }

std::vector<uint32_t> TrainingFlags() {
  std::vector<uint32_t> all;
  for (uint32_t f : InferenceFlags())
    all.insert(all.end(), {f, f | BNORM_FLAG_TRACK_RUNNING_STATS});
  return all;
}

std::vector<uint32_t> BackwardFlags() {
  std::vector<uint32_t> all;
  for (uint32_t f : InferenceFlags()) all.insert(all.end(), {f, f | BNORM_FLAG_USE_GLOBAL_STATS});
  return all;
}

void CheckEveryCall(const Case& k, const Batch& b) {
  for (uint32_t flags : InferenceFlags()) {
    SCOPED_TRACE(FlagNames(flags));
    CheckInference(k, b, flags, false);
    CheckInference(k, b, flags, true);
    CheckNormalize(k, b, flags);
  }
  for (uint32_t flags : ReluFlags()) {
    SCOPED_TRACE(FlagNames(flags));
    CheckScaleShift(k, b, flags);
    CheckBackwardReduce(k, b, flags);
  }
  for (uint32_t flags : TrainingFlags()) {
    SCOPED_TRACE(FlagNames(flags));
    CheckTraining(k, b, flags, false);
    CheckTraining(k, b, flags, true);
  }
  for (uint32_t flags : BackwardFlags()) {
    SCOPED_TRACE(FlagNames(flags));
    CheckBackward(k, b, flags, false);
    CheckBackward(k, b, flags, true);
    CheckBackwardElementwise(k, b, flags);
  }
  CheckLocalStats(k, b);
}

}  // namespace bnorm_test
