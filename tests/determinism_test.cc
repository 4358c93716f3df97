// Results depend on the shape only: bit-identical for any num_threads, from
// run to run, and when many threads call bnorm at once.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

// Everything one training step writes.
struct Outputs {
  std::vector<float> y, running_mean, running_var, save_mean, save_invstd, dx, dgamma, dbeta,
      inference_y;
  bool operator==(const Outputs& o) const {
    return y == o.y && running_mean == o.running_mean && running_var == o.running_var &&
           save_mean == o.save_mean && save_invstd == o.save_invstd && dx == o.dx &&
           dgamma == o.dgamma && dbeta == o.dbeta && inference_y == o.inference_y;
  }
};

struct Case {
  bnorm_shape shape;
  bnorm_layout layout;
};

// Large enough that the library uses several threads (it gives each at least
// a few hundred KiB), covering both ways of walking channels-first data,
// fewer channels than threads, and channels-last.
std::vector<Case> Cases() {
  return {
      {Shape({8, 64, 32, 32}), BNORM_LAYOUT_NCHW},  {Shape({2, 3, 300, 300}), BNORM_LAYOUT_NCHW},
      {Shape({1, 1, 1000003}), BNORM_LAYOUT_NCHW},  {Shape({256, 17, 7, 7}), BNORM_LAYOUT_NCHW},
      {Shape({16, 28, 28, 64}), BNORM_LAYOUT_NHWC}, {Shape({8, 224, 224, 3}), BNORM_LAYOUT_NHWC},
      {Shape({4096, 67}), BNORM_LAYOUT_NHWC},       {Shape({4096, 67}), BNORM_LAYOUT_NCHW}};
}

class Step {
 public:
  explicit Step(const Case& c) : c_(c), g_(Geometry::Of(c.shape, c.layout)) {
    x_ = ChannelData(g_, 1);
    dy_ = Uniform(g_.Elements(), -1, 1, 2);
    gamma_ = Uniform(g_.c, 0.5f, 2, 3);
    beta_ = Uniform(g_.c, -1, 1, 4);
  }

  Outputs Run(int32_t num_threads) const {
    bnorm_desc d = Desc(g_.c, c_.layout, BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS);
    d.num_threads = num_threads;
    Outputs o;
    o.y.resize(x_.size());
    o.running_mean.assign(g_.c, 0.0f);
    o.running_var.assign(g_.c, 1.0f);
    o.save_mean.resize(g_.c);
    o.save_invstd.resize(g_.c);
    EXPECT_EQ(bnorm_forward_training(&d, &c_.shape, x_.data(), o.y.data(), gamma_.data(),
                                     beta_.data(), o.running_mean.data(), o.running_var.data(),
                                     o.save_mean.data(), o.save_invstd.data()),
              BNORM_OK);
    o.dx.resize(x_.size());
    o.dgamma.resize(g_.c);
    o.dbeta.resize(g_.c);
    EXPECT_EQ(bnorm_backward(&d, &c_.shape, x_.data(), dy_.data(), nullptr, gamma_.data(),
                             o.save_mean.data(), o.save_invstd.data(), o.dx.data(), o.dgamma.data(),
                             o.dbeta.data()),
              BNORM_OK);
    o.inference_y.resize(x_.size());
    EXPECT_EQ(bnorm_forward_inference(&d, &c_.shape, x_.data(), o.inference_y.data(),
                                      o.running_mean.data(), o.running_var.data(), gamma_.data(),
                                      beta_.data()),
              BNORM_OK);
    return o;
  }

 private:
  Case c_;
  Geometry g_;
  std::vector<float> x_, dy_, gamma_, beta_;
};

TEST(DeterminismTest, BitIdenticalForAnyThreadCount) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(ToString(c.shape) + " " + LayoutName(c.layout));
    const Step step(c);
    const Outputs one_thread = step.Run(1);
    for (int32_t threads : {2, 3, 0}) {
      SCOPED_TRACE("num_threads " + std::to_string(threads));
      EXPECT_TRUE(step.Run(threads) == one_thread);
    }
  }
}

TEST(DeterminismTest, BitIdenticalFromRunToRun) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(ToString(c.shape) + " " + LayoutName(c.layout));
    const Step step(c);
    const Outputs first = step.Run(2);
    EXPECT_TRUE(step.Run(2) == first);
  }
}

// bnorm keeps no state between calls besides the target choice and each
// thread's last error, so callers on many threads at once get what one would.
TEST(DeterminismTest, ConcurrentCallersGetTheSameResults) {
  const Case c = {Shape({4, 32, 24, 24}), BNORM_LAYOUT_NHWC};
  const Step step(c);
  const Outputs want = step.Run(1);
  std::vector<std::thread> callers;
  std::vector<int> agreed(6, 0);
  for (size_t t = 0; t < agreed.size(); ++t) {
    callers.emplace_back([&, t] {
      bool all = true;
      for (int round = 0; round < 5; ++round) all = all && step.Run(1) == want;
      agreed[t] = all;
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (size_t t = 0; t < agreed.size(); ++t) EXPECT_TRUE(agreed[t]) << "caller " << t;
}

}  // namespace
}  // namespace bnorm_test
