// Where y lies relative to x and to the residual decides which way the
// normalize pass walks (upwards, or downwards when y is a little ahead of an
// input modulo 4 KiB: see src/vector_io-inl.h), never what it writes: every
// forward call writes exactly the bytes it writes with its tensors whole pages
// apart. On every target, both layouts and every dtype.
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

// Byte offsets of y and of the residual from x, modulo a page.
struct Placement {
  int64_t y;
  int64_t residual;
  const char* name;
};

std::vector<Placement> Placements(int64_t element_bytes) {
  return {{element_bytes, 0, "y one element ahead of x and the residual"},
          {32, 0, "y 32 bytes ahead"},
          {64 + element_bytes, 0, "y 64 bytes and an element ahead"},
          {508, 0, "y 508 bytes ahead"},
          {kPage - 32, 0, "y 32 bytes behind"},
          {32, 64, "y ahead of x, behind the residual"},
          {64, 32, "y ahead of x and of the residual"}};
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

// A forward call on x, residual and y, the rest fixed by the case.
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
    const std::vector<uint8_t> residual = TensorBytes(dtype, count, 12);
    Arena arena(bytes);
    // The call's output, left in its region.
    const auto run = [&](const NamedCall& c, int64_t y_offset, int64_t residual_offset) {
      uint8_t* px = arena.At(0, 0);
      uint8_t* pr = arena.At(1, residual_offset);
      uint8_t* py = arena.At(2, y_offset);
      memcpy(px, x.data(), bytes);
      memcpy(pr, residual.data(), bytes);
      memset(py, 0x5A, bytes);
      EXPECT_EQ(c.call(px, pr, py), BNORM_OK) << bnorm_last_error();
      return py;
    };
    for (const NamedCall& c : calls) {
      SCOPED_TRACE(c.name);
      const uint8_t* pages_apart = run(c, 0, 0);
      const std::vector<uint8_t> want(pages_apart, pages_apart + bytes);
      for (const Placement& p : Placements(ElementBytes(dtype))) {
        SCOPED_TRACE(p.name);
        const uint8_t* got = run(c, p.y, p.residual);
        if (memcmp(got, want.data(), bytes) == 0) continue;
        int64_t first = 0;
        while (got[first] == want[first]) ++first;
        ADD_FAILURE() << "first differing byte " << first << " of " << bytes;
      }
    }
  }

  void ForEachForwardCall(const std::vector<bnorm_shape>& shapes, bool inference_only);

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

BNORM_INSTANTIATE_FOR_TARGETS_AND_LAYOUTS(OutputPlacementTest);

}  // namespace
}  // namespace bnorm_test
