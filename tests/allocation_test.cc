// Inference allocates nothing; training and backward allocate one scratch
// block of O(C) bytes, whatever the batch size. malloc is interposed here
// (the library calls it through the dynamic linker), so this test has a
// process of its own and is not built with the sanitizers, which interpose it
// themselves.
#include <gtest/gtest.h>
#include <stddef.h>

#include <atomic>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/test_support.h"

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* p, size_t size);
}

namespace {
std::atomic<bool> counting{false};
std::atomic<size_t> allocations{0};
std::atomic<size_t> largest{0};

void Count(size_t size) {
  if (!counting.load(std::memory_order_relaxed)) return;
  allocations.fetch_add(1);
  size_t seen = largest.load();
  while (size > seen && !largest.compare_exchange_weak(seen, size)) {
  }
}
}  // namespace

extern "C" __attribute__((visibility("default"))) void* malloc(size_t size) {
  Count(size);
  return __libc_malloc(size);
}
extern "C" __attribute__((visibility("default"))) void* calloc(size_t count, size_t size) {
  Count(count * size);
  return __libc_calloc(count, size);
}
extern "C" __attribute__((visibility("default"))) void* realloc(void* p, size_t size) {
  Count(size);
  return __libc_realloc(p, size);
}

namespace bnorm_test {
namespace {

struct Counted {
  size_t allocations;
  size_t largest;
};

template <class F>
Counted CountAllocations(const F& call) {
  call();  // OpenMP starts its thread pool on the first parallel call
  allocations = 0;
  largest = 0;
  counting = true;
  call();
  counting = false;
  return {allocations.load(), largest.load()};
}

struct Case {
  bnorm_shape shape;
  bnorm_layout layout;
};

const Case kCases[] = {{Shape({8, 64, 32, 32}), BNORM_LAYOUT_NCHW},
                       {Shape({64, 256, 7, 7}), BNORM_LAYOUT_NCHW},
                       {Shape({1, 3, 2048, 2048}), BNORM_LAYOUT_NCHW},
                       {Shape({8, 32, 32, 64}), BNORM_LAYOUT_NHWC},
                       {Shape({1 << 20, 3}), BNORM_LAYOUT_NHWC}};

TEST(AllocationTest, InferenceAllocatesNothing) {
  for (const Case& c : kCases) {
    for (int32_t threads : {1, 2}) {
      SCOPED_TRACE(ToString(c.shape) + " " + LayoutName(c.layout) + " threads " +
                   std::to_string(threads));
      const Geometry g = Geometry::Of(c.shape, c.layout);
      std::vector<float> x(g.Elements(), 1.0f), y(g.Elements()), stats(4 * g.c, 1.0f);
      bnorm_desc d = Desc(g.c, c.layout, BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU);
      d.num_threads = threads;
      const Counted counted = CountAllocations([&] {
        ASSERT_EQ(bnorm_forward_inference(&d, &c.shape, x.data(), y.data(), stats.data(),
                                          stats.data() + g.c, stats.data() + 2 * g.c,
                                          stats.data() + 3 * g.c),
                  BNORM_OK);
      });
      EXPECT_EQ(counted.allocations, 0u);
    }
  }
}

// The folded-inference path a runtime uses after loading a model: folding
// once, then inference from the scale and shift, allocates nothing either.
TEST(AllocationTest, FoldingScaleShiftAndResidualInferenceAllocateNothing) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(ToString(c.shape) + " " + LayoutName(c.layout));
    const Geometry g = Geometry::Of(c.shape, c.layout);
    std::vector<float> x(g.Elements(), 1.0f), y(g.Elements()), stats(4 * g.c, 1.0f);
    std::vector<float> scale(g.c), shift(g.c), weights(9 * g.c, 0.5f), bias(g.c, 0.0f);
    bnorm_desc d = Desc(g.c, c.layout, BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU);
    d.num_threads = 2;
    const Counted counted = CountAllocations([&] {
      ASSERT_EQ(bnorm_fold_scale_shift(&d, stats.data(), stats.data() + g.c, stats.data() + 2 * g.c,
                                       stats.data() + 3 * g.c, scale.data(), shift.data()),
                BNORM_OK);
      ASSERT_EQ(bnorm_fold_into_layer(&d, 9, weights.data(), bias.data(), stats.data(),
                                      stats.data() + g.c, stats.data() + 2 * g.c,
                                      stats.data() + 3 * g.c, weights.data(), bias.data()),
                BNORM_OK);
      ASSERT_EQ(
          bnorm_forward_scale_shift(&d, &c.shape, x.data(), y.data(), scale.data(), shift.data()),
          BNORM_OK);
      // The residual block's inference too.
      ASSERT_EQ(bnorm_forward_inference_residual(&d, &c.shape, x.data(), x.data(), y.data(),
                                                 stats.data(), stats.data() + g.c,
                                                 stats.data() + 2 * g.c, stats.data() + 3 * g.c),
                BNORM_OK);
    });
    EXPECT_EQ(counted.allocations, 0u);
  }
}

// 2 MiB plus 8 KiB per channel bounds every plan's partial sums.
size_t ScratchBound(int64_t channels) { return (2u << 20) + 8200 * channels; }

TEST(AllocationTest, TrainingAndBackwardScratchIsOneBlockOfOrderC) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(ToString(c.shape) + " " + LayoutName(c.layout));
    const Geometry g = Geometry::Of(c.shape, c.layout);
    std::vector<float> x = ChannelData(g, 1), y(g.Elements()), dx(g.Elements());
    std::vector<float> params(6 * g.c, 1.0f);
    float* p = params.data();
    bnorm_desc d = Desc(g.c, c.layout, BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS);
    d.num_threads = 2;
    const Counted training = CountAllocations([&] {
      ASSERT_EQ(bnorm_forward_training(&d, &c.shape, x.data(), y.data(), p, p + g.c, p + 2 * g.c,
                                       p + 3 * g.c, p + 4 * g.c, p + 5 * g.c),
                BNORM_OK);
    });
    EXPECT_EQ(training.allocations, 1u);
    EXPECT_LE(training.largest, ScratchBound(g.c));
    const Counted backward = CountAllocations([&] {
      ASSERT_EQ(bnorm_backward(&d, &c.shape, x.data(), y.data(), nullptr, p, p + 4 * g.c,
                               p + 5 * g.c, dx.data(), p + 2 * g.c, p + 3 * g.c),
                BNORM_OK);
    });
    EXPECT_EQ(backward.allocations, 1u);
    EXPECT_LE(backward.largest, ScratchBound(g.c));
    std::cout << ToString(c.shape) << " " << LayoutName(c.layout) << ": training scratch "
              << training.largest << " B, backward scratch " << backward.largest << " B\n";
  }
}

// The split phases: merging and normalizing allocate nothing; the reductions
// allocate like the fused calls, the backward elementwise pass 12 B per channel.
TEST(AllocationTest, SplitPhasesAllocateAsDocumented) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(ToString(c.shape) + " " + LayoutName(c.layout));
    const Geometry g = Geometry::Of(c.shape, c.layout);
    std::vector<float> x = ChannelData(g, 2), y(g.Elements()), dx(g.Elements());
    std::vector<float> params(6 * g.c, 1.0f);
    float* p = params.data();
    std::vector<double> stats(3 * g.c), sums(3 * g.c);
    bnorm_desc d = Desc(g.c, c.layout, BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS);
    d.num_threads = 2;
    const Counted local = CountAllocations(
        [&] { ASSERT_EQ(bnorm_local_stats(&d, &c.shape, x.data(), stats.data()), BNORM_OK); });
    EXPECT_EQ(local.allocations, 1u);
    EXPECT_LE(local.largest, ScratchBound(g.c));
    const Counted merge_and_normalize = CountAllocations([&] {
      ASSERT_EQ(
          bnorm_merge_stats(&d, 1, stats.data(), nullptr, p, p + g.c, p + 2 * g.c, p + 3 * g.c),
          BNORM_OK);
      ASSERT_EQ(bnorm_forward_normalize(&d, &c.shape, x.data(), y.data(), p + 4 * g.c, p + 5 * g.c,
                                        p, p + g.c),
                BNORM_OK);
    });
    EXPECT_EQ(merge_and_normalize.allocations, 0u);
    const Counted reduce = CountAllocations([&] {
      ASSERT_EQ(bnorm_backward_reduce(&d, &c.shape, x.data(), y.data(), nullptr, p, p + g.c,
                                      sums.data(), p + 2 * g.c, p + 3 * g.c),
                BNORM_OK);
    });
    EXPECT_EQ(reduce.allocations, 1u);
    EXPECT_LE(reduce.largest, ScratchBound(g.c));
    const Counted elementwise = CountAllocations([&] {
      ASSERT_EQ(bnorm_backward_elementwise(&d, &c.shape, x.data(), y.data(), nullptr, p + 4 * g.c,
                                           p, p + g.c, 1, sums.data(), dx.data()),
                BNORM_OK);
    });
    EXPECT_EQ(elementwise.allocations, 1u);
    EXPECT_LE(elementwise.largest, 36u * g.c + 8);
  }
}

}  // namespace
}  // namespace bnorm_test
