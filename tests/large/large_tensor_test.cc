// A tensor of more than 2^31 values, run for real through the C API: 8 GiB a
// buffer, so it runs only when asked, with BNORM_TEST_LARGE=1 (scripts/test.sh
// asks when the machine has the memory free). Each case works in place, so
// one buffer is alive at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"

namespace {

constexpr int64_t kPast2To31 = (int64_t{1} << 31) + 33;

bool Requested() {
  const char* v = std::getenv("BNORM_TEST_LARGE");
  return v != nullptr && std::string(v) == "1";
}

// Exact small values with a period of 1024, so sums are known in closed form.
float Pattern(int64_t i) { return static_cast<float>(i % 1024) / 256.0f - 2.0f; }

constexpr int64_t kPeriod = 1024;

struct Buffer {
  std::unique_ptr<float[]> data;
  explicit Buffer(int64_t n) : data(new (std::nothrow) float[n]) {
    if (!data) return;
    for (int64_t i = 0; i < std::min(n, kPeriod); ++i) data[i] = Pattern(i);
    for (int64_t i = kPeriod; i < n; i += kPeriod) {
      std::copy_n(data.get(), std::min(kPeriod, n - i), data.get() + i);
    }
  }
};

// Mean and biased variance of Pattern over positions first, first + step, ...
// (count of them): whole periods of the sequence in closed form, then the rest.
void PatternMoments(int64_t count, int64_t first, int64_t step, double* mean, double* var) {
  const int64_t period = kPeriod / std::gcd(step, kPeriod);
  double period_sum = 0, period_sq = 0, sum = 0, sum_sq = 0;
  for (int64_t k = 0; k < period; ++k) {
    const double v = Pattern(first + k * step);
    period_sum += v;
    period_sq += v * v;
    if (k < count % period) {
      sum += v;
      sum_sq += v * v;
    }
  }
  sum += static_cast<double>(count / period) * period_sum;
  sum_sq += static_cast<double>(count / period) * period_sq;
  *mean = sum / count;
  *var = sum_sq / count - *mean * *mean;
}

TEST(LargeTensorTest, InferenceInPlaceChannelsFirst) {
  if (!Requested()) GTEST_SKIP() << "set BNORM_TEST_LARGE=1 to run (needs 9 GiB)";
  const bnorm_shape shape = {3, {1, 1, kPast2To31}};
  Buffer x(kPast2To31);
  ASSERT_TRUE(x.data) << "could not allocate 8 GiB";
  bnorm_desc desc;
  bnorm_desc_init(&desc, 1);
  const float mean[1] = {0.5f}, var[1] = {4.0f - 1e-5f}, gamma[1] = {2.0f}, beta[1] = {1.0f};
  ASSERT_EQ(
      bnorm_forward_inference(&desc, &shape, x.data.get(), x.data.get(), mean, var, gamma, beta),
      BNORM_OK)
      << bnorm_last_error();
  const double invstd = 1.0 / std::sqrt(static_cast<double>(var[0]) + 1e-5);
  for (int64_t i : {int64_t{0}, (int64_t{1} << 31) - 1, int64_t{1} << 31, kPast2To31 - 1}) {
    const double want = (Pattern(i) - 0.5) * invstd * 2.0 + 1.0;
    EXPECT_NEAR(x.data[i], want, 1e-5) << "index " << i;
  }
}

// Training in place on one channel of 2^31 + 33 values (NCHW) and two
// channels of 2^30 + 17 values each (NHWC): the batch statistics, which sum
// across the 2^31 boundary, and the output on both sides of it.
void CheckTraining(bnorm_layout layout, const bnorm_shape& shape, int64_t channels) {
  int64_t total = 1;
  for (int i = 0; i < shape.rank; ++i) total *= shape.dims[i];
  Buffer x(total);
  ASSERT_TRUE(x.data) << "could not allocate " << total * 4 << " bytes";
  bnorm_desc desc;
  bnorm_desc_init(&desc, channels);
  desc.layout = layout;
  desc.flags = BNORM_FLAG_TRACK_RUNNING_STATS;
  std::vector<float> running_mean(channels, 0.0f), running_var(channels, 1.0f);
  std::vector<float> save_mean(channels), save_invstd(channels);
  ASSERT_EQ(bnorm_forward_training(&desc, &shape, x.data.get(), x.data.get(), nullptr, nullptr,
                                   running_mean.data(), running_var.data(), save_mean.data(),
                                   save_invstd.data()),
            BNORM_OK)
      << bnorm_last_error();
  const int64_t count = total / channels;
  for (int64_t c = 0; c < channels; ++c) {
    // Channel c holds positions c, c + C, ... (NHWC) or one block (NCHW, C = 1).
    double mean, var;
    PatternMoments(count, c, channels, &mean, &var);
    EXPECT_NEAR(save_mean[c], mean, 1e-6) << "channel " << c;
    EXPECT_NEAR(save_invstd[c], 1.0 / std::sqrt(var + 1e-5), 1e-6 / var) << "channel " << c;
    EXPECT_NEAR(running_mean[c], 0.1 * mean, 1e-6) << "channel " << c;
    for (int64_t i : {c, total - channels + c, (int64_t{1} << 31) - channels + c}) {
      const double want = (Pattern(i) - mean) / std::sqrt(var + 1e-5);
      EXPECT_NEAR(x.data[i], want, 1e-4) << "channel " << c << " index " << i;
    }
  }
}

TEST(LargeTensorTest, TrainingInPlaceChannelsFirst) {
  if (!Requested()) GTEST_SKIP() << "set BNORM_TEST_LARGE=1 to run (needs 9 GiB)";
  CheckTraining(BNORM_LAYOUT_NCHW, bnorm_shape{3, {1, 1, kPast2To31}}, 1);
}

TEST(LargeTensorTest, TrainingInPlaceChannelsLast) {
  if (!Requested()) GTEST_SKIP() << "set BNORM_TEST_LARGE=1 to run (needs 9 GiB)";
  CheckTraining(BNORM_LAYOUT_NHWC, bnorm_shape{2, {(int64_t{1} << 30) + 17, 2}}, 2);
}

}  // namespace
