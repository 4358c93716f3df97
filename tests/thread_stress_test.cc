// Many threads calling bnorm at once, each call also parallel inside through
// OpenMP, get bit for bit what serial calls get, and each thread's
// bnorm_last_error() speaks of its own calls only. scripts/tsan.sh runs this
// test under ThreadSanitizer.
#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <iostream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

constexpr int kCallers = 8;

// Rounds per thread: enough for every pair of cases to overlap many times,
// and about a second in Release on two cores (ten under ThreadSanitizer).
constexpr int kRounds = 1200;

// Holds every thread until all have started, so that their calls overlap
// instead of following one another as the threads are created. (std::latch is
// C++20.)
class StartingLine {
 public:
  explicit StartingLine(int threads) : waiting_(threads) {}

  void ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (--waiting_ == 0) {
      everyone_here_.notify_all();
    } else {
      everyone_here_.wait(lock, [this] { return waiting_ == 0; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable everyone_here_;
  int waiting_;
};

// The fused calls, the residual block's, and the split phases of one process
// (each a chain of calls; their exchanged blocks are outputs too).
enum class Mode {
  kInference,
  kTraining,
  kBackward,
  kTrainingResidual,
  kBackwardResidual,
  kSplitForward,
  kSplitBackward
};

bool IsBackward(Mode m) {
  return m == Mode::kBackward || m == Mode::kBackwardResidual || m == Mode::kSplitBackward;
}

struct Case {
  Mode mode;
  bnorm_layout layout;
  bnorm_shape shape;
  uint32_t flags;
};

std::string Describe(const Case& c) {
  const char* const names[] = {"inference",         "training",          "backward",
                               "training_residual", "backward_residual", "split_forward",
                               "split_backward"};
  const char* mode = names[static_cast<int>(c.mode)];
  return std::string(mode) + " " + ToString(c.shape) + " " + LayoutName(c.layout) + " " +
         FlagNames(c.flags);
}

// Both layouts, ranks 2 to 5, and sizes from a few hundred values (always one
// thread inside) to half a megabyte (several OpenMP threads where num_threads
// allows).
std::vector<Case> Cases() {
  const bnorm_layout nchw = BNORM_LAYOUT_NCHW, nhwc = BNORM_LAYOUT_NHWC;
  const uint32_t affine = BNORM_FLAG_AFFINE, track = BNORM_FLAG_TRACK_RUNNING_STATS,
                 relu = BNORM_FLAG_FUSE_RELU, global = BNORM_FLAG_USE_GLOBAL_STATS;
  return {
      {Mode::kInference, nchw, InLayout({8, 64, 16, 16}, nchw), affine},
      {Mode::kInference, nhwc, InLayout({4, 17, 33, 9}, nhwc), affine | relu},
      {Mode::kInference, nchw, InLayout({3, 5, 7}, nchw), 0},
      {Mode::kTraining, nchw, InLayout({8, 32, 16, 16}, nchw), affine | track},
      {Mode::kTraining, nhwc, InLayout({16, 64, 8, 8}, nhwc), affine | track | relu},
      {Mode::kTraining, nchw, InLayout({1024, 67}, nchw), affine | track},
      {Mode::kTraining, nhwc, InLayout({2, 17, 3, 3, 3}, nhwc), 0},
      {Mode::kBackward, nchw, InLayout({8, 32, 16, 16}, nchw), affine},
      {Mode::kBackward, nhwc, InLayout({16, 64, 8, 8}, nhwc), affine | relu},
      {Mode::kBackward, nhwc, InLayout({1024, 67}, nhwc), affine},
      {Mode::kBackward, nchw, InLayout({4, 8, 5, 5}, nchw), affine | global},
      {Mode::kTrainingResidual, nhwc, InLayout({8, 32, 16, 16}, nhwc), affine | track | relu},
      {Mode::kBackwardResidual, nchw, InLayout({8, 32, 16, 16}, nchw), affine | relu},
      {Mode::kSplitForward, nchw, InLayout({8, 32, 16, 16}, nchw), affine | track | relu},
      {Mode::kSplitBackward, nhwc, InLayout({16, 64, 8, 8}, nhwc), affine | relu},
  };
}

// A case's inputs: made once, then only read, by every caller at once.
struct Inputs {
  std::vector<float> x, dy, gamma, beta;
  std::vector<float> running_mean, running_var;
  std::vector<float> y, save_mean, save_invstd;  // backward's, from its forward pass
};

Inputs Prepare(const Case& c, uint32_t seed) {
  const Geometry g = Geometry::Of(c.shape, c.layout);
  Inputs in;
  in.x = ChannelData(g, seed);
  in.dy = Uniform(g.Elements(), -1, 1, seed + 1);
  in.gamma = Uniform(g.c, 0.5f, 2, seed + 2);
  in.beta = Uniform(g.c, -1, 1, seed + 3);
  in.running_mean = Uniform(g.c, -1, 1, seed + 4);
  in.running_var = Uniform(g.c, 0.5f, 2, seed + 5);
  if (!IsBackward(c.mode)) return in;

  // As in a training step, backward takes what the forward pass saved.
  const bnorm_desc forward =
      Desc(g.c, c.layout, c.flags & (BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU));
  in.y.resize(in.x.size());
  in.save_mean.resize(g.c);
  in.save_invstd.resize(g.c);
  EXPECT_EQ(bnorm_forward_training(&forward, &c.shape, in.x.data(), in.y.data(), in.gamma.data(),
                                   in.beta.data(), nullptr, nullptr, in.save_mean.data(),
                                   in.save_invstd.data()),
            BNORM_OK)
      << bnorm_last_error();
  if (c.flags & BNORM_FLAG_USE_GLOBAL_STATS) {
    // A frozen layer's statistics are its running ones.
    for (int64_t i = 0; i < g.c; ++i) {
      in.save_mean[i] = in.running_mean[i];
      in.save_invstd[i] = 1.0f / std::sqrt(in.running_var[i] + forward.eps);
    }
  }
  return in;
}

// Everything one call writes, in the order of the function's parameters.
using Outputs = std::vector<std::vector<float>>;

bool SameBits(const Outputs& a, const Outputs& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size() ||
        memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0) {
      return false;
    }
  }
  return true;
}

bnorm_status Call(const Case& c, const Inputs& in, int32_t num_threads, Outputs* out) {
  const Geometry g = Geometry::Of(c.shape, c.layout);
  bnorm_desc d = Desc(g.c, c.layout, c.flags);
  d.num_threads = num_threads;
  const std::vector<float> tensor(g.Elements()), channels(g.c);
  switch (c.mode) {
    case Mode::kInference:
      *out = {tensor};
      return bnorm_forward_inference(&d, &c.shape, in.x.data(), (*out)[0].data(),
                                     in.running_mean.data(), in.running_var.data(), in.gamma.data(),
                                     in.beta.data());
    case Mode::kTraining:
      // The running statistics are updated in place: every call starts from
      // the same ones, so that all of them should end the same.
      *out = {tensor, in.running_mean, in.running_var, channels, channels};
      return bnorm_forward_training(&d, &c.shape, in.x.data(), (*out)[0].data(), in.gamma.data(),
                                    in.beta.data(), (*out)[1].data(), (*out)[2].data(),
                                    (*out)[3].data(), (*out)[4].data());
    case Mode::kBackward:
      *out = {tensor, channels, channels};
      return bnorm_backward(&d, &c.shape, in.x.data(), in.dy.data(), in.y.data(), in.gamma.data(),
                            in.save_mean.data(), in.save_invstd.data(), (*out)[0].data(),
                            (*out)[1].data(), (*out)[2].data());
    case Mode::kTrainingResidual:
      // dy stands in for the residual: any tensor of x's shape will do.
      *out = {tensor, in.running_mean, in.running_var, channels, channels};
      return bnorm_forward_training_residual(
          &d, &c.shape, in.x.data(), in.dy.data(), (*out)[0].data(), in.gamma.data(),
          in.beta.data(), (*out)[1].data(), (*out)[2].data(), (*out)[3].data(), (*out)[4].data());
    case Mode::kBackwardResidual:
      *out = {tensor, tensor, channels, channels};
      return bnorm_backward_residual(&d, &c.shape, in.x.data(), in.dy.data(), in.y.data(),
                                     in.gamma.data(), in.save_mean.data(), in.save_invstd.data(),
                                     (*out)[0].data(), (*out)[1].data(), (*out)[2].data(),
                                     (*out)[3].data());
    case Mode::kSplitForward: {
      // The stats block (doubles) lives in float storage, compared bytewise.
      *out = {
          std::vector<float>(6 * g.c), channels, channels, in.running_mean, in.running_var, tensor};
      double* stats = reinterpret_cast<double*>((*out)[0].data());
      bnorm_status s = bnorm_local_stats(&d, &c.shape, in.x.data(), stats);
      if (s == BNORM_OK) {
        s = bnorm_merge_stats(&d, 1, stats, nullptr, (*out)[1].data(), (*out)[2].data(),
                              (*out)[3].data(), (*out)[4].data());
      }
      if (s != BNORM_OK) return s;
      return bnorm_forward_normalize(&d, &c.shape, in.x.data(), (*out)[5].data(), in.gamma.data(),
                                     in.beta.data(), (*out)[1].data(), (*out)[2].data());
    }
    case Mode::kSplitBackward: {
      *out = {std::vector<float>(6 * g.c), channels, channels, tensor};
      double* sums = reinterpret_cast<double*>((*out)[0].data());
      const bnorm_status s = bnorm_backward_reduce(
          &d, &c.shape, in.x.data(), in.dy.data(), in.y.data(), in.save_mean.data(),
          in.save_invstd.data(), sums, (*out)[1].data(), (*out)[2].data());
      if (s != BNORM_OK) return s;
      return bnorm_backward_elementwise(&d, &c.shape, in.x.data(), in.dy.data(), in.y.data(),
                                        in.gamma.data(), in.save_mean.data(), in.save_invstd.data(),
                                        1, sums, (*out)[3].data());
    }
  }
  return BNORM_ERR_INTERNAL;
}

// Every case's inputs and its result from a serial call with one thread
// inside, which every caller, whatever its num_threads, should get again.
struct Workload {
  std::vector<Case> cases = Cases();
  std::vector<Inputs> inputs;
  std::vector<Outputs> serial;

  Workload() {
    for (size_t k = 0; k < cases.size(); ++k) {
      inputs.push_back(Prepare(cases[k], 100 + 10 * static_cast<uint32_t>(k)));
      serial.emplace_back();
      EXPECT_EQ(Call(cases[k], inputs[k], 1, &serial.back()), BNORM_OK)
          << Describe(cases[k]) << ": " << bnorm_last_error();
    }
  }
};

// What one thread saw, checked on the main thread once every thread is done:
// a wrong result would otherwise repeat in thousands of failures.
struct Log {
  int64_t calls = 0;
  int64_t failing_calls = 0;
  int64_t problems = 0;
  std::vector<std::string> first_problems;

  void Problem(const std::string& what) {
    if (problems++ < 3) first_problems.push_back(what);
  }
};

void ExpectNoProblems(const std::vector<Log>& logs) {
  for (size_t t = 0; t < logs.size(); ++t) {
    EXPECT_EQ(logs[t].problems, 0) << "thread " << t;
    for (const std::string& p : logs[t].first_problems) {
      ADD_FAILURE() << "thread " << t << ": " << p;
    }
  }
}

// A call that fails on numbers no other thread uses, changing from round to
// round, so the message read back shows whose failure it describes. Only the arguments are
// looked at: the mismatch is found before anything is read or written.
void FailOnPurpose(int thread, int round, Log* log) {
  const int64_t num_features = 100 * (thread + 1) + round % 100;
  const int64_t channels = num_features + 7;
  const bnorm_layout layout = round % 2 ? BNORM_LAYOUT_NHWC : BNORM_LAYOUT_NCHW;
  const bnorm_shape shape = InLayout({2, channels}, layout);
  const bnorm_desc d = Desc(num_features, layout, BNORM_FLAG_AFFINE);
  const std::vector<float> x(2 * channels, 1.0f), per_channel(num_features, 1.0f);
  std::vector<float> y(x.size(), -3.0f);
  bnorm_status status;
  switch (round % 3) {
    case 0:
      status = bnorm_forward_inference(&d, &shape, x.data(), y.data(), per_channel.data(),
                                       per_channel.data(), per_channel.data(), per_channel.data());
      break;
    case 1:
      status = bnorm_forward_training(&d, &shape, x.data(), y.data(), per_channel.data(),
                                      per_channel.data(), nullptr, nullptr, nullptr, nullptr);
      break;
    default:
      status = bnorm_backward(&d, &shape, x.data(), x.data(), nullptr, per_channel.data(),
                              per_channel.data(), per_channel.data(), y.data(), nullptr, nullptr);
  }
  // Other threads' calls, failing ones included, get a chance to run before
  // this one reads its message.
  std::this_thread::yield();
  const std::string want = "input channel dimension (dim 1) is " + std::to_string(channels) +
                           " but num_features is " + std::to_string(num_features);
  ++log->failing_calls;
  if (status != BNORM_ERR_FEATURE_MISMATCH) {
    log->Problem("mismatch call returned " + std::string(bnorm_status_string(status)));
  }
  if (bnorm_last_error() != want) {
    log->Problem("last error \"" + std::string(bnorm_last_error()) + "\", want \"" + want + "\"");
  }
  if (std::any_of(y.begin(), y.end(), [](float v) { return v != -3.0f; })) {
    log->Problem("a failing call wrote its output");
  }
}

TEST(ThreadStressTest, ConcurrentCallsMatchSerialCallsAndKeepTheirOwnErrors) {
  const Workload work;
  std::vector<Log> logs(kCallers);
  StartingLine start(kCallers);
  std::vector<std::thread> callers;
  const auto began = std::chrono::steady_clock::now();
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      Log& log = logs[t];
      start.ArriveAndWait();
      for (int round = 0; round < kRounds; ++round) {
        if ((round + t) % 4 == 3) {
          FailOnPurpose(t, round, &log);
          continue;
        }
        // Threads start at different cases and take them in different orders,
        // so that each case runs alongside every other at some point.
        const size_t k = (3 * t + (t % 2 ? 5 : 7) * round) % work.cases.size();
        const int32_t num_threads = 1 + (t + round) % 3;
        Outputs got;
        const bnorm_status status = Call(work.cases[k], work.inputs[k], num_threads, &got);
        const std::string error = bnorm_last_error();
        ++log.calls;
        const std::string what =
            Describe(work.cases[k]) + " num_threads " + std::to_string(num_threads) + ": ";
        if (status != BNORM_OK) {
          log.Problem(what + bnorm_status_string(status) + ": " + error);
        } else if (!error.empty()) {
          log.Problem(what + "last error \"" + error + "\" after a successful call");
        } else if (!SameBits(got, work.serial[k])) {
          log.Problem(what + "differs from the serial result");
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

  ExpectNoProblems(logs);
  int64_t calls = 0, failing_calls = 0;
  for (const Log& log : logs) {
    calls += log.calls;
    failing_calls += log.failing_calls;
  }
  EXPECT_EQ(calls + failing_calls, int64_t{kCallers} * kRounds);
  std::cout << kCallers << " threads x " << kRounds << " rounds: " << calls << " successful and "
            << failing_calls << " failing calls in " << seconds << " s\n";
}

// A call reads the target once and finishes on it, so while another thread
// moves the cap around, every result is what a serial call gives on one of the
// runnable targets (results are bit-identical per target only).
TEST(ThreadStressTest, CapChangesWhileOthersCompute) {
  const std::vector<std::string> targets = RunnableTargets();
  const Workload work;
  // One case of each mode, each large enough for threads inside.
  const size_t picked[] = {0, 4, 8};
  std::vector<std::vector<Outputs>> per_target(work.cases.size());
  for (const std::string& target : targets) {
    TargetScope scope(target);
    for (size_t k : picked) {
      per_target[k].emplace_back();
      EXPECT_EQ(Call(work.cases[k], work.inputs[k], 1, &per_target[k].back()), BNORM_OK);
    }
  }

  // Targets may or may not round differently; say how many results there are
  // to tell apart.
  size_t results = 0;
  for (size_t k : picked) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const auto same = [&](const Outputs& o) { return SameBits(o, per_target[k][i]); };
      results += std::none_of(per_target[k].begin(), per_target[k].begin() + i, same);
    }
  }

  const int workers = kCallers - 1;
  std::vector<Log> logs(workers);
  StartingLine start(workers + 1);
  std::atomic<int> working{workers};
  int64_t cap_changes = 0;
  std::vector<std::string> cap_problems;
  // Every runnable target in turn, then no cap ("").
  std::vector<std::string> caps = targets;
  caps.push_back("");
  std::thread capper([&] {
    start.ArriveAndWait();
    for (size_t i = 0; working.load() > 0; ++i) {
      const std::string& cap = caps[i % caps.size()];
      if (bnorm_set_max_target(cap.c_str()) != BNORM_OK) {
        cap_problems.push_back("cap \"" + cap + "\": " + bnorm_last_error());
        break;
      }
      const std::string active = bnorm_active_target();
      if (active != (cap.empty() ? targets.front() : cap)) {
        cap_problems.push_back("cap \"" + cap + "\" but " + active + " is active");
        break;
      }
      ++cap_changes;
      // Often enough to land in the middle of many calls, while leaving the
      // cores to them.
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  std::vector<std::thread> callers;
  for (int t = 0; t < workers; ++t) {
    callers.emplace_back([&, t] {
      start.ArriveAndWait();
      // Only large cases here: fewer rounds take as long.
      for (int round = 0; round < kRounds / 4; ++round) {
        const size_t k = picked[(t + round) % std::size(picked)];
        const int32_t num_threads = 1 + (t + round) % 3;
        Outputs got;
        const bnorm_status status = Call(work.cases[k], work.inputs[k], num_threads, &got);
        ++logs[t].calls;
        const std::string what = Describe(work.cases[k]) + ": ";
        if (status != BNORM_OK) {
          logs[t].Problem(what + bnorm_status_string(status) + ": " + bnorm_last_error());
        } else if (std::none_of(per_target[k].begin(), per_target[k].end(),
                                [&](const Outputs& want) { return SameBits(got, want); })) {
          logs[t].Problem(what + "matches no target's serial result");
        }
        const std::string active = bnorm_active_target();
        if (std::find(targets.begin(), targets.end(), active) == targets.end()) {
          logs[t].Problem("active target \"" + active + "\" is not a runnable one");
        }
      }
      --working;
    });
  }
  for (std::thread& caller : callers) caller.join();
  capper.join();
  bnorm_set_max_target(nullptr);

  ExpectNoProblems(logs);
  for (const std::string& p : cap_problems) ADD_FAILURE() << p;
  EXPECT_GT(cap_changes, 0);
  std::cout << workers << " threads computing while the cap changed " << cap_changes
            << " times among " << targets.size() << " targets; " << results
            << " different serial results for " << std::size(picked) << " cases\n";
}

}  // namespace
}  // namespace bnorm_test
