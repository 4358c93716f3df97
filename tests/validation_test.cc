// Every way a call can be wrong: the status it gets, the message that names
// the numbers involved, the order in which errors are reported, and that a
// rejected call writes nothing at all.
#include <ctype.h>
#include <gtest/gtest.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/test_support.h"

// Under AddressSanitizer, a malloc that cannot be satisfied must return NULL,
// as it does without it, for the out-of-memory test; an ASAN_OPTIONS setting
// still takes precedence.
extern "C" __attribute__((visibility("default"))) const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}

namespace bnorm_test {
namespace {

// The split phases that take a tensor are modes too; bnorm_merge_stats, which
// takes none, has its own tests in split_phase_test.cc.
enum class Mode {
  kInference,
  kTraining,
  kBackward,
  kLocalStats,
  kNormalize,
  kBackwardReduce,
  kBackwardElementwise
};

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kInference:
      return "inference";
    case Mode::kTraining:
      return "training";
    case Mode::kBackward:
      return "backward";
    case Mode::kLocalStats:
      return "local_stats";
    case Mode::kNormalize:
      return "normalize";
    case Mode::kBackwardReduce:
      return "backward_reduce";
    case Mode::kBackwardElementwise:
      return "backward_elementwise";
  }
  return "?";
}

constexpr size_t kTensorCapacity = 2048;  // room for every shape used here, and more
constexpr size_t kVectorCapacity = 256;

// A valid call of each function on a (2, 64, 3, 3) NCHW tensor. Each case
// spoils it in one or more ways; every buffer lives in `memory`, so one
// snapshot proves a rejected call wrote nothing.
struct Call {
  bnorm_desc desc_storage;
  bnorm_shape shape_storage = Shape({2, 64, 3, 3});
  const bnorm_desc* desc = &desc_storage;
  const bnorm_shape* shape = &shape_storage;
  std::vector<std::vector<float>> memory;
  float *x, *y, *dy, *dx, *spare;
  float *mean, *var, *gamma, *beta, *running_mean, *running_var, *save_mean, *save_invstd, *dgamma,
      *dbeta;
  // The split phases' exchanged arrays (3 doubles per channel), kept in float
  // storage so that the snapshot covers them: stats and grad sums written,
  // and valid grad sums of the whole batch read.
  double *stats, *sums, *whole_sums;
  int32_t num_partials = 1;

  Call() {
    bnorm_desc_init(&desc_storage, 64);
    x = Tensor(Uniform(kTensorCapacity, -3, 3, 1));
    y = Tensor(std::vector<float>(kTensorCapacity, 1234.5f));
    dy = Tensor(Uniform(kTensorCapacity, -1, 1, 2));
    dx = Tensor(std::vector<float>(kTensorCapacity, 2345.5f));
    spare = Tensor(std::vector<float>(kTensorCapacity, 3456.5f));
    mean = Tensor(Uniform(kVectorCapacity, -1, 1, 3));
    var = Tensor(Uniform(kVectorCapacity, 0.5f, 2, 4));
    gamma = Tensor(Uniform(kVectorCapacity, 0.5f, 2, 5));
    beta = Tensor(Uniform(kVectorCapacity, -1, 1, 6));
    running_mean = Tensor(Uniform(kVectorCapacity, -1, 1, 7));
    running_var = Tensor(Uniform(kVectorCapacity, 0.5f, 2, 8));
    save_mean = Tensor(Uniform(kVectorCapacity, -1, 1, 9));
    save_invstd = Tensor(Uniform(kVectorCapacity, 0.5f, 2, 10));
    dgamma = Tensor(std::vector<float>(kVectorCapacity, 4567.5f));
    dbeta = Tensor(std::vector<float>(kVectorCapacity, 5678.5f));
    stats = Doubles(std::vector<double>(3 * kVectorCapacity, 6789.5));
    sums = Doubles(std::vector<double>(3 * kVectorCapacity, 7890.5));
    std::vector<double> valid(3 * kVectorCapacity);
    for (size_t i = 0; i < valid.size(); i += 3) {
      valid[i] = 18;  // (2, 64, 3, 3): 18 values per channel
      valid[i + 1] = 0.5;
      valid[i + 2] = -0.25;
    }
    whole_sums = Doubles(valid);
  }
  Call(const Call&) = delete;

  float* Tensor(std::vector<float> data) {
    memory.push_back(std::move(data));
    return memory.back().data();
  }
  // malloc's alignment suits doubles.
  double* Doubles(const std::vector<double>& data) {
    std::vector<float> storage(2 * data.size());
    memcpy(storage.data(), data.data(), data.size() * sizeof(double));
    return reinterpret_cast<double*>(Tensor(std::move(storage)));
  }

  bnorm_status Run(Mode mode) const {
    switch (mode) {
      case Mode::kInference:
        return bnorm_forward_inference(desc, shape, x, y, mean, var, gamma, beta);
      case Mode::kTraining:
        return bnorm_forward_training(desc, shape, x, y, gamma, beta, running_mean, running_var,
                                      save_mean, save_invstd);
      case Mode::kBackward:
        return bnorm_backward(desc, shape, x, dy, y, gamma, save_mean, save_invstd, dx, dgamma,
                              dbeta);
      case Mode::kLocalStats:
        return bnorm_local_stats(desc, shape, x, stats);
      case Mode::kNormalize:
        return bnorm_forward_normalize(desc, shape, x, y, gamma, beta, mean, save_invstd);
      case Mode::kBackwardReduce:
        return bnorm_backward_reduce(desc, shape, x, dy, y, mean, save_invstd, sums, dgamma, dbeta);
      case Mode::kBackwardElementwise:
        return bnorm_backward_elementwise(desc, shape, x, dy, y, gamma, mean, save_invstd,
                                          num_partials, whole_sums, dx);
    }
    return BNORM_ERR_INTERNAL;
  }
};

float* Misaligned(float* p) { return reinterpret_cast<float*>(reinterpret_cast<char*>(p) + 1); }
// Aligned to a half element (2 bytes), not to a float.
float* TwoBytesIn(float* p) { return reinterpret_cast<float*>(reinterpret_cast<char*>(p) + 2); }
// The float storage a (2, 64, 3, 3) tensor of 2-byte elements takes.
constexpr ptrdiff_t kHalfTensorFloats = 2 * 64 * 3 * 3 / 2;

struct Case {
  std::string name;
  std::vector<Mode> modes;
  std::function<void(Call&)> spoil;
  bnorm_status status;
  std::vector<std::string> message;  // each must appear in bnorm_last_error()
};

const std::vector<Mode> kAll = {Mode::kInference,          Mode::kTraining,  Mode::kBackward,
                                Mode::kLocalStats,         Mode::kNormalize, Mode::kBackwardReduce,
                                Mode::kBackwardElementwise};
const std::vector<Mode> kWithGamma = {Mode::kInference, Mode::kTraining, Mode::kBackward,
                                      Mode::kNormalize, Mode::kBackwardElementwise};
const std::vector<Mode> kWithMean = {Mode::kInference, Mode::kNormalize, Mode::kBackwardReduce,
                                     Mode::kBackwardElementwise};
const std::vector<Mode> kInference = {Mode::kInference};
const std::vector<Mode> kTraining = {Mode::kTraining};
const std::vector<Mode> kBackward = {Mode::kBackward};
const std::vector<Mode> kForward = {Mode::kInference, Mode::kTraining, Mode::kNormalize};
// Calls that read dy (and y with FUSE_RELU).
const std::vector<Mode> kWithDy = {Mode::kBackward, Mode::kBackwardReduce,
                                   Mode::kBackwardElementwise};
const std::vector<Mode> kWithDx = {Mode::kBackward, Mode::kBackwardElementwise};
const std::vector<Mode> kWithDgamma = {Mode::kBackward, Mode::kBackwardReduce};

std::vector<Case> Cases() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  return {
      // BNORM_ERR_NULL_POINTER
      {"desc NULL",
       kAll,
       [](Call& c) { c.desc = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"desc is NULL"}},
      {"shape NULL",
       kAll,
       [](Call& c) { c.shape = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"shape is NULL"}},
      {"x NULL", kAll, [](Call& c) { c.x = nullptr; }, BNORM_ERR_NULL_POINTER, {"x is NULL"}},
      {"y NULL", kForward, [](Call& c) { c.y = nullptr; }, BNORM_ERR_NULL_POINTER, {"y is NULL"}},
      {"mean NULL",
       kWithMean,
       [](Call& c) { c.mean = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"mean is NULL"}},
      {"var NULL",
       kInference,
       [](Call& c) { c.var = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"var is NULL"}},
      {"gamma NULL with AFFINE",
       kWithGamma,
       [](Call& c) { c.gamma = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"gamma is NULL but BNORM_FLAG_AFFINE is set"}},
      {"beta NULL with AFFINE",
       kForward,
       [](Call& c) { c.beta = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"beta is NULL but BNORM_FLAG_AFFINE is set"}},
      {"running_mean NULL with TRACK_RUNNING_STATS",
       kTraining,
       [](Call& c) { c.running_mean = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"}},
      {"running_var NULL with TRACK_RUNNING_STATS",
       kTraining,
       [](Call& c) { c.running_var = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"running_var is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"}},
      {"dy NULL", kWithDy, [](Call& c) { c.dy = nullptr; }, BNORM_ERR_NULL_POINTER, {"dy is NULL"}},
      {"save_mean NULL",
       kBackward,
       [](Call& c) { c.save_mean = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"save_mean is NULL"}},
      {"save_invstd NULL",
       kBackward,
       [](Call& c) { c.save_invstd = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"save_invstd is NULL"}},
      {"invstd NULL",
       {Mode::kNormalize, Mode::kBackwardReduce, Mode::kBackwardElementwise},
       [](Call& c) { c.save_invstd = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"invstd is NULL"}},
      {"partial_stats NULL",
       {Mode::kLocalStats},
       [](Call& c) { c.stats = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"partial_stats is NULL"}},
      {"grad_sums NULL",
       {Mode::kBackwardReduce},
       [](Call& c) { c.sums = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"grad_sums is NULL"}},
      {"whole batch's grad_sums NULL",
       {Mode::kBackwardElementwise},
       [](Call& c) { c.whole_sums = nullptr; },
       BNORM_ERR_NULL_POINTER,
       {"grad_sums is NULL"}},
      {"y NULL with FUSE_RELU",
       kWithDy,
       [](Call& c) {
         c.desc_storage.flags |= BNORM_FLAG_FUSE_RELU;
         c.y = nullptr;
       },
       BNORM_ERR_NULL_POINTER,
       {"y is NULL but BNORM_FLAG_FUSE_RELU is set"}},

      // BNORM_ERR_INVALID_DESCRIPTOR
      {"struct_size 0 (not initialised)",
       kAll,
       [](Call& c) { c.desc_storage.struct_size = 0; },
       BNORM_ERR_INVALID_DESCRIPTOR,
       {"struct_size is 0", "bnorm_desc_init"}},
      {"struct_size not on a field boundary",
       kAll,
       [](Call& c) { c.desc_storage.struct_size = 18; },
       BNORM_ERR_INVALID_DESCRIPTOR,
       {"struct_size is 18"}},
      {"struct_size larger than this version's",
       kAll,
       [](Call& c) { c.desc_storage.struct_size = sizeof(bnorm_desc) + 8; },
       BNORM_ERR_INVALID_DESCRIPTOR,
       {"struct_size is 48"}},
      {"num_features 0",
       kAll,
       [](Call& c) { c.desc_storage.num_features = 0; },
       BNORM_ERR_INVALID_DESCRIPTOR,
       {"num_features is 0; it must be > 0"}},
      {"num_features negative",
       kAll,
       [](Call& c) { c.desc_storage.num_features = -3; },
       BNORM_ERR_INVALID_DESCRIPTOR,
       {"num_features is -3"}},

      // BNORM_ERR_INVALID_ARGUMENT: descriptor fields
      {"eps 0",
       kAll,
       [](Call& c) { c.desc_storage.eps = 0; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"eps is 0"}},
      {"eps negative",
       kAll,
       [](Call& c) { c.desc_storage.eps = -1e-5f; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"eps is -1e-05"}},
      {"eps NaN",
       kAll,
       [nan](Call& c) { c.desc_storage.eps = nan; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"eps is nan"}},
      {"eps Inf",
       kAll,
       [inf](Call& c) { c.desc_storage.eps = inf; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"eps is inf"}},
      {"momentum negative",
       kAll,
       [](Call& c) { c.desc_storage.momentum = -0.5f; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"momentum is -0.5; it must be in [0, 1]"}},
      {"momentum above 1",
       kAll,
       [](Call& c) { c.desc_storage.momentum = 1.5f; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"momentum is 1.5"}},
      {"momentum NaN",
       kAll,
       [nan](Call& c) { c.desc_storage.momentum = nan; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"momentum is nan"}},
      {"unknown layout",
       kAll,
       [](Call& c) { c.desc_storage.layout = bnorm_layout(2); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"layout is 2"}},
      {"unknown dtype",
       kAll,
       [](Call& c) { c.desc_storage.dtype = bnorm_dtype(7); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"dtype is 7"}},
      {"unknown flag bits",
       kAll,
       [](Call& c) { c.desc_storage.flags |= 0x30; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"flags 0x33 has unknown bits 0x30"}},
      {"num_threads negative",
       kAll,
       [](Call& c) { c.desc_storage.num_threads = -2; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"num_threads is -2"}},

      // BNORM_ERR_INVALID_SHAPE
      {"rank 1",
       kAll,
       [](Call& c) { c.shape_storage = Shape({64}); },
       BNORM_ERR_INVALID_SHAPE,
       {"rank is 1; it must be 2 to 5"}},
      {"rank 6",
       kAll,
       [](Call& c) {
         c.shape_storage = Shape({2, 64, 1, 1, 1});
         c.shape_storage.rank = 6;
       },
       BNORM_ERR_INVALID_SHAPE,
       {"rank is 6"}},
      {"rank negative",
       kAll,
       [](Call& c) { c.shape_storage.rank = -1; },
       BNORM_ERR_INVALID_SHAPE,
       {"rank is -1"}},
      {"zero dimension",
       kAll,
       [](Call& c) { c.shape_storage.dims[2] = 0; },
       BNORM_ERR_INVALID_SHAPE,
       {"dims[2] is 0"}},
      {"negative dimension",
       kAll,
       [](Call& c) { c.shape_storage.dims[0] = -4; },
       BNORM_ERR_INVALID_SHAPE,
       {"dims[0] is -4"}},
      {"element count overflows",
       kAll,
       [](Call& c) {
         c.shape_storage = Shape({int64_t{1} << 40, 64, int64_t{1} << 40, 3});
       },
       BNORM_ERR_INVALID_SHAPE,
       {"(1099511627776, 64, 1099511627776, 3) overflows"}},
      {"byte count overflows",
       kAll,
       [](Call& c) {
         c.shape_storage = Shape({int64_t{1} << 56, 64});
       },
       BNORM_ERR_INVALID_SHAPE,
       {"overflows"}},

      // BNORM_ERR_FEATURE_MISMATCH: the layer's num_features differs from the input
      {"128 features, 64-channel input",
       kAll,
       [](Call& c) { c.desc_storage.num_features = 128; },
       BNORM_ERR_FEATURE_MISMATCH,
       {"input channel dimension (dim 1) is 64 but num_features is 128"}},
      {"channels-last input, last dim differs",
       kAll,
       [](Call& c) {
         c.desc_storage.layout = BNORM_LAYOUT_NHWC;
         c.desc_storage.num_features = 32;
         c.shape_storage = Shape({2, 3, 3, 64});
       },
       BNORM_ERR_FEATURE_MISMATCH,
       {"input channel dimension (dim 3) is 64 but num_features is 32"}},
      {"channels-last tensor described as NCHW",
       kAll,
       [](Call& c) {
         c.shape_storage = Shape({2, 3, 3, 64});
       },
       BNORM_ERR_FEATURE_MISMATCH,
       {"input channel dimension (dim 1) is 3 but num_features is 64",
        "set layout to BNORM_LAYOUT_NHWC"}},
      {"channels-first tensor described as NHWC",
       kAll,
       [](Call& c) { c.desc_storage.layout = BNORM_LAYOUT_NHWC; },
       BNORM_ERR_FEATURE_MISMATCH,
       {"input channel dimension (dim 3) is 3 but num_features is 64",
        "set layout to BNORM_LAYOUT_NCHW"}},
      {"BatchNorm1d input, rank 2",
       kAll,
       [](Call& c) {
         c.desc_storage.num_features = 12;
         c.shape_storage = Shape({32, 10});
       },
       BNORM_ERR_FEATURE_MISMATCH,
       {"input channel dimension (dim 1) is 10 but num_features is 12"}},

      // BNORM_ERR_INVALID_ARGUMENT: misaligned pointers
      {"x misaligned",
       kAll,
       [](Call& c) { c.x = Misaligned(c.spare); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"x (", "is not aligned to 4 bytes"}},
      {"y misaligned",
       kForward,
       [](Call& c) { c.y = Misaligned(c.spare); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"y (", "is not aligned to 4 bytes"}},
      {"gamma misaligned",
       kWithGamma,
       [](Call& c) { c.gamma = Misaligned(c.spare); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"gamma (", "is not aligned to 4 bytes"}},
      {"dx misaligned",
       kWithDx,
       [](Call& c) { c.dx = Misaligned(c.spare); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"dx (", "is not aligned to 4 bytes"}},
      {"partial_stats aligned to float, not double",
       {Mode::kLocalStats},
       [](Call& c) { c.stats = reinterpret_cast<double*>(c.spare + 1); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"partial_stats (", "is not aligned to 8 bytes"}},
      {"num_partials 0",
       {Mode::kBackwardElementwise},
       [](Call& c) { c.num_partials = 0; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"num_partials is 0 with num_features 64; it must be >= 1"}},
      {"grad_sums count not whole",
       {Mode::kBackwardElementwise},
       [](Call& c) { c.whole_sums[3 * 5] = 17.5; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"grad_sums block 0, channel 5: count is 17.5; it must be a whole number from 0 to 2^53"}},
      {"grad_sums of fewer values than this part",
       {Mode::kBackwardElementwise},
       [](Call& c) { c.whole_sums[3 * 7] = 9; },
       BNORM_ERR_INVALID_ARGUMENT,
       {"grad_sums channel 7: the total count is 9 but this part, of shape (2, 64, 3, 3), alone "
        "has 18 values per channel"}},
      {"save_invstd misaligned",
       kTraining,
       [](Call& c) { c.save_invstd = Misaligned(c.spare); },
       BNORM_ERR_INVALID_ARGUMENT,
       {"save_invstd (", "is not aligned to 4 bytes"}},

      // BNORM_ERR_ALIASING
      {"y one element past x",
       kForward,
       [](Call& c) { c.y = c.x + 1; },
       BNORM_ERR_ALIASING,
       {"y overlaps x (in place is allowed only with the same pointer)"}},
      {"y overlaps gamma",
       kForward,
       [](Call& c) { c.gamma = c.y + 100; },
       BNORM_ERR_ALIASING,
       {"y overlaps gamma"}},
      {"save_mean is running_mean",
       kTraining,
       [](Call& c) { c.save_mean = c.running_mean; },
       BNORM_ERR_ALIASING,
       {"running_mean overlaps save_mean"}},
      {"running_var overlaps running_mean",
       kTraining,
       [](Call& c) { c.running_var = c.running_mean + 63; },
       BNORM_ERR_ALIASING,
       {"running_mean overlaps running_var"}},
      {"dx is x", kWithDx, [](Call& c) { c.dx = c.x; }, BNORM_ERR_ALIASING, {"dx overlaps x"}},
      {"grad_sums overlaps dgamma",
       {Mode::kBackwardReduce},
       [](Call& c) { c.sums = reinterpret_cast<double*>(c.dgamma + 2); },
       BNORM_ERR_ALIASING,
       {"grad_sums overlaps dgamma"}},
      {"dx one element past dy",
       kWithDx,
       [](Call& c) { c.dx = c.dy + 1; },
       BNORM_ERR_ALIASING,
       {"dx overlaps dy (in place is allowed only with the same pointer)"}},
      {"dgamma is dbeta",
       kWithDgamma,
       [](Call& c) { c.dbeta = c.dgamma; },
       BNORM_ERR_ALIASING,
       {"dgamma overlaps dbeta"}},

      // BNORM_ERR_TOO_FEW_VALUES
      {"training on one value per channel",
       kTraining,
       [](Call& c) {
         c.shape_storage = Shape({1, 64, 1, 1});
       },
       BNORM_ERR_TOO_FEW_VALUES,
       {"training needs more than 1 value per channel, got input of shape (1, 64, 1, 1)"}},
      {"training on a single row",
       kTraining,
       [](Call& c) {
         c.desc_storage.layout = BNORM_LAYOUT_NHWC;
         c.shape_storage = Shape({1, 64});
       },
       BNORM_ERR_TOO_FEW_VALUES,
       {"got input of shape (1, 64)"}},
      {"training-mode backward on one value per channel",
       kBackward,
       [](Call& c) {
         c.shape_storage = Shape({1, 64, 1});
       },
       BNORM_ERR_TOO_FEW_VALUES,
       {"training-mode backward needs more than 1 value per channel, got input of shape (1, 64, "
        "1)"}},

      // Half tensors (bf16, f16): 2-byte elements, aligned to 2 bytes; the
      // per-channel vectors stay float, aligned to 4.
      {"bf16 x misaligned",
       kAll,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_BF16;
         c.x = Misaligned(c.spare);
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"x (", "is not aligned to 2 bytes"}},
      {"f16 y misaligned",
       kForward,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_F16;
         c.y = Misaligned(c.spare);
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"y (", "is not aligned to 2 bytes"}},
      {"f16 dy misaligned",
       kWithDy,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_F16;
         c.dy = Misaligned(c.spare);
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"dy (", "is not aligned to 2 bytes"}},
      {"bf16 dx misaligned",
       kWithDx,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_BF16;
         c.dx = Misaligned(c.spare);
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"dx (", "is not aligned to 2 bytes"}},
      {"bf16 gamma aligned to 2 bytes only",
       kWithGamma,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_BF16;
         c.gamma = TwoBytesIn(c.spare);
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"gamma (", "is not aligned to 4 bytes"}},
      {"f16 y overlaps x's last element",
       kForward,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_F16;
         c.y = c.x + kHalfTensorFloats - 1;
       },
       BNORM_ERR_ALIASING,
       {"y overlaps x (in place is allowed only with the same pointer)"}},
      {"bf16 dx overlaps dy's last element",
       kWithDx,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_BF16;
         c.dx = c.dy + kHalfTensorFloats - 1;
       },
       BNORM_ERR_ALIASING,
       {"dx overlaps dy"}},
      {"bf16 training on one value per channel",
       kTraining,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_BF16;
         c.shape_storage = Shape({1, 64, 1, 1});
       },
       BNORM_ERR_TOO_FEW_VALUES,
       {"needs more than 1 value per channel"}},

      // Several errors at once: the documented order decides which is reported.
      {"desc and shape NULL",
       kAll,
       [](Call& c) {
         c.desc = nullptr;
         c.shape = nullptr;
       },
       BNORM_ERR_NULL_POINTER,
       {"desc is NULL"}},
      {"shape NULL before descriptor fields",
       kAll,
       [](Call& c) {
         c.shape = nullptr;
         c.desc_storage.eps = -1;
       },
       BNORM_ERR_NULL_POINTER,
       {"shape is NULL"}},
      {"descriptor before its fields",
       kAll,
       [](Call& c) {
         c.desc_storage.num_features = 0;
         c.desc_storage.eps = -1;
       },
       BNORM_ERR_INVALID_DESCRIPTOR,
       {"num_features is 0"}},
      {"descriptor fields before shape",
       kAll,
       [](Call& c) {
         c.desc_storage.momentum = 2;
         c.shape_storage.rank = 7;
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"momentum is 2"}},
      {"shape before channel mismatch",
       kAll,
       [](Call& c) {
         c.shape_storage.dims[3] = 0;
         c.desc_storage.num_features = 128;
       },
       BNORM_ERR_INVALID_SHAPE,
       {"dims[3] is 0"}},
      {"channel mismatch before NULL data",
       kAll,
       [](Call& c) {
         c.desc_storage.num_features = 128;
         c.x = nullptr;
       },
       BNORM_ERR_FEATURE_MISMATCH,
       {"is 64 but num_features is 128"}},
      {"NULL data before misalignment",
       kWithGamma,
       [](Call& c) {
         c.gamma = nullptr;
         c.x = Misaligned(c.spare);
       },
       BNORM_ERR_NULL_POINTER,
       {"gamma is NULL"}},
      {"misalignment before overlap",
       kForward,
       [](Call& c) {
         c.y = c.x + 1;
         c.beta = Misaligned(c.spare);
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"beta ("}},
      {"overlap before too few values",
       kTraining,
       [](Call& c) {
         c.shape_storage = Shape({1, 64, 1, 1});
         c.save_invstd = c.save_mean;
       },
       BNORM_ERR_ALIASING,
       {"save_mean overlaps save_invstd"}},
      {"f16: misalignment before overlap",
       kForward,
       [](Call& c) {
         c.desc_storage.dtype = BNORM_DTYPE_F16;
         c.y = Misaligned(c.x);  // inside x, too
       },
       BNORM_ERR_INVALID_ARGUMENT,
       {"y (", "is not aligned to 2 bytes"}},
  };
}

// One test per (case, function): the call fails with the case's status and
// message, and every buffer it could reach is exactly as it was.
struct CaseAndMode {
  size_t index;
  Mode mode;
};

std::vector<CaseAndMode> AllCasesAndModes() {
  std::vector<CaseAndMode> all;
  const std::vector<Case> cases = Cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    for (Mode mode : cases[i].modes) all.push_back({i, mode});
  }
  return all;
}

std::string CaseName(const ::testing::TestParamInfo<CaseAndMode>& info) {
  std::string name = std::string(ModeName(info.param.mode)) + "_" + Cases()[info.param.index].name;
  for (char& ch : name) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

class RejectedCallTest : public ::testing::TestWithParam<CaseAndMode> {};

TEST_P(RejectedCallTest, ReportsStatusAndMessageAndWritesNothing) {
  const Case test = Cases()[GetParam().index];
  Call call;
  test.spoil(call);
  const std::vector<std::vector<float>> before = call.memory;
  EXPECT_EQ(call.Run(GetParam().mode), test.status)
      << bnorm_status_string(test.status) << " expected; message: " << bnorm_last_error();
  const std::string message = bnorm_last_error();
  for (const std::string& part : test.message) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "message \"" << message << "\" lacks \"" << part << "\"";
  }
  EXPECT_TRUE(call.memory == before) << "a rejected call wrote to a buffer";
}

INSTANTIATE_TEST_SUITE_P(Cases, RejectedCallTest, ::testing::ValuesIn(AllCasesAndModes()),
                         CaseName);

// A call that only differs from a failing one by the spoiled argument works,
// in every dtype: the cases above fail for the reason they name, not another.
TEST(ValidationTest, TheUnspoiledCallSucceeds) {
  for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_BF16, BNORM_DTYPE_F16}) {
    for (Mode mode : kAll) {
      SCOPED_TRACE(std::string(ModeName(mode)) + ", dtype " + std::to_string(dtype));
      Call call;
      call.desc_storage.dtype = dtype;
      EXPECT_EQ(call.Run(mode), BNORM_OK) << bnorm_last_error();
      EXPECT_STREQ(bnorm_last_error(), "");
    }
  }
}

// Half tensors need only 2-byte alignment, and take 2 bytes per element: y
// and dx may start right where x and dy end.
TEST(ValidationTest, HalfTensorsAreAlignedToAndSizedInTwoByteElements) {
  for (bnorm_dtype dtype : {BNORM_DTYPE_BF16, BNORM_DTYPE_F16}) {
    for (Mode mode : kAll) {
      SCOPED_TRACE(std::string(ModeName(mode)) + ", dtype " + std::to_string(dtype));
      Call off_float;
      off_float.desc_storage.dtype = dtype;
      off_float.x = TwoBytesIn(off_float.x);
      off_float.y = TwoBytesIn(off_float.y);
      off_float.dy = TwoBytesIn(off_float.dy);
      off_float.dx = TwoBytesIn(off_float.dx);
      EXPECT_EQ(off_float.Run(mode), BNORM_OK) << bnorm_last_error();
      Call adjacent;
      adjacent.desc_storage.dtype = dtype;
      adjacent.y = adjacent.x + kHalfTensorFloats;
      adjacent.dx = adjacent.dy + kHalfTensorFloats;
      EXPECT_EQ(adjacent.Run(mode), BNORM_OK) << bnorm_last_error();
    }
  }
}

// Pointers the flags leave unused are neither read nor checked.
TEST(ValidationTest, PointersTheFlagsMakeIrrelevantAreNotChecked) {
  for (Mode mode : kAll) {
    SCOPED_TRACE(ModeName(mode));
    Call call;
    call.desc_storage.flags = 0;
    call.gamma = Misaligned(call.spare);
    call.beta = nullptr;
    call.running_mean = nullptr;
    call.running_var = Misaligned(call.spare);
    // y only matters to the backward calls with FUSE_RELU.
    const bool backward = mode == Mode::kBackward || mode == Mode::kBackwardReduce ||
                          mode == Mode::kBackwardElementwise;
    call.y = backward ? nullptr : call.y;
    EXPECT_EQ(call.Run(mode), BNORM_OK) << bnorm_last_error();
  }
}

// Read-only inputs may share memory: nothing they hold changes during the call.
TEST(ValidationTest, InputsMayShareMemory) {
  Call call;
  call.var = call.gamma;  // e.g. one buffer of ones for both
  call.beta = call.mean;
  EXPECT_EQ(call.Run(Mode::kInference), BNORM_OK) << bnorm_last_error();
  call.save_invstd = call.gamma;
  call.dy = call.x;
  EXPECT_EQ(call.Run(Mode::kBackward), BNORM_OK) << bnorm_last_error();
}

TEST(ValidationTest, DescInit) {
  EXPECT_EQ(bnorm_desc_init(nullptr, 64), BNORM_ERR_NULL_POINTER);
  EXPECT_STREQ(bnorm_last_error(), "desc is NULL");

  bnorm_desc d;
  memset(&d, 0xAB, sizeof(d));
  ASSERT_EQ(bnorm_desc_init(&d, 64), BNORM_OK);
  EXPECT_EQ(d.struct_size, sizeof(bnorm_desc));
  EXPECT_EQ(d.num_features, 64);
  EXPECT_EQ(d.eps, 1e-5f);
  EXPECT_EQ(d.momentum, 0.1f);
  EXPECT_EQ(d.flags, BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS);
  EXPECT_EQ(d.layout, BNORM_LAYOUT_NCHW);
  EXPECT_EQ(d.dtype, BNORM_DTYPE_F32);
  EXPECT_EQ(d.num_threads, 0);

  // A bad count still initialises everything, so later calls fail the same way.
  memset(&d, 0xAB, sizeof(d));
  EXPECT_EQ(bnorm_desc_init(&d, 0), BNORM_ERR_INVALID_DESCRIPTOR);
  EXPECT_STREQ(bnorm_last_error(), "num_features is 0; it must be > 0");
  EXPECT_EQ(d.struct_size, sizeof(bnorm_desc));
  EXPECT_EQ(d.eps, 1e-5f);
  const bnorm_shape shape = Shape({2, 1});
  float x[2] = {1, 2}, y[2], stats[2] = {0, 1};
  EXPECT_EQ(bnorm_forward_inference(&d, &shape, x, y, stats, stats + 1, nullptr, nullptr),
            BNORM_ERR_INVALID_DESCRIPTOR);
  EXPECT_STREQ(bnorm_last_error(), "num_features is 0; it must be > 0");
}

// Scratch for training and backward is O(C); a C that cannot be had is
// BNORM_ERR_OUT_OF_MEMORY before anything is touched. The tensor pointers are
// never dereferenced: the allocation fails first.
TEST(ValidationTest, ScratchThatCannotBeAllocatedIsOutOfMemory) {
  const int64_t channels = int64_t{1} << 44;
  const bnorm_shape shape = Shape({2, channels});
  bnorm_desc d = Desc(channels, BNORM_LAYOUT_NHWC, BNORM_FLAG_AFFINE);
  // Far apart, aligned, never touched.
  auto fake = [](int i) {
    return reinterpret_cast<float*>(uintptr_t{1} << 48) + (int64_t{1} << 46) * i;
  };
  EXPECT_EQ(bnorm_forward_training(&d, &shape, fake(0), fake(1), fake(2), fake(3), nullptr, nullptr,
                                   nullptr, nullptr),
            BNORM_ERR_OUT_OF_MEMORY);
  EXPECT_NE(std::string(bnorm_last_error()).find("could not allocate"), std::string::npos)
      << bnorm_last_error();
  EXPECT_EQ(bnorm_backward(&d, &shape, fake(0), fake(1), nullptr, fake(2), fake(3), fake(4),
                           fake(5), nullptr, nullptr),
            BNORM_ERR_OUT_OF_MEMORY);
  EXPECT_NE(std::string(bnorm_last_error()).find("bytes of scratch for backward"),
            std::string::npos)
      << bnorm_last_error();
}

// A binary built against an older, shorter bnorm_desc passes its own
// struct_size; the library reads no further and uses defaults for the rest.
TEST(ValidationTest, OlderDescriptorSizesGetDefaultsForMissingFields) {
  const bnorm_shape shape = Shape({4, 3, 5, 5});
  const std::vector<float> x = Uniform(300, -2, 2, 1);
  const std::vector<float> gamma = Uniform(3, 0.5f, 2, 2), beta = Uniform(3, -1, 1, 3);
  const size_t sizes[] = {offsetof(bnorm_desc, eps),   offsetof(bnorm_desc, momentum),
                          offsetof(bnorm_desc, flags), offsetof(bnorm_desc, layout),
                          offsetof(bnorm_desc, dtype), offsetof(bnorm_desc, num_threads),
                          sizeof(bnorm_desc)};
  for (size_t size : sizes) {
    SCOPED_TRACE("struct_size " + std::to_string(size));
    // What the old binary sets: non-default values in the fields it knows.
    bnorm_desc full;
    bnorm_desc_init(&full, 3);
    full.struct_size = static_cast<uint32_t>(size);
    if (size > offsetof(bnorm_desc, eps)) full.eps = 0.5f;
    if (size > offsetof(bnorm_desc, momentum)) full.momentum = 0.75f;
    if (size > offsetof(bnorm_desc, flags)) full.flags = BNORM_FLAG_TRACK_RUNNING_STATS;
    // Past struct_size the old binary's memory holds anything at all.
    bnorm_desc old = full;
    memset(reinterpret_cast<char*>(&old) + size, 0xEE, sizeof(old) - size);
    full.struct_size = sizeof(bnorm_desc);

    std::vector<float> y_old(x.size()), y_full(x.size());
    std::vector<float> stats_old = {0, 0, 0, 1, 1, 1}, stats_full = stats_old;
    ASSERT_EQ(
        bnorm_forward_training(&old, &shape, x.data(), y_old.data(), gamma.data(), beta.data(),
                               stats_old.data(), stats_old.data() + 3, nullptr, nullptr),
        BNORM_OK)
        << bnorm_last_error();
    ASSERT_EQ(
        bnorm_forward_training(&full, &shape, x.data(), y_full.data(), gamma.data(), beta.data(),
                               stats_full.data(), stats_full.data() + 3, nullptr, nullptr),
        BNORM_OK);
    EXPECT_EQ(y_old, y_full);
    EXPECT_EQ(stats_old, stats_full);
  }
}

}  // namespace
}  // namespace bnorm_test
