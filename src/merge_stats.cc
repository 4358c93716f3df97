// The merge phase of split (distributed) training forward: per-process
// (count, mean, M2) blocks combined into the whole batch's statistics.
#include <cmath>

#include "src/batch_norm.h"
#include "src/exchanged_blocks.h"

namespace bnorm {
namespace {

struct Moments {
  double count = 0;
  double mean = 0;
  double m2 = 0;
};

// Chan, Golub and LeVeque's pairwise update: exact in exact arithmetic, and
// free of the cancellation of merging sums of squares.
void Absorb(Moments* total, double count, double mean, double m2) {
  if (count == 0) return;
  if (total->count == 0) {
    *total = Moments{count, mean, m2};
    return;
  }
  const double n = total->count + count;
  const double weight = count / n;
  const double delta = mean - total->mean;
  total->mean += delta * weight;
  total->m2 += m2 + delta * delta * total->count * weight;
  total->count = n;
}

}  // namespace

void MergeStats(const Problem& pr, int64_t channels, int num_partials, const double* partial_stats,
                double* merged_stats, float* mean, float* invstd, float* running_mean,
                float* running_var) {
  FoldBlocks<Moments>(
      channels, num_partials, partial_stats,
      [](Moments* total, int, int64_t, const double* v) {
        Absorb(total, v[0], v[1], v[2]);
        return true;
      },
      [&](int64_t c, const Moments& total) {
        const double var = total.m2 / total.count;
        if (mean != nullptr) mean[c] = static_cast<float>(total.mean);
        if (invstd != nullptr) invstd[c] = static_cast<float>(1.0 / std::sqrt(var + pr.eps));
        if (pr.track_running_stats) {
          const double m = pr.momentum;
          const double unbiased = total.m2 / (total.count - 1);
          running_mean[c] = static_cast<float>((1 - m) * running_mean[c] + m * total.mean);
          running_var[c] = static_cast<float>((1 - m) * running_var[c] + m * unbiased);
        }
        // After the tile's blocks were read: merged_stats may be the first block.
        if (merged_stats != nullptr) {
          double* out = merged_stats + kValuesPerChannel * c;
          out[0] = total.count;
          out[1] = total.mean;
          out[2] = total.m2;
        }
        return true;
      });
}

}  // namespace bnorm
