// Each bnorm call that takes a tensor, on half (bf16 or f16) tensors.
// - Forward calls run twice, also on float32 tensors holding the same values:
//   the half call's tensors must be the float32 call's rounded to the type
//   (to nearest, ties to even), its per-channel results bit-identical, in
//   place as out of place; with finite data its results must also be near
//   the float64 reference (see NearInHalf).
// - Backward calls compute in double on half tensors: dx must be within 1 ulp
//   of the float64 reference (WithinOneUlp), special values included, and
//   the in-place and split forms must give the same bits as bnorm_backward.
// Failures are reported through gtest's EXPECTs.
#ifndef BNORM_TESTS_HALF_CALLS_H_
#define BNORM_TESTS_HALF_CALLS_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/reference.h"
#include "tests/test_support.h"

namespace bnorm_test {

// One layer's data for one dtype: tensors representable in it, the layer's
// per-channel vectors, and what a training step's forward gives the
// backward calls.
struct Batch {
  std::vector<float> x, residual, dy;
  Layer layer;
  // Set by Derive.
  std::vector<float> y, save_mean, save_invstd, scale, shift;
  TrainingResult forward;

  // Random x (ChannelData), residual and dy, rounded to the type.
  Batch(bnorm_dtype dtype, const Geometry& g, uint32_t seed);
  // The rest, from x and the layer: y as the forward call gives it (rounded
  // to the type), the statistics and the folded scale and shift as float.
  void Derive(bnorm_dtype dtype, const Geometry& g);
};

// Where and how one (dtype, shape) runs.
struct Case {
  bnorm_dtype dtype;
  bnorm_layout layout;
  bnorm_shape shape;
  Geometry g;
  int32_t threads;    // the half call's num_threads; the float32 call uses 1
  size_t offset;      // elements from the half tensors' allocations to their start
  bool vs_reference;  // finite data: compare with the float64 reference too
};

// `index` varies num_threads (0, 1, 2) and the half tensors' offset (0, 1:
// aligned to 2 bytes only).
Case MakeCase(bnorm_dtype dtype, bnorm_layout layout, const bnorm_shape& shape, int index,
              bool vs_reference);
std::string Describe(const Case& k);

// The flag combinations that matter to each call.
std::vector<uint32_t> InferenceFlags();  // AFFINE x FUSE_RELU
std::vector<uint32_t> ReluFlags();       // FUSE_RELU or not
std::vector<uint32_t> TrainingFlags();   // AFFINE x TRACK_RUNNING_STATS x FUSE_RELU
std::vector<uint32_t> BackwardFlags();   // AFFINE x FUSE_RELU x USE_GLOBAL_STATS

// `residual` selects the call's _residual twin. Forward calls also run with
// y over x (and over the residual); backward ones with dx (and d_residual)
// over dy.
void CheckInference(const Case& k, const Batch& b, uint32_t flags, bool residual);
void CheckScaleShift(const Case& k, const Batch& b, uint32_t flags);
void CheckTraining(const Case& k, const Batch& b, uint32_t flags, bool residual);
void CheckBackward(const Case& k, const Batch& b, uint32_t flags, bool residual);
void CheckLocalStats(const Case& k, const Batch& b);
void CheckNormalize(const Case& k, const Batch& b, uint32_t flags);
void CheckBackwardReduce(const Case& k, const Batch& b, uint32_t flags);
void CheckBackwardElementwise(const Case& k, const Batch& b, uint32_t flags);

// All of the above, with every flag combination that matters to each call.
void CheckEveryCall(const Case& k, const Batch& b);

}  // namespace bnorm_test

#endif  // BNORM_TESTS_HALF_CALLS_H_
