// The split (distributed) phases, used as data-parallel training uses them:
// a batch cut into parts of unequal size, each part's phases run on its own,
// the exchanged blocks gathered in part order. On every runnable SIMD target
// and both layouts, the assembled results must match the float64 reference
// for the whole batch.
#include <gtest/gtest.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

constexpr double kOutputTolerance = 1e-5;  // of the largest |y|
constexpr double kStatsTolerance = 1e-6;   // relative
constexpr int64_t kPerChannel = BNORM_SPLIT_VALUES_PER_CHANNEL;

class SplitPhaseTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }
  TargetScope target_{std::get<0>(GetParam())};
};

// Samples [begin, end) of a batch: what one process holds.
struct Part {
  int64_t begin;
  int64_t end;
};

// Unequal parts, the first a single sample (for rank 2, one value per channel).
std::vector<Part> SplitBatch(int64_t n) {
  if (n == 1) return {{0, 1}};
  if (n == 2) return {{0, 1}, {1, 2}};
  const int64_t middle = 2 + (n - 2) / 3;
  return {{0, 1}, {1, middle}, {middle, n}};
}

bnorm_shape PartShape(const bnorm_shape& whole, const Part& part) {
  bnorm_shape shape = whole;
  shape.dims[0] = part.end - part.begin;
  return shape;
}

// Element offset of a part: the batch is the outermost dimension in both layouts.
int64_t PartOffset(const Geometry& g, const Part& part) { return part.begin * g.c * g.s; }

// The whole batch's statistics as every process gets them from the merge.
struct Merged {
  std::vector<float> mean, invstd, running_mean, running_var;
};

// Forward through the phases: local statistics per part, gathered in part
// order, merged, then each part normalized into its slice of y.
Merged ForwardInParts(const bnorm_desc& d, const bnorm_shape& shape, const Geometry& g,
                      const std::vector<float>& x, const float* gamma, const float* beta,
                      const std::vector<float>& running_mean, const std::vector<float>& running_var,
                      float* y) {
  const std::vector<Part> parts = SplitBatch(g.n);
  std::vector<double> gathered(parts.size() * kPerChannel * g.c, -7.0);
  for (size_t i = 0; i < parts.size(); ++i) {
    const bnorm_shape part_shape = PartShape(shape, parts[i]);
    EXPECT_EQ(bnorm_local_stats(&d, &part_shape, x.data() + PartOffset(g, parts[i]),
                                &gathered[i * kPerChannel * g.c]),
              BNORM_OK)
        << bnorm_last_error();
  }
  Merged m{std::vector<float>(g.c, -7.0f), std::vector<float>(g.c, -7.0f), running_mean,
           running_var};
  EXPECT_EQ(bnorm_merge_stats(&d, static_cast<int32_t>(parts.size()), gathered.data(), nullptr,
                              m.mean.data(), m.invstd.data(), m.running_mean.data(),
                              m.running_var.data()),
            BNORM_OK)
      << bnorm_last_error();
  for (const Part& part : parts) {
    const bnorm_shape part_shape = PartShape(shape, part);
    const int64_t offset = PartOffset(g, part);
    EXPECT_EQ(bnorm_forward_normalize(&d, &part_shape, x.data() + offset, y + offset, gamma, beta,
                                      m.mean.data(), m.invstd.data()),
              BNORM_OK)
        << bnorm_last_error();
  }
  return m;
}

// Per element, the error y may have: kOutputTolerance of the largest |y|, as
// for bnorm_forward_training, plus what the float mean the processes share
// carries, its rounding times |gamma| * invstd. (The fused call keeps the
// mean's low bits; that matters only for a mean large against the spread.)
std::vector<double> OutputBounds(const Geometry& g, const TrainingResult& want,
                                 const std::vector<float>& mean, const Inputs& in) {
  double largest = 1;
  for (double v : want.y) largest = std::max(largest, std::fabs(v));
  std::vector<double> bounds(g.Elements());
  for (int64_t c = 0; c < g.c; ++c) {
    const double gamma = in.gamma != nullptr ? std::fabs(in.gamma[c]) : 1.0;
    const double mean_rounding = std::fabs(mean[c] - want.mean[c]) * gamma * want.invstd[c];
    g.ForChannel(c, [&](int64_t i) { bounds[i] = kOutputTolerance * largest + mean_rounding; });
  }
  return bounds;
}

TEST_P(SplitPhaseTest, ForwardMatchesTheWholeBatchReference) {
  uint32_t seed = 1;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, seed++);
    for (uint32_t flags = 0; flags < 8; ++flags) {  // AFFINE x TRACK_RUNNING_STATS x FUSE_RELU
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      bnorm_desc d = Desc(g.c, layout(), flags);
      d.momentum = 0.25f;
      const std::vector<float> gamma = Uniform(g.c, -1.5f, 1.5f, seed++);
      const std::vector<float> beta = Uniform(g.c, -1, 1, seed++);
      const std::vector<float> running_mean = Uniform(g.c, -1, 1, seed++);
      const std::vector<float> running_var = Uniform(g.c, 0.5f, 2, seed++);
      std::vector<float> y(x.size(), -7.0f);
      const Merged m = ForwardInParts(d, shape, g, x, gamma.data(), beta.data(), running_mean,
                                      running_var, y.data());

      const bool affine = flags & BNORM_FLAG_AFFINE;
      Inputs in;
      in.gamma = affine ? gamma.data() : nullptr;
      in.beta = affine ? beta.data() : nullptr;
      in.eps = d.eps;
      in.relu = flags & BNORM_FLAG_FUSE_RELU;
      const TrainingResult want =
          ReferenceTraining(g, x.data(), in, d.momentum, running_mean.data(), running_var.data());
      EXPECT_TRUE(NearScaled("y", y.data(), want.y, OutputBounds(g, want, m.mean, in), 1.0));
      std::vector<double> spread(g.c), running_mean_scale(g.c);
      for (int64_t c = 0; c < g.c; ++c) {
        spread[c] = std::fabs(want.mean[c]) + std::sqrt(want.var[c]);
        running_mean_scale[c] = spread[c] + std::fabs(running_mean[c]);
      }
      EXPECT_TRUE(NearScaled("mean", m.mean.data(), want.mean, spread, kStatsTolerance));
      EXPECT_TRUE(NearScaled("invstd", m.invstd.data(), want.invstd, want.invstd, kStatsTolerance));
      if (flags & BNORM_FLAG_TRACK_RUNNING_STATS) {
        EXPECT_TRUE(NearScaled("running_mean", m.running_mean.data(), want.running_mean,
                               running_mean_scale, kStatsTolerance));
        EXPECT_TRUE(NearScaled("running_var", m.running_var.data(), want.running_var,
                               want.running_var, kStatsTolerance));
      } else {
        EXPECT_EQ(m.running_mean, running_mean);
        EXPECT_EQ(m.running_var, running_var);
      }
    }
  }
}

// What backward gets from a training step over the whole batch.
struct Step {
  std::vector<float> x, y, dy, gamma, mean, invstd;
  Step(const Geometry& g, uint32_t flags, uint32_t seed)
      : x(ChannelData(g, seed)),
        dy(Uniform(g.Elements(), -1, 1, seed + 1)),
        gamma(Uniform(g.c, -1.5f, 1.5f, seed + 2)) {
    Inputs in;
    in.gamma = gamma.data();
    in.relu = flags & BNORM_FLAG_FUSE_RELU;
    const TrainingResult forward = ReferenceTraining(g, x.data(), in, 0, nullptr, nullptr);
    y.assign(forward.y.begin(), forward.y.end());
    mean.assign(forward.mean.begin(), forward.mean.end());
    invstd.assign(forward.invstd.begin(), forward.invstd.end());
  }
};

// Backward through the phases. Each part's grad sums are gathered in part
// order; dgamma and dbeta are the sums of the parts' local ones, as
// data-parallel training sums parameter gradients.
struct PartsBackward {
  std::vector<double> gathered;
  std::vector<float> dx, dgamma, dbeta;
};

PartsBackward BackwardInParts(const bnorm_desc& d, const bnorm_shape& shape, const Geometry& g,
                              const Step& step) {
  const std::vector<Part> parts = SplitBatch(g.n);
  const int32_t k = static_cast<int32_t>(parts.size());
  PartsBackward out{std::vector<double>(k * kPerChannel * g.c, -7.0),
                    std::vector<float>(g.Elements(), -7.0f), std::vector<float>(g.c, 0.0f),
                    std::vector<float>(g.c, 0.0f)};
  for (int32_t i = 0; i < k; ++i) {
    const bnorm_shape part_shape = PartShape(shape, parts[i]);
    const int64_t offset = PartOffset(g, parts[i]);
    std::vector<float> dgamma(g.c, -7.0f), dbeta(g.c, -7.0f);
    EXPECT_EQ(
        bnorm_backward_reduce(&d, &part_shape, step.x.data() + offset, step.dy.data() + offset,
                              step.y.data() + offset, step.mean.data(), step.invstd.data(),
                              &out.gathered[i * kPerChannel * g.c], dgamma.data(), dbeta.data()),
        BNORM_OK)
        << bnorm_last_error();
    for (int64_t c = 0; c < g.c; ++c) {
      out.dgamma[c] += dgamma[c];
      out.dbeta[c] += dbeta[c];
    }
  }
  for (const Part& part : parts) {
    const bnorm_shape part_shape = PartShape(shape, part);
    const int64_t offset = PartOffset(g, part);
    EXPECT_EQ(bnorm_backward_elementwise(&d, &part_shape, step.x.data() + offset,
                                         step.dy.data() + offset, step.y.data() + offset,
                                         step.gamma.data(), step.mean.data(), step.invstd.data(), k,
                                         out.gathered.data(), out.dx.data() + offset),
              BNORM_OK)
        << bnorm_last_error();
  }
  return out;
}

constexpr uint32_t kBackwardFlags[] = {
    0,
    BNORM_FLAG_AFFINE,
    BNORM_FLAG_FUSE_RELU,
    BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU,
    BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE,
    BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU,
};

TEST_P(SplitPhaseTest, BackwardMatchesTheWholeBatchReference) {
  uint32_t seed = 1000;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    const Geometry g = Geometry::Of(shape, layout());
    for (uint32_t flags : kBackwardFlags) {
      SCOPED_TRACE(ToString(shape) + " " + FlagNames(flags));
      const Step step(g, flags, seed += 10);
      const bnorm_desc d = Desc(g.c, layout(), flags);
      const PartsBackward got = BackwardInParts(d, shape, g, step);
      const BackwardResult want = ReferenceBackward(
          g, step.x.data(), step.dy.data(), step.y.data(),
          flags & BNORM_FLAG_AFFINE ? step.gamma.data() : nullptr, step.mean.data(),
          step.invstd.data(), flags & BNORM_FLAG_FUSE_RELU, flags & BNORM_FLAG_USE_GLOBAL_STATS);
      ExpectMatchesBackward(want, got.dx.data(), got.dgamma.data(), got.dbeta.data());
    }
  }
}

// An allreduce hands every process one block, the sum of all; summed in block
// order it is the same as passing the gathered blocks.
TEST_P(SplitPhaseTest, SummedGradSumsGiveTheSameDxAsGatheredBlocks) {
  const bnorm_shape shape = InLayout({7, 17, 5, 3}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  const uint32_t flags = BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU;
  const Step step(g, flags, 5);
  const bnorm_desc d = Desc(g.c, layout(), flags);
  const PartsBackward gathered = BackwardInParts(d, shape, g, step);
  const int64_t blocks = static_cast<int64_t>(gathered.gathered.size()) / (kPerChannel * g.c);
  std::vector<double> summed(kPerChannel * g.c, 0.0);
  for (int64_t i = 0; i < blocks; ++i) {
    for (size_t j = 0; j < summed.size(); ++j)
      summed[j] += gathered.gathered[i * summed.size() + j];
  }
  std::vector<float> dx(g.Elements(), -7.0f);
  ASSERT_EQ(bnorm_backward_elementwise(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                                       step.gamma.data(), step.mean.data(), step.invstd.data(), 1,
                                       summed.data(), dx.data()),
            BNORM_OK)
      << bnorm_last_error();
  EXPECT_EQ(dx, gathered.dx);
}

// One process holding the whole batch: the phases give what the fused calls give.
TEST_P(SplitPhaseTest, OnePartAgreesWithTheFusedCalls) {
  uint32_t seed = 3000;
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const uint32_t flags = BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS;
    const bnorm_desc d = Desc(g.c, layout(), flags);
    const std::vector<float> x = ChannelData(g, seed++);
    const std::vector<float> gamma = Uniform(g.c, -1.5f, 1.5f, seed++);
    const std::vector<float> beta = Uniform(g.c, -1, 1, seed++);
    std::vector<float> running_mean(g.c, 0.5f), running_var(g.c, 2.0f);
    std::vector<float> save_mean(g.c), save_invstd(g.c), y(x.size());
    ASSERT_EQ(bnorm_forward_training(&d, &shape, x.data(), y.data(), gamma.data(), beta.data(),
                                     running_mean.data(), running_var.data(), save_mean.data(),
                                     save_invstd.data()),
              BNORM_OK);
    std::vector<double> stats(kPerChannel * g.c);
    ASSERT_EQ(bnorm_local_stats(&d, &shape, x.data(), stats.data()), BNORM_OK);
    std::vector<float> mean(g.c), invstd(g.c), split_rm(g.c, 0.5f), split_rv(g.c, 2.0f);
    ASSERT_EQ(bnorm_merge_stats(&d, 1, stats.data(), nullptr, mean.data(), invstd.data(),
                                split_rm.data(), split_rv.data()),
              BNORM_OK);
    // The same sums, so the same mean; the variance's last rounding may differ.
    EXPECT_EQ(mean, save_mean);
    std::vector<double> want_invstd(save_invstd.begin(), save_invstd.end());
    std::vector<double> want_rv(running_var.begin(), running_var.end());
    std::vector<double> want_rm(running_mean.begin(), running_mean.end());
    EXPECT_TRUE(NearScaled("invstd", invstd.data(), want_invstd, want_invstd, kStatsTolerance));
    EXPECT_TRUE(NearScaled("running_var", split_rv.data(), want_rv, want_rv, kStatsTolerance));
    EXPECT_TRUE(NearScaled("running_mean", split_rm.data(), want_rm, std::vector<double>(g.c, 1.0),
                           kStatsTolerance));
    std::vector<float> split_y(x.size());
    ASSERT_EQ(bnorm_forward_normalize(&d, &shape, x.data(), split_y.data(), gamma.data(),
                                      beta.data(), mean.data(), invstd.data()),
              BNORM_OK);
    std::vector<double> want_y(y.begin(), y.end());
    EXPECT_TRUE(NearAll("y", split_y.data(), want_y, kOutputTolerance));
  }
}

TEST_P(SplitPhaseTest, LocalStatsDoNotDependOnThreads) {
  for (const bnorm_shape& shape : SweepShapes(layout())) {
    SCOPED_TRACE(ToString(shape));
    const Geometry g = Geometry::Of(shape, layout());
    const std::vector<float> x = ChannelData(g, 11);
    bnorm_desc d = Desc(g.c, layout(), 0);
    d.num_threads = 1;
    std::vector<double> serial(kPerChannel * g.c), threaded(kPerChannel * g.c);
    ASSERT_EQ(bnorm_local_stats(&d, &shape, x.data(), serial.data()), BNORM_OK);
    d.num_threads = 3;
    ASSERT_EQ(bnorm_local_stats(&d, &shape, x.data(), threaded.data()), BNORM_OK);
    EXPECT_EQ(0, memcmp(serial.data(), threaded.data(), serial.size() * sizeof(double)));
  }
}

// Blocks (count, mean, M2) for three parts of 17 channels, from real data.
std::vector<double> ThreeBlocks(bnorm_layout layout) {
  const bnorm_shape shape = InLayout({6, 17, 4, 4}, layout);
  const Geometry g = Geometry::Of(shape, layout);
  const std::vector<float> x = ChannelData(g, 21);
  bnorm_desc d = Desc(g.c, layout, 0);
  std::vector<double> blocks(3 * kPerChannel * g.c);
  const Part parts[] = {{0, 1}, {1, 4}, {4, 6}};
  for (int i = 0; i < 3; ++i) {
    const bnorm_shape part_shape = PartShape(shape, parts[i]);
    EXPECT_EQ(bnorm_local_stats(&d, &part_shape, x.data() + PartOffset(g, parts[i]),
                                &blocks[i * kPerChannel * g.c]),
              BNORM_OK);
  }
  return blocks;
}

// Every process merges the blocks it gathered; the same blocks must give the
// same bits, and a merge of merges (node, then cluster) the same as one merge.
TEST_P(SplitPhaseTest, MergeIsDeterministicAndComposes) {
  const int64_t c = 17, block = kPerChannel * c;
  const bnorm_desc d = Desc(c, layout(), BNORM_FLAG_TRACK_RUNNING_STATS);
  const std::vector<double> blocks = ThreeBlocks(layout());

  std::vector<double> flat(block), again(block);
  std::vector<float> mean(c), invstd(c), rm(c, 0.0f), rv(c, 1.0f);
  std::vector<float> mean2(c), invstd2(c), rm2(c, 0.0f), rv2(c, 1.0f);
  ASSERT_EQ(bnorm_merge_stats(&d, 3, blocks.data(), flat.data(), mean.data(), invstd.data(),
                              rm.data(), rv.data()),
            BNORM_OK);
  ASSERT_EQ(bnorm_merge_stats(&d, 3, blocks.data(), again.data(), mean2.data(), invstd2.data(),
                              rm2.data(), rv2.data()),
            BNORM_OK);
  EXPECT_EQ(0, memcmp(flat.data(), again.data(), block * sizeof(double)));
  EXPECT_EQ(mean, mean2);
  EXPECT_EQ(invstd, invstd2);
  EXPECT_EQ(rm, rm2);
  EXPECT_EQ(rv, rv2);

  // Blocks 0 and 1 merged in place, then merged with block 2.
  std::vector<double> staged = blocks;
  const bnorm_desc no_running = Desc(c, layout(), 0);
  ASSERT_EQ(bnorm_merge_stats(&no_running, 2, staged.data(), staged.data(), nullptr, nullptr,
                              nullptr, nullptr),
            BNORM_OK)
      << bnorm_last_error();
  std::vector<double> pair(staged.begin(), staged.begin() + block);
  pair.insert(pair.end(), blocks.begin() + 2 * block, blocks.end());
  std::vector<double> staged_total(block);
  ASSERT_EQ(bnorm_merge_stats(&no_running, 2, pair.data(), staged_total.data(), nullptr, nullptr,
                              nullptr, nullptr),
            BNORM_OK);
  EXPECT_EQ(0, memcmp(flat.data(), staged_total.data(), block * sizeof(double)));

  // A block with count 0 (a process with nothing this step) changes nothing.
  std::vector<double> with_empty(blocks.begin(), blocks.begin() + block);
  with_empty.resize(2 * block, 0.0);
  with_empty.insert(with_empty.end(), blocks.begin() + block, blocks.end());
  std::vector<double> skipped(block);
  ASSERT_EQ(bnorm_merge_stats(&no_running, 4, with_empty.data(), skipped.data(), nullptr, nullptr,
                              nullptr, nullptr),
            BNORM_OK)
      << bnorm_last_error();
  EXPECT_EQ(0, memcmp(flat.data(), skipped.data(), block * sizeof(double)));
}

TEST_P(SplitPhaseTest, InPlaceGivesTheSameResult) {
  const bnorm_shape shape = InLayout({5, 3, 7, 2}, layout());
  const Geometry g = Geometry::Of(shape, layout());
  const uint32_t flags = BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU;
  const bnorm_desc d = Desc(g.c, layout(), flags);
  Step step(g, flags, 99);
  const std::vector<float> beta = Uniform(g.c, -1, 1, 98);
  std::vector<float> y(g.Elements());
  ASSERT_EQ(bnorm_forward_normalize(&d, &shape, step.x.data(), y.data(), step.gamma.data(),
                                    beta.data(), step.mean.data(), step.invstd.data()),
            BNORM_OK);
  std::vector<float> data = step.x;
  ASSERT_EQ(bnorm_forward_normalize(&d, &shape, data.data(), data.data(), step.gamma.data(),
                                    beta.data(), step.mean.data(), step.invstd.data()),
            BNORM_OK)
      << bnorm_last_error();
  EXPECT_EQ(data, y);

  std::vector<double> sums(kPerChannel * g.c);
  ASSERT_EQ(
      bnorm_backward_reduce(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                            step.mean.data(), step.invstd.data(), sums.data(), nullptr, nullptr),
      BNORM_OK);
  std::vector<float> dx(g.Elements());
  ASSERT_EQ(bnorm_backward_elementwise(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                                       step.gamma.data(), step.mean.data(), step.invstd.data(), 1,
                                       sums.data(), dx.data()),
            BNORM_OK);
  ASSERT_EQ(bnorm_backward_elementwise(&d, &shape, step.x.data(), step.dy.data(), step.y.data(),
                                       step.gamma.data(), step.mean.data(), step.invstd.data(), 1,
                                       sums.data(), step.dy.data()),
            BNORM_OK)
      << bnorm_last_error();
  EXPECT_EQ(step.dy, dx);
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(SplitPhaseTest);

// Misuse is reported with the numbers involved, and nothing is written.
class SplitPhaseValidation : public ::testing::Test {
 protected:
  static constexpr int64_t kC = 3;
  const bnorm_desc d_ = Desc(kC, BNORM_LAYOUT_NCHW, BNORM_FLAG_AFFINE);
  const bnorm_shape shape_ = Shape({4, kC, 5});
  const std::vector<float> x_ = Uniform(4 * kC * 5, -1, 1, 1);
  const std::vector<float> dy_ = Uniform(4 * kC * 5, -1, 1, 2);
  const std::vector<float> gamma_ = std::vector<float>(kC, 1.0f);
  const std::vector<float> mean_ = std::vector<float>(kC, 0.0f);
  const std::vector<float> invstd_ = std::vector<float>(kC, 1.0f);

  // Two valid blocks of stats: 20 values per channel each.
  std::vector<double> Blocks() const {
    std::vector<double> b;
    for (int i = 0; i < 2; ++i) {
      for (int64_t c = 0; c < kC; ++c) b.insert(b.end(), {20.0, 0.5 * i, 3.0});
    }
    return b;
  }

  // Merges `blocks` into sentinel-filled outputs; expects `status` and that
  // the message contains `message`, and, on failure, that nothing was written.
  void ExpectMerge(const std::vector<double>& blocks, int32_t num_partials, bnorm_status status,
                   const std::string& message) {
    std::vector<float> mean(kC, -7.0f), invstd(kC, -7.0f);
    std::vector<double> merged(kPerChannel * kC, -7.0);
    EXPECT_EQ(bnorm_merge_stats(&d_, num_partials, blocks.data(), merged.data(), mean.data(),
                                invstd.data(), nullptr, nullptr),
              status);
    EXPECT_NE(std::string(bnorm_last_error()).find(message), std::string::npos)
        << bnorm_last_error();
    if (status != BNORM_OK) {
      EXPECT_EQ(mean, std::vector<float>(kC, -7.0f));
      EXPECT_EQ(invstd, std::vector<float>(kC, -7.0f));
      EXPECT_EQ(merged, std::vector<double>(kPerChannel * kC, -7.0));
    }
  }
};

TEST_F(SplitPhaseValidation, ChannelMismatchNamesBothNumbers) {
  const bnorm_desc wide = Desc(8, BNORM_LAYOUT_NCHW, 0);
  std::vector<double> stats(kPerChannel * 8, -7.0);
  EXPECT_EQ(bnorm_local_stats(&wide, &shape_, x_.data(), stats.data()), BNORM_ERR_FEATURE_MISMATCH);
  EXPECT_STREQ(bnorm_last_error(), "input channel dimension (dim 1) is 3 but num_features is 8");
  EXPECT_EQ(stats, std::vector<double>(kPerChannel * 8, -7.0));
}

TEST_F(SplitPhaseValidation, MergeChecksTheBlocks) {
  ExpectMerge(Blocks(), 2, BNORM_OK, "");
  ExpectMerge(Blocks(), 0, BNORM_ERR_INVALID_ARGUMENT, "num_partials is 0");
  std::vector<double> b = Blocks();
  b[kPerChannel * kC + kPerChannel * 2] = 2.5;  // block 1, channel 2: count
  ExpectMerge(
      b, 2, BNORM_ERR_INVALID_ARGUMENT,
      "partial_stats block 1, channel 2: count is 2.5; it must be a whole number from 0 to 2^53");
  b = Blocks();
  b[kPerChannel * 1] = -20;  // block 0, channel 1: count
  ExpectMerge(b, 2, BNORM_ERR_INVALID_ARGUMENT, "block 0, channel 1: count is -20");
  b = Blocks();
  b[kPerChannel * 1 + 2] = -0.5;  // block 0, channel 1: M2
  ExpectMerge(b, 2, BNORM_ERR_INVALID_ARGUMENT, "block 0, channel 1: M2 is -0.5");
  b = Blocks();
  for (int64_t i = 0; i < 2 * kC; ++i) b[kPerChannel * i] = i < kC ? 1 : 0;
  ExpectMerge(b, 2, BNORM_ERR_TOO_FEW_VALUES, "more than 1 value per channel in all, got 1");
  b = Blocks();
  ExpectMerge(b, 2, BNORM_OK, "");
  std::vector<float> mean(kC);
  EXPECT_EQ(bnorm_merge_stats(&d_, 2, nullptr, nullptr, mean.data(), nullptr, nullptr, nullptr),
            BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "partial_stats is NULL");
  // merged_stats may be exactly the first block, not another part of it.
  EXPECT_EQ(bnorm_merge_stats(&d_, 2, b.data(), b.data() + 1, nullptr, nullptr, nullptr, nullptr),
            BNORM_ERR_ALIASING);
  EXPECT_STREQ(bnorm_last_error(),
               "merged_stats overlaps partial_stats (in place is allowed only with the same "
               "pointer)");
  EXPECT_EQ(b, Blocks());
  const bnorm_desc tracking = Desc(kC, BNORM_LAYOUT_NCHW, BNORM_FLAG_TRACK_RUNNING_STATS);
  EXPECT_EQ(bnorm_merge_stats(&tracking, 2, b.data(), nullptr, nullptr, nullptr, nullptr, nullptr),
            BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(),
               "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set");
}

// Every block is checked before any total, so the error does not depend on
// where in the channels (or in the library's tiling of them) each problem is.
TEST_F(SplitPhaseValidation, MalformedBlocksAreReportedBeforeTotals) {
  const int64_t c = 300;
  const bnorm_desc d = Desc(c, BNORM_LAYOUT_NCHW, 0);
  std::vector<double> blocks(kPerChannel * c, 0.0);
  for (int64_t i = 0; i < c; ++i) blocks[kPerChannel * i] = 20;
  blocks[0] = 1;                    // channel 0: too few in all
  blocks[kPerChannel * 299] = 0.5;  // channel 299: not a count
  std::vector<float> mean(c, -7.0f);
  EXPECT_EQ(
      bnorm_merge_stats(&d, 1, blocks.data(), nullptr, mean.data(), nullptr, nullptr, nullptr),
      BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("block 0, channel 299: count is 0.5"),
            std::string::npos)
      << bnorm_last_error();
  EXPECT_EQ(mean, std::vector<float>(c, -7.0f));
}

// A num_features no buffer can hold is still checked without overflow.
TEST_F(SplitPhaseValidation, HugeChannelCountsDoNotOverflow) {
  const int64_t c = int64_t{3} << 60;  // 3 * c overflows int64
  bnorm_desc d = Desc(c, BNORM_LAYOUT_NHWC, 0);
  d.dtype = BNORM_DTYPE_BF16;
  const bnorm_shape shape = Shape({1, c});
  EXPECT_EQ(bnorm_local_stats(&d, &shape, x_.data(), nullptr), BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "partial_stats is NULL");
  EXPECT_EQ(bnorm_backward_reduce(&d, &shape, x_.data(), dy_.data(), nullptr, mean_.data(),
                                  invstd_.data(), nullptr, nullptr, nullptr),
            BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "grad_sums is NULL");
}

// NaN data gives NaN statistics, which the merge passes on.
TEST_F(SplitPhaseValidation, NanDataGivesNanStatistics) {
  std::vector<float> x = x_;
  x[5] = std::nanf("");  // sample 0, channel 1
  std::vector<double> stats(kPerChannel * kC);
  ASSERT_EQ(bnorm_local_stats(&d_, &shape_, x.data(), stats.data()), BNORM_OK);
  EXPECT_TRUE(std::isnan(stats[kPerChannel * 1 + 1]));
  EXPECT_TRUE(std::isnan(stats[kPerChannel * 1 + 2]));
  EXPECT_FALSE(std::isnan(stats[kPerChannel * 2 + 2]));
  std::vector<float> mean(kC), invstd(kC);
  ASSERT_EQ(bnorm_merge_stats(&d_, 1, stats.data(), nullptr, mean.data(), invstd.data(), nullptr,
                              nullptr),
            BNORM_OK)
      << bnorm_last_error();
  EXPECT_TRUE(std::isnan(mean[1]) && std::isnan(invstd[1]));
  EXPECT_FALSE(std::isnan(mean[0]) || std::isnan(invstd[0]));
}

TEST_F(SplitPhaseValidation, OnePartWithOneValuePerChannelIsFine) {
  const bnorm_shape one = Shape({1, kC});
  std::vector<double> stats(kPerChannel * kC);
  ASSERT_EQ(bnorm_local_stats(&d_, &one, x_.data(), stats.data()), BNORM_OK) << bnorm_last_error();
  for (int64_t c = 0; c < kC; ++c) {
    EXPECT_EQ(stats[kPerChannel * c], 1.0);
    EXPECT_EQ(stats[kPerChannel * c + 1], x_[c]);
    EXPECT_EQ(stats[kPerChannel * c + 2], 0.0);
  }
  // Alone it is too few for statistics.
  std::vector<float> mean(kC, -7.0f);
  EXPECT_EQ(
      bnorm_merge_stats(&d_, 1, stats.data(), nullptr, mean.data(), nullptr, nullptr, nullptr),
      BNORM_ERR_TOO_FEW_VALUES);
  EXPECT_EQ(mean, std::vector<float>(kC, -7.0f));
}

TEST_F(SplitPhaseValidation, BackwardElementwiseChecksTheSums) {
  std::vector<double> sums(kPerChannel * kC);
  ASSERT_EQ(bnorm_backward_reduce(&d_, &shape_, x_.data(), dy_.data(), nullptr, mean_.data(),
                                  invstd_.data(), sums.data(), nullptr, nullptr),
            BNORM_OK);
  EXPECT_EQ(sums[0], 20.0);
  std::vector<float> dx(x_.size(), -7.0f);
  auto run = [&](int32_t num_partials, const double* s) {
    return bnorm_backward_elementwise(&d_, &shape_, x_.data(), dy_.data(), nullptr, gamma_.data(),
                                      mean_.data(), invstd_.data(), num_partials, s, dx.data());
  };
  std::vector<double> few = sums;
  few[kPerChannel * 2] = 12;  // channel 2's total below this part's 20 values
  EXPECT_EQ(run(1, few.data()), BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(bnorm_last_error(),
               "grad_sums channel 2: the total count is 12 but this part, of shape (4, 3, 5), "
               "alone has 20 values per channel; pass the sums of every process (allreduced, or "
               "all blocks gathered)");
  few[kPerChannel * 2] = 20.5;
  EXPECT_EQ(run(1, few.data()), BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("grad_sums block 0, channel 2: count is 20.5"),
            std::string::npos);
  EXPECT_EQ(run(-1, sums.data()), BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("num_partials is -1"), std::string::npos);
  EXPECT_EQ(run(1, nullptr), BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "grad_sums is NULL");
  EXPECT_EQ(dx, std::vector<float>(x_.size(), -7.0f));
  // Too few values in all: one part of one value per channel, alone.
  const bnorm_shape one = Shape({1, kC});
  std::vector<double> one_sums(kPerChannel * kC);
  ASSERT_EQ(bnorm_backward_reduce(&d_, &one, x_.data(), dy_.data(), nullptr, mean_.data(),
                                  invstd_.data(), one_sums.data(), nullptr, nullptr),
            BNORM_OK);
  EXPECT_EQ(bnorm_backward_elementwise(&d_, &one, x_.data(), dy_.data(), nullptr, gamma_.data(),
                                       mean_.data(), invstd_.data(), 1, one_sums.data(), dx.data()),
            BNORM_ERR_TOO_FEW_VALUES);
  EXPECT_EQ(dx, std::vector<float>(x_.size(), -7.0f));
  // Frozen statistics: the sums are not needed.
  const bnorm_desc frozen = Desc(kC, BNORM_LAYOUT_NCHW, BNORM_FLAG_USE_GLOBAL_STATS);
  EXPECT_EQ(bnorm_backward_elementwise(&frozen, &one, x_.data(), dy_.data(), nullptr, nullptr,
                                       mean_.data(), invstd_.data(), 0, nullptr, dx.data()),
            BNORM_OK)
      << bnorm_last_error();
  for (int64_t c = 0; c < kC; ++c) EXPECT_EQ(dx[c], dy_[c]);  // gamma 1, invstd 1
}

TEST_F(SplitPhaseValidation, BackwardReduceNeedsYWithFusedRelu) {
  const bnorm_desc relu = Desc(kC, BNORM_LAYOUT_NCHW, BNORM_FLAG_FUSE_RELU);
  std::vector<double> sums(kPerChannel * kC, -7.0);
  EXPECT_EQ(bnorm_backward_reduce(&relu, &shape_, x_.data(), dy_.data(), nullptr, mean_.data(),
                                  invstd_.data(), sums.data(), nullptr, nullptr),
            BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "y is NULL but BNORM_FLAG_FUSE_RELU is set");
  EXPECT_EQ(sums, std::vector<double>(kPerChannel * kC, -7.0));
}

}  // namespace
}  // namespace bnorm_test
