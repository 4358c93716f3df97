// Where an output lies relative to the inputs decides which way an
// elementwise pass walks (upwards, or downwards when the output is a little
// ahead of an input modulo 4 KiB: see src/vector_io-inl.h), never what it
// writes: every forward call (y from x and the residual) and every backward
// call (dx from x and dy) writes exactly the bytes it writes with its tensors
// whole pages apart. On every target, both layouts and every dtype.
#include <gtest/gtest.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/half_types.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

constexpr int64_t kPage = 4096;

// Byte offsets of the output (y, dx) and of the second input (the residual,
// dy) from x, modulo a page.
struct Placement {
  int64_t output;
  int64_t second_input;
  const char* name;
};

std::vector<Placement> Placements(int64_t element_bytes) {
  return {{element_bytes, 0, "output one element ahead of both inputs"},
          {32, 0, "output 32 bytes ahead"},
          {64 + element_bytes, 0, "output 64 bytes and an element ahead"},
          {508, 0, "output 508 bytes ahead"},
          {kPage - 32, 0, "output 32 bytes behind"},
          {32, 64, "output ahead of x, behind the second input"},
          {64, 32, "output ahead of x and of the second input"}};
}

int64_t ElementBytes(bnorm_dtype dtype) { return dtype == BNORM_DTYPE_F32 ? 4 : 2; }

// Three page-aligned regions, one per tensor, each with a spare page, so a
// tensor can start anywhere in its region's first page.
class Arena {
 public:
  explicit Arena(int64_t tensor_bytes)
      : region_((tensor_bytes + 2 * kPage - 1) / kPage * kPage),
        memory_(static_cast<uint8_t*>(aligned_alloc(kPage, 3 * region_))) {}
  uint8_t* At(int region, int64_t offset) { return memory_.get() + region * region_ + offset; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { free(p); }
  };
  int64_t region_;
  std::unique_ptr<uint8_t, Free> memory_;
};

// Values in the dtype's bytes, from `seed`.
std::vector<uint8_t> TensorBytes(bnorm_dtype dtype, int64_t count, uint32_t seed) {
  const std::vector<float> values = Uniform(count, -3.0f, 3.0f, seed);
  std::vector<uint8_t> bytes(count * ElementBytes(dtype));
  if (dtype == BNORM_DTYPE_F32) {
    memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t bits = RoundToHalf(dtype, values[i]);
      memcpy(bytes.data() + 2 * i, &bits, 2);
    }
  }
  return bytes;
}

// A call on two inputs and an output, the rest fixed by the case: x, the
// residual and y for the forward calls; x, dy and dx for the backward.
using ForwardCall = std::function<bnorm_status(const void* x, const void* residual, void* y)>;

struct NamedCall {
  const char* name;
  ForwardCall call;
};

class OutputPlacementTest : public ::testing::TestWithParam<TargetLayout> {
 protected:
  bnorm_layout layout() const { return std::get<1>(GetParam()); }

  // Runs every call with every placement against the same call with the
  // tensors pages apart.
  void ExpectSameBytes(bnorm_dtype dtype, const bnorm_shape& shape,
                       const std::vector<NamedCall>& calls) {
    int64_t count = 1;
    for (int i = 0; i < shape.rank; ++i) count *= shape.dims[i];
    const int64_t bytes = count * ElementBytes(dtype);
    const std::vector<uint8_t> x = TensorBytes(dtype, count, 11);
    const std::vector<uint8_t> second = TensorBytes(dtype, count, 12);
    Arena arena(bytes);
    // The call's output, left in its region.
    const auto run = [&](const NamedCall& c, int64_t output_offset, int64_t second_offset) {
      uint8_t* in = arena.At(0, 0);
      uint8_t* in2 = arena.At(1, second_offset);
      uint8_t* out = arena.At(2, output_offset);
      memcpy(in, x.data(), bytes);
      memcpy(in2, second.data(), bytes);
      memset(out, 0x5A, bytes);
      EXPECT_EQ(c.call(in, in2, out), BNORM_OK) << bnorm_last_error();
      return out;
    };
    for (const NamedCall& c : calls) {
      SCOPED_TRACE(c.name);
      const uint8_t* pages_apart = run(c, 0, 0);
      const std::vector<uint8_t> want(pages_apart, pages_apart + bytes);
      for (const Placement& p : Placements(ElementBytes(dtype))) {
        SCOPED_TRACE(p.name);
        const uint8_t* got = run(c, p.output, p.second_input);
        if (memcmp(got, want.data(), bytes) == 0) continue;
        int64_t first = 0;
        while (got[first] == want[first]) ++first;
        ADD_FAILURE() << "first differing byte " << first << " of " << bytes;
      }
    }
  }

  void ForEachForwardCall(const std::vector<bnorm_shape>& shapes, bool inference_only);
  void ForEachBackwardCall(const std::vector<bnorm_shape>& shapes,
                           std::initializer_list<bnorm_dtype> dtypes);

  TargetScope target_{std::get<0>(GetParam())};
};

// C = 1, 3, 17, 67; one spatial value; rows and channels with odd lengths.
std::vector<bnorm_shape> PlacementShapes(bnorm_layout layout) {
  const std::initializer_list<int64_t> logical[] = {
      {3, 1, 40, 41}, {2, 3, 17, 19}, {5, 17}, {3, 67, 1, 1}, {2, 17, 3, 5, 7}};
  std::vector<bnorm_shape> shapes;
  for (const auto& dims : logical) shapes.push_back(InLayout(dims, layout));
  return shapes;
}

// Every forward call on `shape` in every dtype; only the inference calls when
// `inference_only`.
void OutputPlacementTest::ForEachForwardCall(const std::vector<bnorm_shape>& shapes,
                                             bool inference_only) {
  const uint32_t affine_relu = BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU;
  for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_BF16, BNORM_DTYPE_F16}) {
    SCOPED_TRACE(DtypeName(dtype));
    for (const bnorm_shape& shape : shapes) {
      SCOPED_TRACE(ToString(shape));
      const int64_t c = Channels(shape, layout());
      const Layer layer(c, 7);
      std::vector<float> invstd(c), scale(c), shift(c);
      for (int64_t i = 0; i < c; ++i) invstd[i] = static_cast<float>(layer.Scale(i, 1e-5, false));
      bnorm_desc plain = Desc(c, layout(), 0);
      bnorm_desc relu = Desc(c, layout(), affine_relu);
      plain.dtype = relu.dtype = dtype;
      ASSERT_EQ(
          bnorm_fold_scale_shift(&relu, layer.mean.data(), layer.var.data(), layer.gamma.data(),
                                 layer.beta.data(), scale.data(), shift.data()),
          BNORM_OK);
      const auto training = [&](const bnorm_desc& d, const void* x, const void* residual, void* y) {
        std::vector<float> running_mean = layer.mean, running_var = layer.var;
        std::vector<float> save_mean(c), save_invstd(c);
        bnorm_desc tracked = d;
        tracked.flags |= BNORM_FLAG_TRACK_RUNNING_STATS;
        const auto* g = layer.gamma.data();
        const auto* b = layer.beta.data();
        return residual != nullptr
                   ? bnorm_forward_training_residual(&tracked, &shape, x, residual, y, g, b,
                                                     running_mean.data(), running_var.data(),
                                                     save_mean.data(), save_invstd.data())
                   : bnorm_forward_training(&tracked, &shape, x, y, g, b, running_mean.data(),
                                            running_var.data(), save_mean.data(),
                                            save_invstd.data());
      };
      const auto& l = layer;
      std::vector<NamedCall> calls = {
          {"inference",
           [&](const void* x, const void*, void* y) {
             return bnorm_forward_inference(&plain, &shape, x, y, l.mean.data(), l.var.data(),
                                            nullptr, nullptr);
           }},
          {"inference, affine and ReLU",
           [&](const void* x, const void*, void* y) {
             return bnorm_forward_inference(&relu, &shape, x, y, l.mean.data(), l.var.data(),
                                            l.gamma.data(), l.beta.data());
           }},
          {"inference with a residual",
           [&](const void* x, const void* residual, void* y) {
             return bnorm_forward_inference_residual(&relu, &shape, x, residual, y, l.mean.data(),
                                                     l.var.data(), l.gamma.data(), l.beta.data());
           }},
          {"scale and shift", [&](const void* x, const void*, void* y) {
             return bnorm_forward_scale_shift(&relu, &shape, x, y, scale.data(), shift.data());
           }}};
      if (!inference_only) {
        calls.insert(
            calls.end(),
            {{"training",
              [&](const void* x, const void*, void* y) { return training(relu, x, nullptr, y); }},
             {"training with a residual", [&](const void* x, const void* residual,
                                              void* y) { return training(relu, x, residual, y); }},
             {"split phases' normalize", [&](const void* x, const void*, void* y) {
                return bnorm_forward_normalize(&relu, &shape, x, y, l.gamma.data(), l.beta.data(),
                                               l.mean.data(), invstd.data());
              }}});
      }
      ExpectSameBytes(dtype, shape, calls);
    }
  }
}

// bnorm_backward in `dtypes`, in training mode and with frozen statistics
// (which does not read x), dx placed as y is above and dy as the residual.
void OutputPlacementTest::ForEachBackwardCall(const std::vector<bnorm_shape>& shapes,
                                              std::initializer_list<bnorm_dtype> dtypes) {
  for (bnorm_dtype dtype : dtypes) {
    SCOPED_TRACE(DtypeName(dtype));
    for (const bnorm_shape& shape : shapes) {
      SCOPED_TRACE(ToString(shape));
      const int64_t c = Channels(shape, layout());
      const Layer layer(c, 9);
      std::vector<float> invstd(c);
      for (int64_t i = 0; i < c; ++i) invstd[i] = static_cast<float>(layer.Scale(i, 1e-5, false));
      bnorm_desc training = Desc(c, layout(), BNORM_FLAG_AFFINE);
      bnorm_desc frozen = Desc(c, layout(), BNORM_FLAG_AFFINE | BNORM_FLAG_USE_GLOBAL_STATS);
      training.dtype = frozen.dtype = dtype;
      const auto backward = [&](const bnorm_desc& d) {
        return [&, d](const void* x, const void* dy, void* dx) {
          return bnorm_backward(&d, &shape, x, dy, nullptr, layer.gamma.data(), layer.mean.data(),
                                invstd.data(), dx, nullptr, nullptr);
        };
      };
      ExpectSameBytes(dtype, shape,
                      {{"backward", backward(training)},
                       {"backward with frozen statistics", backward(frozen)}});
    }
  }
}

TEST_P(OutputPlacementTest, ForwardCallsWriteTheSameBytesWhereverYLies) {
  ForEachForwardCall(PlacementShapes(layout()), false);
}

// Over 2 MiB of output in every dtype: inference streams it to memory, whole
// aligned vectors between single lanes at both ends.
TEST_P(OutputPlacementTest, StreamedInferenceWritesTheSameBytesWhereverYLies) {
  // Its single-lane vectors store plainly, so this would repeat the smaller
  // shapes' test, at a minute of the sanitizer build's time.
  if (std::get<0>(GetParam()) == "SCALAR") GTEST_SKIP() << "the scalar target does not stream";
  ForEachForwardCall({InLayout({2, 3, 420, 421}, layout())}, true);
}

TEST_P(OutputPlacementTest, BackwardWritesTheSameBytesWhereverDxLies) {
  ForEachBackwardCall(PlacementShapes(layout()),
                      {BNORM_DTYPE_F32, BNORM_DTYPE_BF16, BNORM_DTYPE_F16});
}

// Over 4 MiB of f32 output: the backward streams it to memory.
TEST_P(OutputPlacementTest, StreamedBackwardWritesTheSameBytesWhereverDxLies) {
  if (std::get<0>(GetParam()) == "SCALAR") GTEST_SKIP() << "the scalar target does not stream";
  ForEachBackwardCall({InLayout({2, 3, 420, 421}, layout())}, {BNORM_DTYPE_F32});
}

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(OutputPlacementTest);

}  // namespace
}  // namespace bnorm_test
