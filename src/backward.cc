// Backward: one reduction pass (sum of dy and of dy * (x - mean), with dy
// masked by the fused ReLU) and one elementwise pass, fused per channel the
// same way as training forward. The split (distributed) form runs the two
// passes as separate calls, the sums exchanged between them.
#include <algorithm>

#include "src/batch_norm.h"
#include "src/exchanged_blocks.h"
#include "src/parallel.h"
#include "src/reduce_driver.h"

namespace bnorm {
namespace {

// With a residual, channels whose segments are shorter than this write
// d_residual in a sweep of its own after dx, kResidualGroupBytes of each
// segment-strided array at a time.
constexpr int64_t kSeparateResidualBelowBytes = 16 * 1024;
constexpr int64_t kResidualGroupBytes = 16 * 1024;

constexpr int64_t kMaskFirstBelowSegmentBytes = 512;
constexpr int64_t kMinMaskFirstSegments = 16;

// The 16-bit types' gradient sums of rows at least kSumsReadAheadMinRowBytes
// long read rows ahead (AccumulateRows) in tensors of kSumsReadAheadMinBytes
// or more. bf16/f16 channels-last backward with and without it, 2
// interleaved rounds (AMD EPYC): without, cold (32, 256, 56, 56),
// (32, 512, 28, 28), (32, 1024, 14, 14) and (4096, 512) took 1.05-1.23 times
// as long, while (1, 256, 56, 56), (256, 1024) and hot (4096, 512) took
// 0.90-0.96 of the time, and (32, 64, 112, 112) (128-byte rows) 0.86-0.93.
// f32 reads rows in order, with the hardware prefetcher.
constexpr double kSumsReadAheadMinBytes = 4.0 * 1024 * 1024;
constexpr size_t kSumsReadAheadMinRowBytes = 512;

template <typename T>
bool SumsReadAhead(const Plan& p, const Rows& rows) {
  const double tensor_bytes = static_cast<double>(sizeof(T)) * p.count * p.channels;
  return sizeof(T) == 2 && tensor_bytes >= kSumsReadAheadMinBytes &&
         rows.width * sizeof(T) >= kSumsReadAheadMinRowBytes;
}

// dx = (g - grad_mean) * a + (x - center) * b per channel, in double: the
// kernels round them to float, and the 16-bit types' also use them as they
// are, where the float evaluation's TrustBound fails.
struct GradCoefficients {
  double* grad_mean;
  double* a;
  double* b;
  float* bound_a;
  float* bound_b;
  float* bound_rest;

  // Channels from c on, with their centers (the batch means).
  GradChannels From(int64_t c, const float* center) const {
    return {center + c, grad_mean + c, a + c, b + c, bound_a + c, bound_b + c, bound_rest + c};
  }
  GradChannel Channel(int64_t c) const {
    return GradChannels{nullptr, grad_mean, a, b, bound_a, bound_b, bound_rest}[c];
  }
};

// Rounded up to 8 bytes so the partial sums after the coefficients align.
unsigned __int128 CoefficientBytes(const Plan& p) {
  return (static_cast<unsigned __int128>(3 * sizeof(double) + 3 * sizeof(float)) * p.channels + 7) /
         8 * 8;
}

template <typename T>
class BackwardOps {
 public:
  BackwardOps(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x, const T* dy,
              const T* y, const float* gamma, const float* save_mean, const float* save_invstd,
              const BackwardOutputs<T>& out)
      : pr_(pr),
        p_(pr.plan),
        k_(k),
        x_(x),
        dy_(dy),
        y_(pr.relu ? y : nullptr),
        gamma_(gamma),
        mean_(save_mean),
        invstd_(save_invstd),
        dx_(out.dx),
        d_residual_(out.d_residual),
        dgamma_(out.dgamma),
        dbeta_(out.dbeta),
        grad_sums_(out.grad_sums),
        streams_(OutputStreamsFor<T>(pr.plan)),
        prefetch_next_(pr.plan.outer > 1 && 4 * sizeof(T) * pr.plan.count <= L2CacheBytes()) {
    double* wide = static_cast<double*>(scratch);
    float* bound = reinterpret_cast<float*>(wide + 3 * p_.channels);
    coef_ = GradCoefficients{wide,  wide + p_.channels,  wide + 2 * p_.channels,
                             bound, bound + p_.channels, bound + 2 * p_.channels};
  }

  void PrepareChannels(Range) {}

  void SpanSums(int64_t c, int64_t segment, int64_t n, SumPair* sums) {
    const int64_t offset = segment * p_.inner;
    k_.grad_sums_span(x_ + offset, dy_ + offset, Offset(y_, offset), ChannelSpans(p_, n), mean_[c],
                      sums);
  }

  void RunSums(int64_t segment, int64_t n, SumPair* sums) {
    const int64_t offset = segment * p_.inner;
    k_.grad_sums_run(x_ + offset, dy_ + offset, Offset(y_, offset),
                     SegmentRun{static_cast<size_t>(n), static_cast<size_t>(p_.inner)},
                     mean_ + segment % p_.channels, sums);
  }

  double SumsBytesPerValue() const { return (y_ != nullptr ? 3.0 : 2.0) * sizeof(T); }

  void RowsSums(int64_t offset, Rows rows, int64_t pos, double* first, double* second) {
    alignas(64) float mean[kMaxRowWidth];
    SpreadToPositions(p_, pos, static_cast<int64_t>(rows.width), mean_, mean);
    k_.grad_sums_rows(x_ + offset, dy_ + offset, Offset(y_, offset), rows, mean,
                      SumsReadAhead<T>(p_, rows), first, second);
  }

  // sums.first = sum(g), sums.second = sum(g * (x - mean)).
  void Finish(int64_t c, const SumPair& sums) {
    if (dgamma_ != nullptr) dgamma_[c] = static_cast<float>(sums.second * invstd_[c]);
    if (dbeta_ != nullptr) dbeta_[c] = static_cast<float>(sums.first);
    if (grad_sums_ != nullptr) {
      double* out = grad_sums_ + kValuesPerChannel * c;
      out[0] = static_cast<double>(p_.count);
      out[1] = sums.first;
      out[2] = sums.second;
    }
    SetCoefficients(c, sums, static_cast<double>(p_.count));
  }

  // dx's coefficients for channel c from the sums over `count` values (the
  // whole batch's, which in the split form spans other processes too).
  void SetCoefficients(int64_t c, const SumPair& sums, double count) {
    const double invstd = invstd_[c];
    const double gamma = gamma_ != nullptr ? gamma_[c] : 1.0;
    const double a = gamma * invstd;
    coef_.a[c] = a;
    if (pr_.global_stats) {
      coef_.grad_mean[c] = 0;
      coef_.b[c] = 0;
    } else {
      // The statistics' gradient: the mean's through grad_mean, the variance's through b.
      coef_.grad_mean[c] = sums.first / count;
      coef_.b[c] = -a * invstd * invstd * sums.second / count;
    }
    const TrustBound bound = MakeTrustBound<T>(coef_.grad_mean[c], a, coef_.b[c]);
    coef_.bound_a[c] = bound.a;
    coef_.bound_b[c] = bound.b;
    coef_.bound_rest[c] = bound.rest;
  }

  void ElementwiseChannel(int64_t c, int64_t next) {
    if (dx_ == nullptr) return;
    const int64_t offset = c * p_.inner;
    const int64_t segment_bytes = p_.inner * static_cast<int64_t>(sizeof(T));
    // One sample: the channel is a single segment, nothing far apart. Its
    // separate sweeps took (1, 256, 56, 56) 1.12-1.32 times as long.
    if (d_residual_ == nullptr || segment_bytes >= kSeparateResidualBelowBytes || p_.outer == 1) {
      GradSpanOptions options{streams_.by_channel};
      if (next >= 0 && prefetch_next_)
        options.prefetch_ahead = static_cast<size_t>((next - c) * p_.inner);
      k_.backward_span(UsedX(offset), dy_ + offset, Offset(y_, offset), dx_ + offset,
                       Offset(d_residual_, offset), ChannelSpans(p_, p_.outer), mean_[c],
                       coef_.Channel(c), options);
      return;
    }
    // Short segments far apart: writing dx and d_residual side by side ran at
    // a third of the speed of dx alone on (32, 2048, 7, 7), so the two are
    // written in turn, group by group, the second sweep reading dy and y from
    // L1. Whichever is written over dy goes second.
    const int64_t group = std::max<int64_t>(1, kResidualGroupBytes / segment_bytes);
    for (int64_t s0 = 0; s0 < p_.outer; s0 += group) {
      const int64_t o = offset + s0 * p_.channels * p_.inner;
      const Spans spans = ChannelSpans(p_, std::min(group, p_.outer - s0));
      const auto input_gradient = [&] {
        k_.backward_span(UsedX(o), dy_ + o, Offset(y_, o), dx_ + o, nullptr, spans, mean_[c],
                         coef_.Channel(c), {streams_.by_channel});
      };
      // (g - 0) * 1 is g exactly, -0 included: the masked dy.
      const auto residual_gradient = [&] {
        k_.backward_span(nullptr, dy_ + o, Offset(y_, o), d_residual_ + o, nullptr, spans, 0.0f,
                         PassGradient<T>(), {streams_.by_channel});
      };
      if (dx_ == dy_) {
        residual_gradient();
        input_gradient();
      } else {
        input_gradient();
        residual_gradient();
      }
    }
  }

  // Consecutive segments, one kernel call per sample.
  void ElementwiseRun(Range segments) {
    if (dx_ == nullptr) return;
    for (int64_t s = segments.begin; s < segments.end;) {
      const int64_t c = s % p_.channels;
      const int64_t n = std::min(segments.end - s, p_.channels - c);
      const int64_t offset = s * p_.inner;
      k_.backward_run(UsedX(offset), dy_ + offset, Offset(y_, offset), dx_ + offset,
                      Offset(d_residual_, offset),
                      SegmentRun{static_cast<size_t>(n), static_cast<size_t>(p_.inner)},
                      coef_.From(c, mean_), streams_.in_order);
      s += n;
    }
  }

  void ElementwiseDone() {
    if (streams_.in_order) FlushStreams();
  }

  void ElementwiseShare(int t, int nt) {
    if (dx_ == nullptr) return;
    if (!p_.by_rows) {
      ElementwiseRun(ShareOf(p_.outer * p_.channels, t, nt));
      ElementwiseDone();
      return;
    }
    const Range rows = ShareOf(p_.rows, t, nt);
    for (int64_t blk = 0; blk < p_.num_blocks; ++blk) {
      const int64_t pos = blk * p_.block_width;
      const int64_t n = std::min(p_.block_width, p_.width - pos);
      alignas(64) float center[kMaxRowWidth], grad_mean[kMaxRowWidth], a[kMaxRowWidth],
          b[kMaxRowWidth];
      SpreadToPositions(p_, pos, n, mean_, center);
      SpreadToPositions(p_, pos, n, coef_.grad_mean, grad_mean);
      SpreadToPositions(p_, pos, n, coef_.a, a);
      SpreadToPositions(p_, pos, n, coef_.b, b);
      GradArrays arrays{center,  grad_mean, a,       b,       nullptr,
                        nullptr, nullptr,   nullptr, nullptr, nullptr};
      // The 16-bit types check the float evaluation and recompute in double.
      constexpr size_t kCheckedWidth = sizeof(T) == 2 ? kMaxRowWidth : 1;
      alignas(64) double wide_grad_mean[kCheckedWidth], wide_a[kCheckedWidth],
          wide_b[kCheckedWidth];
      alignas(64) float bound_a[kCheckedWidth], bound_b[kCheckedWidth], bound_rest[kCheckedWidth];
      if (sizeof(T) == 2) {
        SpreadToPositions(p_, pos, n, coef_.grad_mean, wide_grad_mean);
        SpreadToPositions(p_, pos, n, coef_.a, wide_a);
        SpreadToPositions(p_, pos, n, coef_.b, wide_b);
        SpreadToPositions(p_, pos, n, coef_.bound_a, bound_a);
        SpreadToPositions(p_, pos, n, coef_.bound_b, bound_b);
        SpreadToPositions(p_, pos, n, coef_.bound_rest, bound_rest);
        arrays.wide_grad_mean = wide_grad_mean;
        arrays.wide_a = wide_a;
        arrays.wide_b = wide_b;
        arrays.bound_a = bound_a;
        arrays.bound_b = bound_b;
        arrays.bound_rest = bound_rest;
      }
      const size_t stride = static_cast<size_t>(p_.width);
      RowsGradient(rows.begin * p_.width + pos,
                   Rows{static_cast<size_t>(rows.end - rows.begin), static_cast<size_t>(n), stride},
                   arrays);
      const int64_t tail_n = std::min(n, p_.tail_width - pos);
      if (t == nt - 1 && tail_n > 0) {
        RowsGradient(p_.rows * p_.width + pos, Rows{1, static_cast<size_t>(tail_n), stride},
                     arrays);
      }
    }
    ElementwiseDone();
  }

 private:
  // Frozen statistics make dx independent of x: don't read it.
  const T* UsedX(int64_t offset) const { return Offset(pr_.global_stats ? nullptr : x_, offset); }

  void RowsGradient(int64_t offset, Rows rows, const GradArrays& arrays) {
    k_.backward_rows(UsedX(offset), dy_ + offset, Offset(y_, offset), dx_ + offset,
                     Offset(d_residual_, offset), rows, arrays, streams_.in_order);
  }

  const Problem& pr_;
  const Plan& p_;
  const KernelTable<T>& k_;
  const T* x_;
  const T* dy_;
  const T* y_;  // null unless ReLU is fused
  const float* gamma_;
  const float* mean_;
  const float* invstd_;
  T* dx_;
  T* d_residual_;  // null unless a residual was added before the ReLU
  float* dgamma_;
  float* dbeta_;
  double* grad_sums_;
  GradCoefficients coef_;
  const OutputStreams streams_;
  // Whether ElementwiseChannel reads the next channel's x and dy ahead, into
  // L2 beside the channel's own. Channels-first bf16 and f16 backward from
  // memory took 0.68-0.98 of the time with it ((32, 512, 28, 28) and (32,
  // 1024, 14, 14), 1 and 2 threads, best of 7 interleaved rounds, Xeon). f32
  // was within the noise on the Xeon (0.86-0.97 on those shapes, 1.10-1.14
  // on (1, 256, 56, 56)); on the AMD EPYC it took 0.71-0.80 on those shapes
  // and 0.84 on hot (1, 256, 56, 56), 0.92-1.02 elsewhere (3 interleaved
  // rounds), so every type reads ahead. With one sample (outer 1) the
  // channels lie one after another in memory, which the hardware prefetcher
  // follows by itself; from cache (hot), reading ahead only cost time there.
  const bool prefetch_next_;
};

}  // namespace

size_t BackwardScratchBytes(const Plan& p) {
  return ClampBytes(CoefficientBytes(p) + ReductionScratchBytes(p));
}

// Bytes the backward reads and writes: x, dy, dx, and y with ReLU fused.
template <typename T>
double BackwardBytes(const Problem& pr) {
  return (pr.relu ? 4.0 : 3.0) * sizeof(T) * pr.plan.count * pr.plan.channels;
}

// With a residual, channels-first data in many short segments (N x C x 7 x 7)
// is faster as two passes: d_residual (the masked dy) over the contiguous
// tensor, then the backward from it, which reads two segment-strided inputs
// instead of three and writes one output instead of two. Measured on
// (32, 2048, 7, 7): the fused walk took 1.5 times as long.
template <typename T>
bool MasksFirst(const Plan& p, const BackwardOutputs<T>& out) {
  return out.d_residual != nullptr && out.dx != nullptr && !p.by_rows &&
         p.outer >= kMinMaskFirstSegments &&
         p.inner * static_cast<int64_t>(sizeof(T)) < kMaskFirstBelowSegmentBytes;
}

// d_residual = dy masked by y > 0 (y null: dy itself), over the whole tensor.
template <typename T>
void MaskGradient(const Problem& pr, const KernelTable<T>& k, const T* dy, const T* y,
                  T* d_residual, int num_threads) {
  const int64_t n = pr.plan.count * pr.plan.channels;
  const bool stream = OutputStreamsFor<T>(pr.plan).in_order;
  RunParallel(num_threads, [&](int t, int nt) {
    const Range part = ShareOf(n, t, nt);
    // (g - 0) * 1 is g exactly, -0 included.
    k.backward_span(nullptr, dy + part.begin, Offset(y, part.begin), d_residual + part.begin,
                    nullptr, Spans{static_cast<size_t>(part.end - part.begin), 1, 0}, 0.0f,
                    PassGradient<T>(), {stream});
    if (stream) FlushStreams();
  });
}

template <typename T>
void Backward(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x, const T* dy,
              const T* y, const float* gamma, const float* save_mean, const float* save_invstd,
              const BackwardOutputs<T>& out) {
  const Plan& p = pr.plan;
  if (MasksFirst(p, out)) {
    MaskGradient(pr, k, dy, pr.relu ? y : nullptr, out.d_residual,
                 ThreadsFor(pr.num_threads, 3.0 * sizeof(T) * p.count * p.channels));
    Problem unmasked = pr;
    unmasked.relu = false;
    BackwardOutputs<T> rest = out;
    rest.d_residual = nullptr;
    Backward(unmasked, k, scratch, x, out.d_residual, static_cast<const T*>(nullptr), gamma,
             save_mean, save_invstd, rest);
    return;
  }
  BackwardOps<T> ops(pr, k, scratch, x, dy, y, gamma, save_mean, save_invstd, out);
  void* partials = static_cast<char*>(scratch) + static_cast<size_t>(CoefficientBytes(p));
  const double bytes = BackwardBytes<T>(pr);
  const int num_threads = ThreadsFor(pr.num_threads, bytes);
  if (pr.global_stats && out.dgamma == nullptr && out.dbeta == nullptr &&
      out.grad_sums == nullptr) {
    // Frozen statistics and no parameter gradients: no sums are needed.
    for (int64_t c = 0; c < p.channels; ++c) ops.Finish(c, SumPair{});
    RunParallel(num_threads, [&](int t, int nt) { ops.ElementwiseShare(t, nt); });
    return;
  }
  ReduceThenElementwise(p, num_threads, partials, ops);
}

size_t BackwardElementwiseScratchBytes(const Plan& p) { return ClampBytes(CoefficientBytes(p)); }

template <typename T>
void BackwardElementwise(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x,
                         const T* dy, const T* y, const float* gamma, const float* mean,
                         const float* invstd, int num_partials, const double* grad_sums, T* dx) {
  const Plan& p = pr.plan;
  BackwardOps<T> ops(pr, k, scratch, x, dy, y, gamma, mean, invstd, BackwardOutputs<T>{dx});
  struct Totals {
    double count = 0;
    SumPair sums;
  };
  FoldBlocks<Totals>(
      p.channels, num_partials, grad_sums,
      [](Totals* t, int, int64_t, const double* v) {
        t->count += v[0];
        t->sums.first += v[1];
        t->sums.second += v[2];
        return true;
      },
      [&](int64_t c, const Totals& t) {
        ops.SetCoefficients(c, t.sums, t.count);
        return true;
      });
  RunParallel(ThreadsFor(pr.num_threads, BackwardBytes<T>(pr)),
              [&](int t, int nt) { ops.ElementwiseShare(t, nt); });
}

#define BNORM_INSTANTIATE_BACKWARD(T)                                                             \
  template void Backward(const Problem&, const KernelTable<T>&, void*, const T*, const T*,        \
                         const T*, const float*, const float*, const float*,                      \
                         const BackwardOutputs<T>&);                                              \
  template void BackwardElementwise(const Problem&, const KernelTable<T>&, void*, const T*,       \
                                    const T*, const T*, const float*, const float*, const float*, \
                                    int, const double*, T*);
BNORM_FOR_EACH_ELEMENT_TYPE(BNORM_INSTANTIATE_BACKWARD)

}  // namespace bnorm
