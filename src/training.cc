// Training forward: batch statistics in one read of x (shifted sums, see
// accumulate-inl.h), then the normalize pass; running statistics updated.
// Also the local statistics phase of the split (distributed) form.
#include <algorithm>
#include <cmath>

#include "src/batch_norm.h"
#include "src/exchanged_blocks.h"
#include "src/normalize_driver.h"
#include "src/reduce_driver.h"

namespace bnorm {
namespace {

// How many leading values of a channel estimate its mean for the shift.
constexpr int64_t kShiftSamples = 16;

// Training's statistics sum a group's short segments (below this many
// bytes) with the next sample's piece read ahead into L2: f32 (32, 2048, 7, 7)
// (196-byte segments) took 0.85-0.88 of the time that way, (32, 1024, 14,
// 14) (784 bytes) 0.95-1.00, while 3136-byte segments took 1.07-1.14 times
// as long (AMD EPYC, cold, 2 interleaved rounds). The backward's sums gained
// nothing from it (0.97-1.03).
constexpr int64_t kPrefetchNextSampleBelowBytes = 1024;

// The prefetch_ahead for the run kernel's sums from `segment` on: the same
// channels of the next sample, or 0.
size_t RunPrefetchAhead(const Plan& p, int64_t segment, size_t element_bytes) {
  const bool short_segments =
      p.inner * static_cast<int64_t>(element_bytes) < kPrefetchNextSampleBelowBytes;
  const bool last_sample = segment / p.channels == p.outer - 1;
  return short_segments && !last_sample ? static_cast<size_t>(p.channels * p.inner) : 0;
}

// Per-channel float arrays the driver keeps in scratch.
struct ChannelArrays {
  float* shift_estimate;  // the sums' shift, near the channel's mean
  float* center;          // normalize pass: y = (x - center) * scale + shift
  float* scale;
  float* shift;
};

unsigned __int128 ChannelArraysBytes(const Plan& p) {
  return static_cast<unsigned __int128>(4 * sizeof(float)) * p.channels;
}

// The local statistics phase keeps only the shift estimate; rounded up to 8
// bytes so that the partial sums after it align for doubles.
unsigned __int128 ShiftEstimateBytes(const Plan& p) {
  return (static_cast<unsigned __int128>(sizeof(float)) * p.channels + 7) / 8 * 8;
}

// A channel's count, mean and sum of squared deviations (M2).
struct ChannelMoments {
  double count;
  double mean;
  double m2;
};

ChannelArrays CarveChannelArrays(const Plan& p, void* scratch) {
  float* f = static_cast<float*>(scratch);
  return ChannelArrays{f, f + p.channels, f + 2 * p.channels, f + 3 * p.channels};
}

// Per-channel sums of (x - shift) and (x - shift)^2, the shift an estimate of
// the channel's mean from its first values, so that the one pass stays exact
// for channels whose mean is large against their spread. Shared by training
// forward and the local statistics phase.
template <typename T>
class MomentSums {
 public:
  MomentSums(const Plan& p, const KernelTable<T>& k, const T* x, float* shift_estimate)
      : p_(p), k_(k), x_(x), shift_estimate_(shift_estimate) {}

  void PrepareChannels(Range channels) {
    if (p_.by_rows && p_.run == 1) {
      // Channels-last: the channels' values in the first rows, summed a row at
      // a time so that the loads are contiguous.
      const int64_t n = std::min(kShiftSamples, p_.count);
      constexpr int64_t kBlock = 256;
      double sums[kBlock];
      for (int64_t c0 = channels.begin; c0 < channels.end; c0 += kBlock) {
        const int64_t m = std::min(kBlock, channels.end - c0);
        std::fill_n(sums, m, 0.0);
        for (int64_t i = 0; i < n; ++i) {
          const T* row = x_ + i * p_.channels + c0;
          for (int64_t c = 0; c < m; ++c) sums[c] += ToFloat(row[c]);
        }
        for (int64_t c = 0; c < m; ++c) shift_estimate_[c0 + c] = static_cast<float>(sums[c] / n);
      }
      return;
    }
    // Channels-first: the start of the channel's first segment (or run).
    const int64_t segment = p_.by_rows ? p_.run : p_.inner;
    const int64_t n = std::min(kShiftSamples, segment);
    for (int64_t c = channels.begin; c < channels.end; ++c) {
      const T* first = x_ + c * segment;
      // Four chains: one serial chain of double additions per channel would
      // be the longest latency of a small channel's whole pass.
      double sums[4] = {0, 0, 0, 0};
      for (int64_t i = 0; i < n; ++i) sums[i % 4] += ToFloat(first[i]);
      shift_estimate_[c] = static_cast<float>(((sums[0] + sums[1]) + (sums[2] + sums[3])) / n);
    }
  }

  void SpanSums(int64_t c, int64_t segment, int64_t n, SumPair* sums) {
    k_.moments_span(x_ + segment * p_.inner, ChannelSpans(p_, n), shift_estimate_[c], sums);
  }

  void RunSums(int64_t segment, int64_t n, SumPair* sums) {
    const int64_t c = segment % p_.channels;
    k_.moments_run(x_ + segment * p_.inner,
                   SegmentRun{static_cast<size_t>(n), static_cast<size_t>(p_.inner)},
                   shift_estimate_ + c, sums, RunPrefetchAhead(p_, segment, sizeof(T)));
  }

  double SumsBytesPerValue() const { return sizeof(T); }

  // Channel c's moments from its sums of (x - shift) and (x - shift)^2.
  ChannelMoments Moments(int64_t c, const SumPair& sums) const {
    const double count = static_cast<double>(p_.count);
    const double deviation = sums.first / count;  // mean - shift_estimate
    // Rounding can leave M2 a little below 0; NaN (from NaN data) stays NaN.
    return ChannelMoments{count, shift_estimate_[c] + deviation,
                          std::max(sums.second - sums.first * deviation, 0.0)};
  }

  void RowsSums(int64_t offset, Rows rows, int64_t pos, double* first, double* second) {
    alignas(64) float shift[kMaxRowWidth];
    SpreadToPositions(p_, pos, static_cast<int64_t>(rows.width), shift_estimate_, shift);
    k_.moments_rows(x_ + offset, rows, shift, first, second);
  }

 protected:
  const Plan& p_;
  const KernelTable<T>& k_;
  const T* x_;
  float* shift_estimate_;
};

// The local statistics phase: the sums of training forward, turned into
// (count, mean, M2) per channel; no elementwise pass.
template <typename T>
class LocalStatsOps : public MomentSums<T> {
 public:
  LocalStatsOps(const Plan& p, const KernelTable<T>& k, const T* x, float* shift_estimate,
                double* partial_stats)
      : MomentSums<T>(p, k, x, shift_estimate), partial_stats_(partial_stats) {}

  void Finish(int64_t c, const SumPair& sums) {
    const ChannelMoments moments = this->Moments(c, sums);
    double* out = partial_stats_ + kValuesPerChannel * c;
    out[0] = moments.count;
    out[1] = moments.mean;
    out[2] = moments.m2;
  }

  void ElementwiseChannel(int64_t, int64_t) {}
  void ElementwiseRun(Range) {}
  void ElementwiseShare(int, int) {}
  void ElementwiseDone() {}

 private:
  double* partial_stats_;
};

template <typename T>
class TrainingOps : public MomentSums<T> {
 public:
  TrainingOps(const Problem& pr, const KernelTable<T>& k, ChannelArrays arrays, const T* x,
              const T* residual, T* y, const float* gamma, const float* beta, float* running_mean,
              float* running_var, float* save_mean, float* save_invstd)
      : MomentSums<T>(pr.plan, k, x, arrays.shift_estimate),
        pr_(pr),
        a_(arrays),
        residual_(residual),
        y_(y),
        gamma_(gamma),
        beta_(beta),
        running_mean_(running_mean),
        running_var_(running_var),
        save_mean_(save_mean),
        save_invstd_(save_invstd),
        streams_(OutputStreamsFor<T>(pr.plan)),
        options_{pr.relu, streams_.in_order},
        prefetch_next_(2 * kBytes * pr.plan.count <= L2CacheBytes()) {}

  void Finish(int64_t c, const SumPair& sums) {
    const ChannelMoments moments = this->Moments(c, sums);
    const double count = moments.count;
    const double mean = moments.mean;
    const double var = moments.m2 / count;
    const double invstd = 1.0 / std::sqrt(var + static_cast<double>(pr_.eps));
    const double gamma = pr_.affine ? gamma_[c] : 1.0;
    const double beta = pr_.affine ? beta_[c] : 0.0;
    // center is the mean rounded to float; the rounding error moves to shift,
    // so the normalize pass keeps the mean's low bits.
    const float center = static_cast<float>(mean);
    const double scale = gamma * invstd;
    a_.center[c] = center;
    a_.scale[c] = static_cast<float>(scale);
    a_.shift[c] = static_cast<float>(beta - (mean - center) * scale);
    if (save_mean_ != nullptr) save_mean_[c] = center;
    if (save_invstd_ != nullptr) save_invstd_[c] = static_cast<float>(invstd);
    if (pr_.track_running_stats) {
      const double m = pr_.momentum;
      const double unbiased = moments.m2 / (count - 1);
      running_mean_[c] = static_cast<float>((1 - m) * running_mean_[c] + m * mean);
      running_var_[c] = static_cast<float>((1 - m) * running_var_[c] + m * unbiased);
    }
  }

  // While a channel that fits in L2 beside the next one is written, the next
  // one is prefetched, so that its statistics read cache, not memory.
  void ElementwiseChannel(int64_t c, int64_t next) {
    Elementwise options = options_;
    options.stream = streams_.by_channel;
    if (next >= 0 && prefetch_next_)
      options.prefetch_ahead = static_cast<size_t>((next - c) * p_.inner);
    const int64_t offset = c * p_.inner;
    k_.normalize_span(x_ + offset, Offset(residual_, offset), y_ + offset,
                      ChannelSpans(p_, p_.outer), a_.center[c], a_.scale[c], a_.shift[c], options);
  }

  // Consecutive segments, written as one range.
  void ElementwiseRun(Range segments) {
    NormalizeSegments(p_, k_, x_, residual_, y_, options_, segments,
                      ChannelParams{a_.center, a_.scale, a_.shift});
  }

  void ElementwiseDone() {
    if (options_.stream) FlushStreams();
  }

  void ElementwiseShare(int t, int nt) {
    NormalizeShare(p_, k_, x_, residual_, y_, options_, t, nt,
                   ChannelParams{a_.center, a_.scale, a_.shift});
  }

 private:
  using MomentSums<T>::p_;
  using MomentSums<T>::k_;
  using MomentSums<T>::x_;
  static constexpr double kBytes = sizeof(T);  // per element

  const Problem& pr_;
  ChannelArrays a_;
  const T* residual_;  // null unless added before the ReLU
  T* y_;
  const float* gamma_;
  const float* beta_;
  float* running_mean_;
  float* running_var_;
  float* save_mean_;
  float* save_invstd_;
  const OutputStreams streams_;
  const Elementwise options_;
  const bool prefetch_next_;
};

}  // namespace

size_t TrainingScratchBytes(const Plan& p) {
  return ClampBytes(ChannelArraysBytes(p) + ReductionScratchBytes(p));
}

template <typename T>
void ForwardTraining(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x,
                     const T* residual, T* y, const float* gamma, const float* beta,
                     float* running_mean, float* running_var, float* save_mean,
                     float* save_invstd) {
  const Plan& p = pr.plan;
  TrainingOps<T> ops(pr, k, CarveChannelArrays(p, scratch), x, residual, y, gamma, beta,
                     running_mean, running_var, save_mean, save_invstd);
  // Partial sums go after the channel arrays, aligned for doubles.
  void* partials = static_cast<char*>(scratch) + static_cast<size_t>(ChannelArraysBytes(p));
  const double bytes = 2.0 * sizeof(T) * p.count * p.channels;
  ReduceThenElementwise(p, ThreadsFor(pr.num_threads, bytes), partials, ops);
}

size_t LocalStatsScratchBytes(const Plan& p) {
  return ClampBytes(ShiftEstimateBytes(p) + ReductionScratchBytes(p));
}

template <typename T>
void LocalStats(const Problem& pr, const KernelTable<T>& k, void* scratch, const T* x,
                double* partial_stats) {
  const Plan& p = pr.plan;
  LocalStatsOps<T> ops(p, k, x, static_cast<float*>(scratch), partial_stats);
  void* partials = static_cast<char*>(scratch) + static_cast<size_t>(ShiftEstimateBytes(p));
  const double bytes = static_cast<double>(sizeof(T)) * p.count * p.channels;
  ReduceThenElementwise(p, ThreadsFor(pr.num_threads, bytes), partials, ops);
}

#define BNORM_INSTANTIATE_TRAINING(T)                                                             \
  template void ForwardTraining(const Problem&, const KernelTable<T>&, void*, const T*, const T*, \
                                T*, const float*, const float*, float*, float*, float*, float*);  \
  template void LocalStats(const Problem&, const KernelTable<T>&, void*, const T*, double*);
BNORM_FOR_EACH_ELEMENT_TYPE(BNORM_INSTANTIATE_TRAINING)

}  // namespace bnorm
