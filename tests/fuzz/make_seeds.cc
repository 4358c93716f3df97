// Writes the seed corpus: one file per scenario, each a short call sequence
// in the harness's input format. Usage (see README.md):
//   bnorm_fuzz_seeds DIR
// Seeds cover every entry point, both layouts, every rank, in-place calls,
// the flags, larger shapes that use threads or streaming stores, and one call
// per error kind.
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/bnorm.h"
#include "input_format.h"

namespace bnorm_fuzz {
namespace {

constexpr uint32_t kDefaultFlags = BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS;
constexpr int kNchw = BNORM_LAYOUT_NCHW, kNhwc = BNORM_LAYOUT_NHWC;

// Slot indices, per entry point (the argument order of bnorm.h).
enum { kX = 0, kY = 1, kInfMean = 2, kInfVar = 3, kInfGamma = 4, kInfBeta = 5 };
enum { kTrGamma = 2, kTrBeta = 3, kRunMean = 4, kRunVar = 5, kSaveMean = 6, kSaveInvstd = 7 };
enum { kBwDy = 1, kBwY = 2, kBwGamma = 3, kDx = 6, kDgamma = 7, kDbeta = 8 };
enum { kFsMean = 0, kFsVar = 1, kFsGamma = 2, kFsBeta = 3, kScale = 4, kShift = 5 };
enum { kSsScale = 2, kSsShift = 3 };
enum { kWeights = 0, kBias = 1, kFlMean = 2, kFlVar = 3, kFlGamma = 4, kFlBeta = 5 };
enum { kFoldedWeights = 6, kFoldedBias = 7 };
// Since 1.2, the split phases.
enum { kLocalPartial = 1 };
enum { kMsPartial = 0, kMsMerged = 1, kMsMean = 2, kMsInvstd = 3, kMsRunMean = 4, kMsRunVar = 5 };
enum { kFnGamma = 2, kFnBeta = 3, kFnMean = 4, kFnInvstd = 5 };
enum { kBrMean = 3, kBrInvstd = 4, kGradSums = 5, kBrDgamma = 6, kBrDbeta = 7 };
enum { kBeGamma = 3, kBeMean = 4, kBeInvstd = 5, kBeSums = 6, kBeDx = 7 };
// Since 1.2, the residual-add calls: residual right after x, then y.
enum { kRes = 1, kRY = 2 };
enum { kRiMean = 3, kRiVar = 4, kRiGamma = 5, kRiBeta = 6 };
enum {
  kRtGamma = 3,
  kRtBeta = 4,
  kRtRunMean = 5,
  kRtRunVar = 6,
  kRtSaveMean = 7,
  kRtSaveInvstd = 8
};
enum { kRbSaveMean = 4, kRbSaveInvstd = 5, kRbDx = 6, kRbDres = 7, kRbDgamma = 8, kRbDbeta = 9 };

uint32_t next_seed = 1;

// A call on a shape whose channel dimension matches num_features.
CallSpec Compute(Op op, int layout, std::initializer_list<int64_t> dims,
                 uint32_t flags = kDefaultFlags) {
  CallSpec c;
  c.op = op;
  c.desc.layout = layout;
  c.desc.flags = flags;
  c.shape.rank = static_cast<int32_t>(dims.size());
  int i = 0;
  for (int64_t d : dims) c.shape.dims[i++] = d;
  for (; i < 5; ++i) c.shape.dims[i] = 0;
  c.desc.num_features = c.shape.dims[layout == kNhwc ? c.shape.rank - 1 : 1];
  c.seed = next_seed++;
  return c;
}

// A call without a shape: bnorm_fold_scale_shift, bnorm_fold_into_layer.
CallSpec Layer(Op op, int64_t num_features, int64_t row_length = 9,
               uint32_t flags = kDefaultFlags) {
  CallSpec c;
  c.op = op;
  c.desc.flags = flags;
  c.desc.num_features = num_features;
  c.row_length = row_length;
  c.seed = next_seed++;
  return c;
}

// bnorm_merge_stats of num_partials blocks.
CallSpec Merge(int64_t num_features, int32_t num_partials, uint32_t flags = kDefaultFlags) {
  CallSpec c = Layer(Op::kMergeStats, num_features, 9, flags);
  c.num_partials = num_partials;
  return c;
}

StatsSpec Counts(int64_t count) {
  StatsSpec s;
  s.kind = StatsSpec::kCount;
  s.count = count;
  return s;
}

// bnorm_backward_elementwise with num_partials blocks of grad sums, each with
// this part's count (an allgather of equal parts).
CallSpec Elementwise(int layout, std::initializer_list<int64_t> dims, int32_t num_partials,
                     uint32_t flags = kDefaultFlags) {
  CallSpec c = Compute(Op::kBackwardElementwise, layout, dims, flags);
  c.num_partials = num_partials;
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  c.stats = Counts(count / c.desc.num_features);
  return c;
}
StatsSpec Poked(uint8_t pokes) {
  StatsSpec s;
  s.kind = StatsSpec::kPoked;
  s.pokes = pokes;
  return s;
}
StatsSpec OfKind(StatsSpec::Kind kind) {
  StatsSpec s;
  s.kind = kind;
  return s;
}

Placement Null() { return Placement{Placement::kNull, 0, 0, 0}; }
Placement Same(uint8_t target) { return Placement{Placement::kSame, target, 0, 0}; }
Placement Offset(uint8_t target, int16_t delta) {
  return Placement{Placement::kOffset, target, delta, 0};
}
Placement Misaligned(uint8_t bytes) { return Placement{Placement::kMisaligned, 0, 0, bytes}; }

template <class F>
CallSpec With(CallSpec c, F change) {
  change(c);
  return c;
}

CallSpec Simple(Op op) {
  CallSpec c;
  c.op = op;
  return c;
}
CallSpec Valued(Op op, int32_t value) {
  CallSpec c = Simple(op);
  c.value = value;
  return c;
}
CallSpec DescInit(int64_t num_features, bool null = false) {
  CallSpec c = Simple(Op::kDescInit);
  c.desc.num_features = num_features;
  c.desc.null = null;
  return c;
}
CallSpec CapAt(CallSpec::NameKind kind, uint8_t index, const char* raw = "") {
  CallSpec c = Simple(Op::kSetMaxTarget);
  c.name_kind = kind;
  c.name_index = index;
  c.raw_name = raw;
  return c;
}

using Seed = std::pair<std::string, std::vector<CallSpec>>;

std::vector<Seed> Seeds() {
  const Op kInf = Op::kInference, kTr = Op::kTraining, kBw = Op::kBackward;
  const CallSpec inf = Compute(kInf, kNchw, {2, 3, 4, 5});
  const CallSpec tr = Compute(kTr, kNchw, {2, 3, 4, 5});
  const CallSpec bw = Compute(kBw, kNchw, {2, 3, 4, 5});
  std::vector<Seed> seeds = {
      {"desc_init", {DescInit(8), DescInit(0), DescInit(-5), DescInit(8, true)}},
      {"queries",
       {Simple(Op::kQueries), Valued(Op::kTargetName, 0), Valued(Op::kTargetName, -1),
        Valued(Op::kTargetName, 99)}},
      {"status_strings",
       {Valued(Op::kStatusString, 0), Valued(Op::kStatusString, 7), Valued(Op::kStatusString, 10),
        Valued(Op::kStatusString, 11), Valued(Op::kStatusString, -1),
        Valued(Op::kStatusString, 1 << 20)}},
      {"caps",
       {CapAt(CallSpec::kListedName, 5), Simple(Op::kQueries), CapAt(CallSpec::kListedName, 3),
        CapAt(CallSpec::kRawName, 0, "bogus"), CapAt(CallSpec::kListedName, 10),
        Simple(Op::kQueries)}},
      // Valid calls: every entry point in both layouts and every rank.
      {"inference_nchw", {inf}},
      {"inference_nhwc", {Compute(kInf, kNhwc, {2, 4, 5, 3})}},
      {"training_nchw", {tr}},
      {"training_nhwc", {Compute(kTr, kNhwc, {2, 4, 5, 3})}},
      {"backward_nchw", {bw}},
      {"backward_nhwc", {Compute(kBw, kNhwc, {2, 4, 5, 3})}},
      {"rank2",
       {Compute(kInf, kNchw, {5, 7}), Compute(kTr, kNhwc, {5, 7}), Compute(kBw, kNchw, {5, 7})}},
      {"rank3",
       {Compute(kInf, kNhwc, {2, 9, 6}), Compute(kTr, kNchw, {2, 6, 9}),
        Compute(kBw, kNhwc, {2, 9, 6})}},
      {"rank5",
       {Compute(kInf, kNchw, {2, 3, 2, 3, 4}), Compute(kTr, kNhwc, {2, 2, 3, 4, 3}),
        Compute(kBw, kNchw, {2, 3, 2, 3, 4})}},
      // In place: the one pair each function allows.
      {"inference_in_place", {With(inf, [](CallSpec& c) { c.slots[kY] = Same(kX); })}},
      {"training_in_place",
       {With(Compute(kTr, kNhwc, {3, 5, 17}), [](CallSpec& c) { c.slots[kY] = Same(kX); })}},
      {"backward_in_place", {With(bw, [](CallSpec& c) { c.slots[kDx] = Same(kBwDy); })}},
      // Flags and the pointers they make optional.
      {"inference_plain_relu",
       {With(Compute(kInf, kNhwc, {4, 3, 3, 16}, BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) { c.slots[kInfGamma] = c.slots[kInfBeta] = Null(); })}},
      {"training_untracked",
       {With(Compute(kTr, kNchw, {4, 8, 3}, BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) {
               for (int s : {kTrGamma, kTrBeta, kRunMean, kRunVar, kSaveMean, kSaveInvstd}) {
                 c.slots[s] = Null();
               }
             })}},
      {"backward_relu", {Compute(kBw, kNhwc, {3, 7, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)}},
      {"backward_global_stats",
       {Compute(kBw, kNchw, {1, 6}, BNORM_FLAG_USE_GLOBAL_STATS),
        With(Compute(kBw, kNhwc, {2, 3, 3, 6}, BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE),
             [](CallSpec& c) { c.slots[kDgamma] = c.slots[kDbeta] = Null(); })}},
      {"backward_no_outputs",
       {With(bw, [](CallSpec& c) { c.slots[kDx] = c.slots[kDgamma] = c.slots[kDbeta] = Null(); })}},
      {"read_only_overlap",
       {With(inf, [](CallSpec& c) { c.slots[kInfVar] = Same(kInfMean); }),
        With(bw, [](CallSpec& c) { c.slots[kBwDy] = Same(kX); })}},
      {"older_struct_sizes",
       {With(inf, [](CallSpec& c) { c.desc.struct_size = 16; }),
        With(tr, [](CallSpec& c) { c.desc.struct_size = 28; }),
        With(bw, [](CallSpec& c) { c.desc.struct_size = 36; })}},
      // Larger shapes: several threads and reduction chunks.
      {"large_training_nchw",
       {With(Compute(kTr, kNchw, {4, 8, 32, 32}), [](CallSpec& c) { c.desc.num_threads = 2; })}},
      {"large_backward_nhwc",
       {With(Compute(kBw, kNhwc, {8, 16, 16, 16}), [](CallSpec& c) { c.desc.num_threads = 3; })}},
      {"large_inference_nchw", {Compute(kInf, kNchw, {2, 16, 32, 32})}},
      {"large_training_nhwc_many_rows", {Compute(kTr, kNhwc, {4096, 3})}},
      // 16 MiB outputs, which the library writes with non-temporal stores:
      // run with BNORM_FUZZ_MAX_ELEMENTS >= 4194304, else passed with x NULL.
      {"streaming",
       {Compute(kInf, kNchw, {1, 4, 1024, 1024}), Compute(kTr, kNhwc, {4096, 1024}),
        Compute(kBw, kNchw, {16, 2, 512, 256})}},
      // One call per error, in bnorm.h's order of precedence.
      {"err_null_desc", {With(inf, [](CallSpec& c) { c.desc.null = true; })}},
      {"err_null_shape", {With(tr, [](CallSpec& c) { c.shape.null = true; })}},
      {"err_struct_size",
       {With(bw, [](CallSpec& c) { c.desc.struct_size = 3; }),
        With(inf, [](CallSpec& c) { c.desc.struct_size = 18; })}},
      {"err_num_features", {With(tr, [](CallSpec& c) { c.desc.num_features = 0; })}},
      {"err_eps", {With(inf, [](CallSpec& c) { c.desc.eps_bits = 0; })}},
      {"err_momentum", {With(tr, [](CallSpec& c) { c.desc.momentum_bits = 0x7fc00000; })}},
      {"err_layout", {With(inf, [](CallSpec& c) { c.desc.layout = 7; })}},
      {"err_dtype", {With(bw, [](CallSpec& c) { c.desc.dtype = 9; })}},
      {"err_flags", {With(tr, [](CallSpec& c) { c.desc.flags |= 0x10; })}},
      {"err_threads", {With(inf, [](CallSpec& c) { c.desc.num_threads = -1; })}},
      {"err_rank",
       {With(inf, [](CallSpec& c) { c.shape.rank = 6; }),
        With(tr, [](CallSpec& c) { c.shape.rank = 1; })}},
      {"err_dims",
       {With(inf, [](CallSpec& c) { c.shape.dims[2] = 0; }),
        With(bw, [](CallSpec& c) { c.shape.dims[0] = -3; })}},
      {"err_overflow",
       {Compute(kInf, kNchw, {int64_t{1} << 40, 4, int64_t{1} << 40}),
        Compute(kTr, kNhwc, {int64_t{1} << 61, 4})}},
      {"huge_valid_shape",
       {Compute(kInf, kNchw, {int64_t{1} << 40, 4}),
        Compute(kBw, kNhwc, {int64_t{1} << 20, 1 << 20, 4})}},
      {"err_feature_mismatch",
       {With(Compute(kInf, kNhwc, {2, 4, 5, 3}), [](CallSpec& c) { c.desc.layout = kNchw; })}},
      {"err_null_data",
       {With(inf, [](CallSpec& c) { c.slots[kX] = Null(); }),
        With(tr, [](CallSpec& c) { c.slots[kTrGamma] = Null(); }),
        With(bw,
             [](CallSpec& c) {
               c.desc.flags |= BNORM_FLAG_FUSE_RELU;
               c.slots[kBwY] = Null();
             })}},
      {"err_misaligned",
       {With(inf, [](CallSpec& c) { c.slots[kY] = Misaligned(2); }),
        With(tr, [](CallSpec& c) { c.slots[kRunVar] = Misaligned(1); })}},
      {"err_aliasing",
       {With(inf, [](CallSpec& c) { c.slots[kY] = Offset(kX, 4); }),
        With(tr, [](CallSpec& c) { c.slots[kSaveMean] = Same(kRunMean); }),
        With(bw, [](CallSpec& c) { c.slots[kDx] = Same(kX); })}},
      {"err_too_few_values", {Compute(kTr, kNchw, {1, 5}), Compute(kBw, kNhwc, {1, 1, 1, 5})}},
      {"err_unsupported",
       {With(inf, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; }),
        With(bw, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; })}},
  };
  // Each target this machine may have, capped in turn.
  for (uint8_t t = 0; t < 6; ++t) {
    seeds.push_back(
        {"target" + std::to_string(t),
         {CapAt(CallSpec::kTargetIndex, t), Compute(kInf, kNhwc, {3, 5, 2, 19}),
          Compute(kTr, kNchw, {3, 19, 5, 2}), Compute(kBw, kNhwc, {7, 33}), Simple(Op::kQueries)}});
  }
  // Since 1.1: the folding calls, appended so that the seeds above keep their
  // names. Valid calls first.
  const Op kFs = Op::kFoldScaleShift, kSs = Op::kForwardScaleShift, kFl = Op::kFoldIntoLayer;
  const CallSpec fs = Layer(kFs, 6);
  const CallSpec ss = Compute(kSs, kNchw, {2, 3, 4, 5});
  const CallSpec fl = Layer(kFl, 6, 27);
  const std::vector<Seed> folding = {
      {"fold_scale_shift", {fs, Layer(kFs, 1), Layer(kFs, 37, 9, 0)}},
      {"scale_shift_nchw", {ss, Compute(kSs, kNchw, {5, 7}), Compute(kSs, kNchw, {2, 3, 2, 3, 4})}},
      {"scale_shift_nhwc",
       {Compute(kSs, kNhwc, {2, 4, 5, 3}), Compute(kSs, kNhwc, {2, 9, 6}),
        Compute(kSs, kNhwc, {1, 1, 1, 1, 5})}},
      {"fold_into_layer",
       {fl, Layer(kFl, 1, 1), Layer(kFl, 16, 3 * 3 * 8),
        With(Layer(kFl, 5, 7, 0),
             [](CallSpec& c) { c.slots[kFlGamma] = c.slots[kFlBeta] = Null(); })}},
      {"fold_into_layer_no_bias", {With(fl, [](CallSpec& c) { c.slots[kBias] = Null(); })}},
      // In place: the pairs each function allows.
      {"scale_shift_in_place", {With(ss, [](CallSpec& c) { c.slots[kY] = Same(kX); })}},
      {"fold_into_layer_in_place",
       {With(fl, [](CallSpec& c) { c.slots[kFoldedWeights] = Same(kWeights); }),
        With(fl, [](CallSpec& c) { c.slots[kFoldedBias] = Same(kBias); }),
        With(fl,
             [](CallSpec& c) {
               c.slots[kFoldedWeights] = Same(kWeights);
               c.slots[kFoldedBias] = Same(kBias);
             })}},
      // Flags and fields: ReLU, no affine, and fields these calls do not use.
      {"scale_shift_relu",
       {Compute(kSs, kNhwc, {4, 3, 3, 16}, BNORM_FLAG_FUSE_RELU),
        Compute(kSs, kNchw, {3, 5, 7}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)}},
      {"fold_unused_fields",
       {With(Layer(kFs, 4, 9, BNORM_FLAG_FUSE_RELU | BNORM_FLAG_USE_GLOBAL_STATS),
             [](CallSpec& c) {
               c.desc.layout = kNhwc;
               c.desc.dtype = BNORM_DTYPE_BF16;
               c.desc.num_threads = 3;
               c.desc.momentum_bits = 0x3f800000;  // 1.0f
             }),
        With(Layer(kFl, 4, 5, BNORM_FLAG_AFFINE),
             [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; }),
        With(Layer(kFs, 8, 9, 0),
             [](CallSpec& c) {
               c.slots[kFsGamma] = Null();
               c.slots[kFsBeta] = Offset(kFsVar, 2);
             })}},
      {"fold_read_only_overlap",
       {With(fs, [](CallSpec& c) { c.slots[kFsVar] = Same(kFsMean); }),
        With(fl,
             [](CallSpec& c) {
               c.slots[kBias] = Offset(kWeights, 8);
               c.slots[kFlGamma] = Same(kFlVar);
             })}},
      {"fold_older_struct_sizes",
       {With(fs, [](CallSpec& c) { c.desc.struct_size = 16; }),
        With(ss, [](CallSpec& c) { c.desc.struct_size = 28; }),
        With(fl, [](CallSpec& c) { c.desc.struct_size = 24; })}},
      // Larger: threads for bnorm_forward_scale_shift, long rows.
      {"large_scale_shift",
       {With(Compute(kSs, kNchw, {4, 8, 32, 32}), [](CallSpec& c) { c.desc.num_threads = 2; }),
        With(Compute(kSs, kNhwc, {4096, 3}), [](CallSpec& c) { c.desc.num_threads = 3; })}},
      {"large_fold_into_layer", {Layer(kFl, 64, 3 * 3 * 64), Layer(kFs, 60000)}},
      // One call per error, in bnorm.h's order of precedence.
      {"fold_err_null_desc",
       {With(fs, [](CallSpec& c) { c.desc.null = true; }),
        With(ss, [](CallSpec& c) { c.desc.null = true; }),
        With(fl, [](CallSpec& c) { c.desc.null = true; })}},
      {"fold_err_null_shape", {With(ss, [](CallSpec& c) { c.shape.null = true; })}},
      {"fold_err_descriptor",
       {With(fs, [](CallSpec& c) { c.desc.struct_size = 3; }),
        With(ss, [](CallSpec& c) { c.desc.num_features = 0; }),
        With(fl, [](CallSpec& c) { c.desc.num_features = -2; }),
        With(fl,
             [](CallSpec& c) {
               c.desc.struct_size = 18;
               c.row_length = 0;
             })}},
      {"fold_err_fields",
       {With(fs, [](CallSpec& c) { c.desc.eps_bits = 0x7f800000; }),
        With(ss, [](CallSpec& c) { c.desc.layout = 2; }),
        With(fl, [](CallSpec& c) { c.desc.flags |= 0x20; }),
        With(fs, [](CallSpec& c) { c.desc.dtype = 3; }),
        With(fl, [](CallSpec& c) { c.desc.momentum_bits = 0xbf800000; }),
        With(fs, [](CallSpec& c) { c.desc.num_threads = -4; })}},
      {"fold_err_shape",
       {With(ss, [](CallSpec& c) { c.shape.rank = 1; }),
        With(ss, [](CallSpec& c) { c.shape.dims[3] = 0; }),
        Compute(kSs, kNhwc, {int64_t{1} << 40, int64_t{1} << 30, 4}),
        With(Compute(kSs, kNchw, {2, 4, 5, 3}), [](CallSpec& c) { c.desc.layout = kNhwc; })}},
      {"fold_err_row_length",
       {Layer(kFl, 6, 0), Layer(kFl, 6, -1),
        // The weight count overflows int64; then only its bytes do.
        Layer(kFl, int64_t{1} << 32, int64_t{1} << 32), Layer(kFl, 3, int64_t{1} << 60),
        // Not errors: more data than the harness allocates, passed as buffers
        // too short (overlaps are computed from num_features) or with the
        // first argument NULL.
        Layer(kFl, 2, int64_t{1} << 59), Layer(kFl, int64_t{1} << 40, 1),
        Layer(kFs, int64_t{1} << 40), Layer(kFs, int64_t{1} << 62)}},
      {"fold_err_null_data",
       {With(fs, [](CallSpec& c) { c.slots[kFsVar] = Null(); }),
        With(fs, [](CallSpec& c) { c.slots[kFsBeta] = Null(); }),
        With(fs, [](CallSpec& c) { c.slots[kShift] = Null(); }),
        With(ss, [](CallSpec& c) { c.slots[kSsScale] = Null(); }),
        With(fl, [](CallSpec& c) { c.slots[kWeights] = Null(); }),
        With(fl, [](CallSpec& c) { c.slots[kFoldedBias] = Null(); }),
        With(fl,
             [](CallSpec& c) {
               c.slots[kBias] = Null();
               c.slots[kFoldedBias] = Same(kBias);
             })}},
      {"fold_err_misaligned",
       {With(fs, [](CallSpec& c) { c.slots[kScale] = Misaligned(1); }),
        With(ss, [](CallSpec& c) { c.slots[kX] = Misaligned(2); }),
        With(fl, [](CallSpec& c) { c.slots[kBias] = Misaligned(3); })}},
      {"fold_err_aliasing",
       {With(fs, [](CallSpec& c) { c.slots[kShift] = Same(kScale); }),
        With(fs, [](CallSpec& c) { c.slots[kScale] = Offset(kFsVar, 4); }),
        With(ss, [](CallSpec& c) { c.slots[kSsShift] = Offset(kY, 4); }),
        With(ss, [](CallSpec& c) { c.slots[kY] = Offset(kX, 8); }),
        With(fl, [](CallSpec& c) { c.slots[kFoldedWeights] = Offset(kWeights, 4); }),
        With(fl, [](CallSpec& c) { c.slots[kFoldedBias] = Same(kFlMean); }),
        With(fl, [](CallSpec& c) { c.slots[kFoldedWeights] = Same(kBias); }),
        With(fl, [](CallSpec& c) { c.slots[kFoldedBias] = Offset(kFoldedWeights, 16); })}},
      {"fold_err_unsupported",
       {With(ss, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; }),
        With(Compute(kSs, kNhwc, {3, 5, 7}), [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; })}},
  };
  seeds.insert(seeds.end(), folding.begin(), folding.end());
  // bnorm_forward_scale_shift's kernels on each target.
  for (uint8_t t = 0; t < 6; ++t) {
    seeds.push_back({"scale_shift_target" + std::to_string(t),
                     {CapAt(CallSpec::kTargetIndex, t), Compute(kSs, kNhwc, {3, 5, 2, 19}),
                      Compute(kSs, kNchw, {3, 19, 5, 2}, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
                      Compute(kSs, kNhwc, {7, 33}), Simple(Op::kQueries)}});
  }
  // Since 1.2: the split (distributed) phases, appended likewise. Valid
  // calls first.
  const Op kLs = Op::kLocalStats, kFn = Op::kForwardNormalize, kBr = Op::kBackwardReduce;
  const CallSpec ls = Compute(kLs, kNchw, {2, 3, 4, 5});
  const CallSpec ms = Merge(6, 4);
  const CallSpec fn = Compute(kFn, kNchw, {2, 3, 4, 5});
  const CallSpec br = Compute(kBr, kNchw, {2, 3, 4, 5});
  const CallSpec be = Elementwise(kNchw, {2, 3, 4, 5}, 1);  // 40 values per channel
  const std::vector<Seed> split = {
      {"local_stats",
       {ls, Compute(kLs, kNhwc, {2, 4, 5, 3}), Compute(kLs, kNchw, {5, 7}),
        Compute(kLs, kNhwc, {2, 9, 6}), Compute(kLs, kNchw, {2, 3, 2, 3, 4}),
        // One value per channel is fine for a part.
        Compute(kLs, kNchw, {1, 5}), Compute(kLs, kNhwc, {1, 1, 1, 5})}},
      {"merge_stats",
       {ms, Merge(1, 1), Merge(37, 16, 0), Merge(5, 64),
        Merge(3, 2, BNORM_FLAG_TRACK_RUNNING_STATS),
        With(Merge(4, 3), [](CallSpec& c) { c.desc.momentum_bits = 0x3f800000; })}},
      {"merge_stats_in_place",
       {With(ms, [](CallSpec& c) { c.slots[kMsMerged] = Same(kMsPartial); }),
        With(Merge(7, 1),
             [](CallSpec& c) {
               c.slots[kMsMerged] = Same(kMsPartial);
               c.stats = Counts(5);
             })}},
      {"merge_stats_outputs",
       {With(ms, [](CallSpec& c) { c.slots[kMsMerged] = Null(); }),
        With(ms, [](CallSpec& c) { c.slots[kMsMean] = c.slots[kMsInvstd] = Null(); }),
        With(Merge(6, 4, BNORM_FLAG_AFFINE),
             [](CallSpec& c) { c.slots[kMsRunMean] = c.slots[kMsRunVar] = Null(); }),
        With(Merge(6, 4, 0),
             [](CallSpec& c) {
               for (int s : {kMsMerged, kMsMean, kMsInvstd, kMsRunMean, kMsRunVar})
                 c.slots[s] = Null();
             })}},
      // Counts at the edges that are still valid: one value per block, 2^53.
      {"merge_stats_count_edges",
       {With(Merge(3, 2), [](CallSpec& c) { c.stats = Counts(1); }),
        With(Merge(3, 2), [](CallSpec& c) { c.stats = Counts(int64_t{1} << 53); }),
        With(Merge(2, 1), [](CallSpec& c) { c.stats = Counts(2); })}},
      {"forward_normalize",
       {fn, Compute(kFn, kNhwc, {2, 4, 5, 3}), Compute(kFn, kNchw, {5, 7}),
        Compute(kFn, kNhwc, {2, 9, 6}), Compute(kFn, kNhwc, {2, 2, 3, 4, 3}),
        Compute(kFn, kNchw, {1, 5})}},
      {"forward_normalize_flags",
       {With(Compute(kFn, kNhwc, {4, 3, 3, 16}, BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) { c.slots[kFnGamma] = c.slots[kFnBeta] = Null(); }),
        Compute(kFn, kNchw, {3, 5, 7}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)}},
      {"forward_normalize_in_place", {With(fn, [](CallSpec& c) { c.slots[kY] = Same(kX); })}},
      {"backward_reduce",
       {br, Compute(kBr, kNhwc, {2, 4, 5, 3}), Compute(kBr, kNchw, {5, 7}),
        Compute(kBr, kNhwc, {3, 7, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
        With(br, [](CallSpec& c) { c.slots[kBrDgamma] = c.slots[kBrDbeta] = Null(); }),
        Compute(kBr, kNhwc, {1, 1, 1, 5}),
        Compute(kBr, kNchw, {2, 6}, BNORM_FLAG_USE_GLOBAL_STATS)}},
      {"backward_elementwise",
       {be, Elementwise(kNhwc, {2, 4, 5, 3}, 4), Elementwise(kNchw, {5, 7}, 8),
        Elementwise(kNhwc, {3, 7, 5}, 2, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
        Elementwise(kNchw, {2, 3, 2, 3, 4}, 3, 0),
        // Random counts: some valid, some below this part's.
        With(Elementwise(kNhwc, {2, 6, 4}, 5), [](CallSpec& c) { c.stats = StatsSpec(); }),
        // Allreduced: one block, the whole batch's count.
        With(be, [](CallSpec& c) { c.stats = Counts(160); }),
        // A part of one value per channel, the batch of two.
        With(Elementwise(kNchw, {1, 5}, 2), [](CallSpec& c) { c.stats = Counts(1); })}},
      {"backward_elementwise_global_stats",
       {With(Elementwise(kNchw, {1, 6}, 1, BNORM_FLAG_USE_GLOBAL_STATS),
             [](CallSpec& c) { c.slots[kBeSums] = Null(); }),
        // grad_sums and num_partials are not read: no error from either.
        With(Elementwise(kNhwc, {2, 3, 3, 6}, 0, BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE),
             [](CallSpec& c) {
               c.stats = OfKind(StatsSpec::kRaw);
               c.slots[kBeSums] = Misaligned(1);
             }),
        Elementwise(kNchw, {2, 3, 5}, -7, BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_FUSE_RELU)}},
      {"backward_elementwise_in_place",
       {With(be, [](CallSpec& c) { c.slots[kBeDx] = Same(kBwDy); }),
        With(Elementwise(kNhwc, {3, 5, 17}, 2, BNORM_FLAG_USE_GLOBAL_STATS),
             [](CallSpec& c) { c.slots[kBeDx] = Same(kBwDy); })}},
      {"split_read_only_overlap",
       {With(fn, [](CallSpec& c) { c.slots[kFnInvstd] = Same(kFnMean); }),
        With(br, [](CallSpec& c) { c.slots[kBwDy] = Same(kX); }),
        With(be, [](CallSpec& c) { c.slots[kBeSums] = Same(kBwDy); }),
        With(be, [](CallSpec& c) { c.slots[kBeGamma] = Same(kBeInvstd); })}},
      {"split_older_struct_sizes",
       {With(ls, [](CallSpec& c) { c.desc.struct_size = 16; }),
        With(ms, [](CallSpec& c) { c.desc.struct_size = 20; }),
        With(fn, [](CallSpec& c) { c.desc.struct_size = 28; }),
        With(br, [](CallSpec& c) { c.desc.struct_size = 32; }),
        With(be, [](CallSpec& c) { c.desc.struct_size = 36; })}},
      // Fields bnorm_merge_stats does not use: no error, bf16 included.
      {"merge_stats_unused_fields",
       {With(Merge(4, 3, kDefaultFlags | BNORM_FLAG_FUSE_RELU | BNORM_FLAG_USE_GLOBAL_STATS),
             [](CallSpec& c) {
               c.desc.layout = kNhwc;
               c.desc.dtype = BNORM_DTYPE_BF16;
               c.desc.num_threads = 3;
             }),
        With(Merge(4, 3), [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; })}},
      // Larger: threads and reduction chunks, many blocks.
      {"large_split",
       {With(Compute(kLs, kNchw, {4, 8, 32, 32}), [](CallSpec& c) { c.desc.num_threads = 2; }),
        With(Compute(kFn, kNhwc, {4096, 3}), [](CallSpec& c) { c.desc.num_threads = 3; }),
        With(Compute(kBr, kNhwc, {8, 16, 16, 16}), [](CallSpec& c) { c.desc.num_threads = 3; }),
        With(Elementwise(kNchw, {4, 8, 32, 32}, 4), [](CallSpec& c) { c.desc.num_threads = 2; }),
        With(Elementwise(kNhwc, {4096, 3}, 1),
             [](CallSpec& c) {
               c.desc.num_threads = 3;
               c.stats = Counts(3 * 4096);
             }),
        Merge(1000, 8), Merge(64, 64)}},
      // Outputs of 16 MiB: see "streaming" above.
      {"split_streaming",
       {Compute(kFn, kNchw, {1, 4, 1024, 1024}), Compute(kLs, kNhwc, {4096, 1024}),
        Compute(kBr, kNchw, {16, 2, 512, 256}), Elementwise(kNchw, {16, 2, 512, 256}, 2)}},
      // The phases in the order a training step calls them.
      {"split_step",
       {Compute(kLs, kNhwc, {2, 5, 5, 8}), Merge(8, 4), Compute(kFn, kNhwc, {2, 5, 5, 8}),
        Compute(kBr, kNhwc, {2, 5, 5, 8}), Elementwise(kNhwc, {2, 5, 5, 8}, 4)}},
      // Valid shapes far too large to allocate (passed with x NULL, or buffers
      // too short), and num_features where 3 * num_features nears int64's
      // limit: a bf16 tensor of (1, 3 * 2^60) is valid, the f32 one not.
      {"split_huge_shapes",
       {Compute(kLs, kNchw, {int64_t{1} << 40, 4}), Compute(kBr, kNhwc, {1, int64_t{1} << 61}),
        Compute(kLs, kNchw, {1, int64_t{3} << 60}), Compute(kBr, kNchw, {1, int64_t{3} << 60}),
        With(Compute(kLs, kNhwc, {1, int64_t{1} << 60}),
             [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; }),
        Elementwise(kNhwc, {int64_t{1} << 20, 1 << 20, 4}, 2)}},
      // One call per error, in bnorm.h's order of precedence.
      {"split_err_null_desc",
       {With(ls, [](CallSpec& c) { c.desc.null = true; }),
        With(ms, [](CallSpec& c) { c.desc.null = true; }),
        With(fn, [](CallSpec& c) { c.desc.null = true; }),
        With(br, [](CallSpec& c) { c.desc.null = true; }),
        With(be, [](CallSpec& c) { c.desc.null = true; })}},
      {"split_err_null_shape",
       {With(ls, [](CallSpec& c) { c.shape.null = true; }),
        With(fn, [](CallSpec& c) { c.shape.null = true; }),
        With(br, [](CallSpec& c) { c.shape.null = true; }),
        With(be, [](CallSpec& c) { c.shape.null = true; })}},
      {"split_err_descriptor",
       {With(ls, [](CallSpec& c) { c.desc.struct_size = 3; }),
        With(ms, [](CallSpec& c) { c.desc.num_features = 0; }),
        With(Merge(-2, 0), [](CallSpec& c) { c.desc.struct_size = 18; }),
        With(be,
             [](CallSpec& c) {
               c.desc.num_features = -1;
               c.num_partials = 0;
             })}},
      {"split_err_fields",
       {With(ms, [](CallSpec& c) { c.desc.eps_bits = 0; }),
        With(ms, [](CallSpec& c) { c.desc.momentum_bits = 0x7fc00000; }),
        With(fn, [](CallSpec& c) { c.desc.layout = 2; }),
        With(br, [](CallSpec& c) { c.desc.flags |= 0x10; }),
        With(ms, [](CallSpec& c) { c.desc.dtype = 3; }),
        With(be, [](CallSpec& c) { c.desc.num_threads = -1; })}},
      {"split_err_shape",
       {With(ls, [](CallSpec& c) { c.shape.rank = 1; }),
        With(fn, [](CallSpec& c) { c.shape.dims[3] = 0; }),
        Compute(kBr, kNhwc, {int64_t{1} << 40, int64_t{1} << 30, 4}),
        With(Elementwise(kNchw, {2, 4, 5, 3}, 0), [](CallSpec& c) { c.desc.layout = kNhwc; })}},
      // num_partials: checked after the shape, before the pointers, only when
      // the blocks are read.
      {"split_err_num_partials",
       {Merge(6, 0), Merge(6, -1), Merge(int64_t{1} << 40, 1 << 30), Merge(int64_t{3} << 60, 1),
        Elementwise(kNchw, {2, 3, 4, 5}, 0),
        With(Elementwise(kNhwc, {2, 4, 5, 3}, -3), [](CallSpec& c) { c.slots[kX] = Null(); }),
        // Valid, more data than the harness allocates: passed as buffers too
        // short (overlaps are judged at full size) or with partial_stats NULL.
        Merge(4, 1 << 30), Elementwise(kNchw, {2, 3, 4, 5}, 1 << 20),
        With(Merge(4, 1 << 30, 0),
             [](CallSpec& c) {
               for (int s : {kMsMerged, kMsMean, kMsInvstd}) c.slots[s] = Null();
             })}},
      {"split_err_null_data",
       {With(ls, [](CallSpec& c) { c.slots[kLocalPartial] = Null(); }),
        With(ms, [](CallSpec& c) { c.slots[kMsPartial] = Null(); }),
        With(ms, [](CallSpec& c) { c.slots[kMsRunVar] = Null(); }),
        With(fn, [](CallSpec& c) { c.slots[kFnInvstd] = Null(); }),
        With(fn, [](CallSpec& c) { c.slots[kFnBeta] = Null(); }),
        With(br, [](CallSpec& c) { c.slots[kGradSums] = Null(); }),
        With(Compute(kBr, kNchw, {2, 3, 4}, BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) { c.slots[kBwY] = Null(); }),
        With(be, [](CallSpec& c) { c.slots[kBeSums] = Null(); }),
        With(be, [](CallSpec& c) { c.slots[kBeDx] = Null(); }),
        With(be, [](CallSpec& c) { c.slots[kBeGamma] = Null(); })}},
      // Misaligned by 1 on a double array is 4 bytes: float-aligned only.
      {"split_err_misaligned",
       {With(ls, [](CallSpec& c) { c.slots[kLocalPartial] = Misaligned(1); }),
        With(ms, [](CallSpec& c) { c.slots[kMsPartial] = Misaligned(2); }),
        With(ms, [](CallSpec& c) { c.slots[kMsMerged] = Misaligned(1); }),
        With(fn, [](CallSpec& c) { c.slots[kFnMean] = Misaligned(1); }),
        With(br, [](CallSpec& c) { c.slots[kGradSums] = Misaligned(3); }),
        With(be, [](CallSpec& c) { c.slots[kBeSums] = Misaligned(1); })}},
      {"split_err_aliasing",
       {With(ls, [](CallSpec& c) { c.slots[kLocalPartial] = Same(kX); }),
        // merged_stats may be exactly partial_stats, not its second block.
        With(ms, [](CallSpec& c) { c.slots[kMsMerged] = Offset(kMsPartial, 6 * 3 * 8); }),
        With(ms, [](CallSpec& c) { c.slots[kMsMerged] = Offset(kMsPartial, 8); }),
        With(ms, [](CallSpec& c) { c.slots[kMsInvstd] = Same(kMsMean); }),
        With(ms, [](CallSpec& c) { c.slots[kMsRunVar] = Offset(kMsMerged, 16); }),
        With(fn, [](CallSpec& c) { c.slots[kY] = Offset(kX, 4); }),
        With(br, [](CallSpec& c) { c.slots[kGradSums] = Same(kBwDy); }),
        With(br, [](CallSpec& c) { c.slots[kBrDgamma] = Same(kBrMean); }),
        With(be, [](CallSpec& c) { c.slots[kBeDx] = Same(kX); }),
        With(be, [](CallSpec& c) { c.slots[kBeDx] = Offset(kBeSums, 8); })}},
      // Counts: fractional, negative, NaN, past 2^53, M2 < 0; totals below
      // this part's count.
      {"split_err_counts",
       {With(ms, [](CallSpec& c) { c.stats = Counts(-1); }),
        With(ms, [](CallSpec& c) { c.stats = Counts((int64_t{1} << 53) + 2); }),
        With(ms, [](CallSpec& c) { c.stats = OfKind(StatsSpec::kSpecial); }),
        With(ms, [](CallSpec& c) { c.stats = Poked(1); }),
        With(ms, [](CallSpec& c) { c.stats = Poked(16); }),
        With(ms, [](CallSpec& c) { c.stats = OfKind(StatsSpec::kRaw); }),
        With(be, [](CallSpec& c) { c.stats = Counts(39); }),
        With(be, [](CallSpec& c) { c.stats = Poked(2); }),
        With(be, [](CallSpec& c) { c.stats = OfKind(StatsSpec::kSpecial); })}},
      {"split_err_too_few_values",
       {With(Merge(3, 1), [](CallSpec& c) { c.stats = Counts(1); }),
        With(Merge(3, 4), [](CallSpec& c) { c.stats = Counts(0); }),
        With(Elementwise(kNchw, {1, 5}, 1), [](CallSpec& c) { c.stats = Counts(1); })}},
      {"split_err_unsupported",
       {With(ls, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; }),
        With(fn, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; }),
        With(br, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; }),
        With(be, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; })}},
  };
  seeds.insert(seeds.end(), split.begin(), split.end());
  // The split phases' kernels on each target.
  for (uint8_t t = 0; t < 6; ++t) {
    seeds.push_back({"split_target" + std::to_string(t),
                     {CapAt(CallSpec::kTargetIndex, t), Compute(kLs, kNhwc, {3, 5, 2, 19}),
                      Compute(kFn, kNchw, {3, 19, 5, 2}, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
                      Compute(kBr, kNhwc, {7, 33}), Elementwise(kNchw, {3, 19, 5, 2}, 3),
                      Simple(Op::kQueries)}});
  }
  // Regressions (a fuzz review): 3 * num_features overflowed int64 for a
  // bf16 tensor of (1, 3 * 2^60), a valid shape. Seed 0, as found.
  const auto huge_bf16 = [](Op op) {
    return With(Compute(op, kNchw, {1, int64_t{3} << 60}), [](CallSpec& c) {
      c.desc.dtype = BNORM_DTYPE_BF16;
      c.seed = 0;
    });
  };
  seeds.push_back({"split_ub_local_stats_3x2p60_bf16", {huge_bf16(kLs)}});
  seeds.push_back({"split_ub_backward_reduce_3x2p60_bf16", {huge_bf16(kBr)}});

  // Since 1.2: the residual-add calls, appended likewise. Valid calls first.
  const Op kRi = Op::kInferenceResidual, kRt = Op::kTrainingResidual, kRb = Op::kBackwardResidual;
  constexpr uint32_t kResidualBlock = BNORM_FLAG_AFFINE | BNORM_FLAG_FUSE_RELU;
  const CallSpec ri = Compute(kRi, kNchw, {2, 3, 4, 5}, kResidualBlock);
  const CallSpec rt = Compute(kRt, kNchw, {2, 3, 4, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU);
  const CallSpec rb = Compute(kRb, kNchw, {2, 3, 4, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU);
  const std::vector<Seed> residual = {
      {"residual_inference",
       {ri, Compute(kRi, kNhwc, {2, 4, 5, 3}, kResidualBlock), Compute(kRi, kNchw, {5, 7}),
        Compute(kRi, kNhwc, {2, 9, 6}, kResidualBlock), Compute(kRi, kNchw, {2, 3, 2, 3, 4}),
        // One value per channel is fine here.
        Compute(kRi, kNhwc, {1, 1, 1, 5}, kResidualBlock)}},
      {"residual_training",
       {rt, Compute(kRt, kNhwc, {2, 4, 5, 3}, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
        Compute(kRt, kNchw, {5, 7}), Compute(kRt, kNhwc, {2, 9, 6}, BNORM_FLAG_FUSE_RELU),
        Compute(kRt, kNchw, {2, 3, 2, 3, 4}, BNORM_FLAG_TRACK_RUNNING_STATS)}},
      {"residual_backward",
       {rb, Compute(kRb, kNhwc, {2, 4, 5, 3}, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
        // Without ReLU y is not read: NULL or not.
        Compute(kRb, kNchw, {5, 7}),
        With(Compute(kRb, kNhwc, {2, 9, 6}, BNORM_FLAG_AFFINE),
             [](CallSpec& c) { c.slots[kBwY] = Null(); }),
        Compute(kRb, kNchw, {2, 3, 2, 3, 4}, 0)}},
      {"residual_flags",
       {With(Compute(kRi, kNhwc, {4, 3, 3, 16}, BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) { c.slots[kRiGamma] = c.slots[kRiBeta] = Null(); }),
        With(Compute(kRt, kNchw, {4, 8, 3}, BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) {
               for (int s : {kRtGamma, kRtBeta, kRtRunMean, kRtRunVar, kRtSaveMean, kRtSaveInvstd})
                 c.slots[s] = Null();
             }),
        With(Compute(kRb, kNchw, {1, 6}, BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_FUSE_RELU),
             [](CallSpec& c) { c.slots[kRbDgamma] = c.slots[kRbDbeta] = Null(); }),
        Compute(kRb, kNhwc, {2, 3, 3, 6}, kResidualBlock | BNORM_FLAG_USE_GLOBAL_STATS)}},
      // In place: y on x or on residual; dx or d_residual on dy.
      {"residual_in_place",
       {With(ri, [](CallSpec& c) { c.slots[kRY] = Same(kX); }),
        With(ri, [](CallSpec& c) { c.slots[kRY] = Same(kRes); }),
        With(Compute(kRt, kNhwc, {3, 5, 17}, kResidualBlock),
             [](CallSpec& c) { c.slots[kRY] = Same(kX); }),
        With(rt, [](CallSpec& c) { c.slots[kRY] = Same(kRes); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDx] = Same(kBwDy); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDres] = Same(kBwDy); })}},
      // Read-only inputs may overlap: x as residual (and y in place of both),
      // dy as x, y as x.
      {"residual_read_only_overlap",
       {With(ri, [](CallSpec& c) { c.slots[kRes] = Same(kX); }),
        With(rt,
             [](CallSpec& c) {
               c.slots[kRes] = Same(kX);
               c.slots[kRY] = Same(kX);
             }),
        With(ri, [](CallSpec& c) { c.slots[kRiVar] = Same(kRiMean); }),
        With(rb, [](CallSpec& c) { c.slots[kBwDy] = c.slots[kBwY] = Same(kX); })}},
      {"residual_older_struct_sizes",
       {With(ri, [](CallSpec& c) { c.desc.struct_size = 16; }),
        With(rt, [](CallSpec& c) { c.desc.struct_size = 24; }),
        With(rb, [](CallSpec& c) { c.desc.struct_size = 28; }),
        With(rb, [](CallSpec& c) { c.desc.struct_size = 36; })}},
      // Larger shapes: several threads and reduction chunks.
      {"large_residual",
       {With(Compute(kRi, kNchw, {2, 16, 32, 32}, kResidualBlock),
             [](CallSpec& c) { c.desc.num_threads = 2; }),
        With(Compute(kRt, kNchw, {4, 8, 32, 32}, kResidualBlock | BNORM_FLAG_TRACK_RUNNING_STATS),
             [](CallSpec& c) { c.desc.num_threads = 2; }),
        With(Compute(kRt, kNhwc, {4096, 3}), [](CallSpec& c) { c.desc.num_threads = 3; }),
        With(Compute(kRb, kNhwc, {8, 16, 16, 16}, kResidualBlock),
             [](CallSpec& c) { c.desc.num_threads = 3; })}},
      // Outputs of 16 MiB: see "streaming" above. d_residual is streamed
      // beside dx.
      {"residual_streaming",
       {Compute(kRi, kNchw, {1, 4, 1024, 1024}, kResidualBlock),
        Compute(kRt, kNhwc, {4096, 1024}, kResidualBlock),
        Compute(kRb, kNchw, {16, 2, 512, 256}, kResidualBlock)}},
      {"residual_huge_valid_shape",
       {Compute(kRi, kNchw, {int64_t{1} << 40, 4}), Compute(kRt, kNhwc, {1, int64_t{1} << 61}),
        Compute(kRb, kNhwc, {int64_t{1} << 20, 1 << 20, 4})}},
      // One call per error, in bnorm.h's order of precedence.
      {"residual_err_null_desc_shape",
       {With(ri, [](CallSpec& c) { c.desc.null = true; }),
        With(rt, [](CallSpec& c) { c.shape.null = true; }),
        With(rb, [](CallSpec& c) { c.desc.null = true; })}},
      {"residual_err_descriptor",
       {With(ri, [](CallSpec& c) { c.desc.struct_size = 3; }),
        With(rt, [](CallSpec& c) { c.desc.num_features = 0; }),
        With(rb, [](CallSpec& c) { c.desc.eps_bits = 0; }),
        With(rt, [](CallSpec& c) { c.desc.momentum_bits = 0x7fc00000; }),
        With(ri, [](CallSpec& c) { c.desc.layout = 2; }),
        With(rb, [](CallSpec& c) { c.desc.flags |= 0x10; })}},
      {"residual_err_shape",
       {With(ri, [](CallSpec& c) { c.shape.rank = 6; }),
        With(rt, [](CallSpec& c) { c.shape.dims[3] = 0; }),
        Compute(kRb, kNhwc, {int64_t{1} << 40, int64_t{1} << 30, 4}),
        With(Compute(kRi, kNhwc, {2, 4, 5, 3}), [](CallSpec& c) { c.desc.layout = kNchw; })}},
      {"residual_err_null_data",
       {With(ri, [](CallSpec& c) { c.slots[kRes] = Null(); }),
        With(rt, [](CallSpec& c) { c.slots[kRes] = Null(); }),
        With(rt, [](CallSpec& c) { c.slots[kRtRunVar] = Null(); }),
        With(rb, [](CallSpec& c) { c.slots[kBwY] = Null(); }),
        // dx and d_residual are both required.
        With(rb, [](CallSpec& c) { c.slots[kRbDx] = Null(); }),
        With(Compute(kRb, kNhwc, {2, 3, 4}, 0), [](CallSpec& c) { c.slots[kRbDres] = Null(); })}},
      {"residual_err_misaligned",
       {With(ri, [](CallSpec& c) { c.slots[kRes] = Misaligned(1); }),
        With(rt, [](CallSpec& c) { c.slots[kRY] = Misaligned(2); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDres] = Misaligned(3); })}},
      {"residual_err_aliasing",
       {With(ri, [](CallSpec& c) { c.slots[kRY] = Offset(kRes, 4); }),
        With(rt, [](CallSpec& c) { c.slots[kRY] = Offset(kX, 8); }),
        With(rt, [](CallSpec& c) { c.slots[kRtSaveMean] = Same(kRtRunMean); }),
        // dx and d_residual may not both be dy, nor one another.
        With(rb, [](CallSpec& c) { c.slots[kRbDx] = c.slots[kRbDres] = Same(kBwDy); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDres] = Same(kRbDx); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDres] = Same(kX); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDres] = Same(kBwY); }),
        With(rb, [](CallSpec& c) { c.slots[kRbDgamma] = Offset(kRbDres, 4); })}},
      {"residual_err_too_few_values",
       {Compute(kRt, kNchw, {1, 5}), Compute(kRb, kNhwc, {1, 1, 1, 5}),
        // Not with frozen statistics.
        Compute(kRb, kNhwc, {1, 1, 1, 5}, BNORM_FLAG_USE_GLOBAL_STATS)}},
      {"residual_err_unsupported",
       {With(ri, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; }),
        With(rt, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_F16; }),
        With(rb, [](CallSpec& c) { c.desc.dtype = BNORM_DTYPE_BF16; })}},
      // Data edge cases: NaNs, infinities and denormals through the add, the
      // ReLU and the mask of d_residual.
      {"residual_special_data",
       {With(ri, [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(rt, [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(rb, [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(rb, [](CallSpec& c) { c.fill = Fill::kRaw; })}},
      // The blocks' errors in bnorm.h's order: every block's values first,
      // then the totals in channel order. The seeds are chosen (by running
      // the harness) so that each call has several errors: a poke makes one
      // value bad (channel 212 of 300; channel 500 of 600, in the library's
      // second tile of 256 channels) while an earlier channel's total is
      // too small (29; 33); a bad count in channel 336 while channel 0's
      // total is 1 with this part's 1 value; random counts where the first
      // failing total is below this part's (seed 1) or only 1 (seed 6).
      {"split_err_order",
       {With(Merge(300, 2),
             [](CallSpec& c) {
               c.stats = Poked(1);
               c.seed = 252;
             }),
        With(Merge(600, 2),
             [](CallSpec& c) {
               c.stats = Poked(1);
               c.seed = 105;
             }),
        With(Elementwise(kNhwc, {1, 600}, 2),
             [](CallSpec& c) {
               c.stats = Poked(1);
               c.seed = 171;
             }),
        With(Elementwise(kNhwc, {1, 600}, 2),
             [](CallSpec& c) {
               c.stats = StatsSpec();
               c.seed = 1;
             }),
        With(Elementwise(kNhwc, {1, 600}, 2),
             [](CallSpec& c) {
               c.stats = StatsSpec();
               c.seed = 6;
             })}},
      {"split_local_stats_nan",
       {With(ls, [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(Compute(kLs, kNhwc, {4096, 3}), [](CallSpec& c) { c.fill = Fill::kRaw; })}},
  };
  seeds.insert(seeds.end(), residual.begin(), residual.end());
  // The residual calls' kernels on each target.
  for (uint8_t t = 0; t < 6; ++t) {
    seeds.push_back(
        {"residual_target" + std::to_string(t),
         {CapAt(CallSpec::kTargetIndex, t), Compute(kRi, kNhwc, {3, 5, 2, 19}, kResidualBlock),
          Compute(kRt, kNchw, {3, 19, 5, 2}, kDefaultFlags | BNORM_FLAG_FUSE_RELU),
          Compute(kRb, kNhwc, {7, 33}, kResidualBlock), Simple(Op::kQueries)}});
  }

  // Since 1.3: bf16 and f16 tensors, valid for every call with a tensor
  // (the *_err_unsupported seeds above were errors before; they keep their
  // names and bytes and are now valid calls). Appended likewise; each call
  // is checked against the float32 call on its inputs converted to float.
  const auto bf16 = [](CallSpec c) {
    c.desc.dtype = BNORM_DTYPE_BF16;
    return c;
  };
  const auto f16 = [](CallSpec c) {
    c.desc.dtype = BNORM_DTYPE_F16;
    return c;
  };
  const CallSpec hinf = bf16(Compute(kInf, kNchw, {2, 3, 4, 5}));
  const CallSpec htr = f16(Compute(kTr, kNchw, {2, 3, 4, 5}));
  const CallSpec hbw =
      bf16(Compute(kBw, kNhwc, {2, 4, 5, 3}, kDefaultFlags | BNORM_FLAG_FUSE_RELU));
  const CallSpec hri = f16(Compute(kRi, kNchw, {2, 3, 4, 5}, kResidualBlock));
  const CallSpec hrb =
      bf16(Compute(kRb, kNchw, {2, 3, 4, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU));
  // Bytes of a {2, 3, 4, 5} tensor of 2-byte elements.
  constexpr int16_t kHalfTensorBytes = 2 * 3 * 4 * 5 * 2;
  const std::vector<Seed> half = {
      {"half_inference",
       {hinf, f16(Compute(kInf, kNhwc, {2, 4, 5, 3})), bf16(Compute(kInf, kNhwc, {5, 7})),
        f16(Compute(kInf, kNchw, {2, 3, 2, 3, 4})),
        With(f16(Compute(kInf, kNhwc, {4, 3, 3, 16}, BNORM_FLAG_FUSE_RELU)),
             [](CallSpec& c) { c.slots[kInfGamma] = c.slots[kInfBeta] = Null(); })}},
      {"half_training",
       {htr, bf16(Compute(kTr, kNhwc, {2, 4, 5, 3})), f16(Compute(kTr, kNhwc, {2, 9, 6})),
        bf16(Compute(kTr, kNchw, {5, 7}, BNORM_FLAG_FUSE_RELU)),
        With(bf16(Compute(kTr, kNchw, {4, 8, 3}, 0)),
             [](CallSpec& c) { c.slots[kSaveMean] = c.slots[kSaveInvstd] = Null(); })}},
      {"half_backward",
       {hbw, f16(Compute(kBw, kNchw, {2, 3, 4, 5})), bf16(Compute(kBw, kNchw, {5, 7}, 0)),
        f16(Compute(kBw, kNhwc, {2, 3, 3, 6}, BNORM_FLAG_USE_GLOBAL_STATS | BNORM_FLAG_AFFINE)),
        With(f16(Compute(kBw, kNhwc, {3, 7, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)),
             [](CallSpec& c) { c.slots[kDx] = Null(); })}},
      {"half_scale_shift",
       {bf16(Compute(kSs, kNchw, {2, 3, 4, 5})), f16(Compute(kSs, kNhwc, {2, 4, 5, 3})),
        f16(Compute(kSs, kNchw, {3, 5, 7}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)),
        bf16(Compute(kSs, kNhwc, {1, 1, 1, 5}))}},
      {"half_split",
       {bf16(Compute(kLs, kNchw, {2, 3, 4, 5})), f16(Compute(kLs, kNhwc, {2, 4, 5, 3})),
        f16(Compute(kFn, kNchw, {2, 3, 4, 5})),
        bf16(Compute(kFn, kNhwc, {4, 3, 3, 16}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)),
        bf16(Compute(kBr, kNhwc, {3, 7, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)),
        f16(Compute(kBr, kNchw, {2, 3, 4, 5})), f16(Elementwise(kNchw, {2, 3, 4, 5}, 1)),
        bf16(Elementwise(kNhwc, {2, 4, 5, 3}, 4)),
        With(bf16(Elementwise(kNchw, {1, 6}, 1, BNORM_FLAG_USE_GLOBAL_STATS)),
             [](CallSpec& c) { c.slots[kBeSums] = Null(); })}},
      {"half_split_step",
       {f16(Compute(kLs, kNhwc, {2, 5, 5, 8})), Merge(8, 4), f16(Compute(kFn, kNhwc, {2, 5, 5, 8})),
        f16(Compute(kBr, kNhwc, {2, 5, 5, 8})), f16(Elementwise(kNhwc, {2, 5, 5, 8}, 4))}},
      {"half_residual",
       {hri, bf16(Compute(kRi, kNhwc, {2, 4, 5, 3})),
        bf16(Compute(kRt, kNchw, {2, 3, 4, 5}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)),
        f16(Compute(kRt, kNhwc, {2, 9, 6}, BNORM_FLAG_FUSE_RELU)), hrb,
        f16(Compute(kRb, kNhwc, {2, 3, 3, 6}, kResidualBlock | BNORM_FLAG_USE_GLOBAL_STATS))}},
      // In place: the outputs are written over inputs of the same type.
      {"half_in_place",
       {With(hinf, [](CallSpec& c) { c.slots[kY] = Same(kX); }),
        With(htr, [](CallSpec& c) { c.slots[kY] = Same(kX); }),
        With(hbw, [](CallSpec& c) { c.slots[kDx] = Same(kBwDy); }),
        With(f16(Compute(kSs, kNhwc, {3, 5, 17})), [](CallSpec& c) { c.slots[kY] = Same(kX); }),
        With(bf16(Compute(kFn, kNchw, {2, 3, 4, 5})), [](CallSpec& c) { c.slots[kY] = Same(kX); }),
        With(f16(Elementwise(kNchw, {2, 3, 4, 5}, 2)),
             [](CallSpec& c) { c.slots[kBeDx] = Same(kBwDy); }),
        With(hri, [](CallSpec& c) { c.slots[kRY] = Same(kRes); }),
        With(hrb, [](CallSpec& c) { c.slots[kRbDres] = Same(kBwDy); })}},
      // Read-only inputs may overlap, also across types (gamma in x's bytes).
      {"half_read_only_overlap",
       {With(hbw, [](CallSpec& c) { c.slots[kBwDy] = Same(kX); }),
        With(hri, [](CallSpec& c) { c.slots[kRes] = Same(kX); }),
        With(hinf, [](CallSpec& c) { c.slots[kInfGamma] = Offset(kX, 6); })}},
      // 2-byte elements need 2-byte alignment only.
      {"half_misaligned_by_2",
       {With(hinf, [](CallSpec& c) { c.slots[kX] = c.slots[kY] = Misaligned(2); }),
        With(hbw, [](CallSpec& c) { c.slots[kBwDy] = c.slots[kDx] = Misaligned(2); }),
        With(f16(Compute(kLs, kNchw, {2, 3, 4, 5})),
             [](CallSpec& c) { c.slots[kX] = Misaligned(2); }),
        With(hrb, [](CallSpec& c) { c.slots[kRbDres] = Misaligned(2); })}},
      // Tensors are 2 bytes an element long: an output right past x is apart.
      // (A slot placed at an offset of another is apart from the regions
      // carved after it only when it is the last used one.)
      {"half_adjacent",
       {With(htr, [](CallSpec& c) { c.slots[kSaveMean] = Offset(kX, kHalfTensorBytes); }),
        With(f16(Compute(kLs, kNchw, {2, 3, 4, 5})),
             [](CallSpec& c) { c.slots[kLocalPartial] = Offset(kX, kHalfTensorBytes); }),
        With(hrb,
             [](CallSpec& c) {
               c.slots[kRbDres] = Offset(kRbDx, kHalfTensorBytes);
               c.slots[kRbDgamma] = c.slots[kRbDbeta] = Null();
             })}},
      {"half_err_misaligned",
       {With(hinf, [](CallSpec& c) { c.slots[kX] = Misaligned(1); }),
        With(htr, [](CallSpec& c) { c.slots[kY] = Misaligned(3); }),
        With(hrb, [](CallSpec& c) { c.slots[kRes] = Misaligned(1); }),
        With(f16(Elementwise(kNchw, {2, 3, 4, 5}, 1)),
             [](CallSpec& c) { c.slots[kBeDx] = Misaligned(3); })}},
      {"half_err_aliasing",
       {With(hinf, [](CallSpec& c) { c.slots[kY] = Offset(kX, 2); }),
        With(htr, [](CallSpec& c) { c.slots[kSaveMean] = Offset(kX, kHalfTensorBytes - 4); }),
        With(f16(Compute(kLs, kNchw, {2, 3, 4, 5})),
             [](CallSpec& c) { c.slots[kLocalPartial] = Offset(kX, kHalfTensorBytes - 8); }),
        With(hbw, [](CallSpec& c) { c.slots[kDx] = Offset(kBwDy, -2); }),
        With(hrb,
             [](CallSpec& c) {
               c.slots[kRbDres] = Offset(kRbDx, kHalfTensorBytes - 2);
               c.slots[kRbDgamma] = c.slots[kRbDbeta] = Null();
             })}},
      {"half_err_too_few_values",
       {bf16(Compute(kTr, kNchw, {1, 5})), f16(Compute(kRb, kNhwc, {1, 1, 1, 5}))}},
      // NaNs (quiet and signaling), infinities, subnormals and the largest
      // values of the type in, f16 overflow out.
      {"half_special_data",
       {With(hinf, [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(f16(Compute(kSs, kNhwc, {2, 4, 5, 3})), [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(htr, [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(hbw, [](CallSpec& c) { c.fill = Fill::kRaw; }),
        With(f16(Compute(kLs, kNchw, {2, 3, 4, 5})), [](CallSpec& c) { c.fill = Fill::kSpecial; }),
        With(hri, [](CallSpec& c) { c.fill = Fill::kRaw; }),
        With(hrb, [](CallSpec& c) { c.fill = Fill::kSpecial; })}},
      // An older descriptor: with dtype inside struct_size it applies, past it
      // the default (float32) does.
      {"half_older_struct_sizes",
       {With(hinf, [](CallSpec& c) { c.desc.struct_size = 36; }),
        With(htr, [](CallSpec& c) { c.desc.struct_size = 32; })}},
      // Larger shapes: several threads and reduction chunks (rerun with
      // another num_threads).
      {"half_large",
       {With(bf16(Compute(kTr, kNchw, {4, 8, 32, 32})),
             [](CallSpec& c) { c.desc.num_threads = 2; }),
        With(f16(Compute(kBw, kNhwc, {8, 16, 16, 16})),
             [](CallSpec& c) { c.desc.num_threads = 3; }),
        f16(Compute(kInf, kNchw, {2, 16, 32, 32})),
        With(bf16(Compute(kRt, kNhwc, {4096, 3})), [](CallSpec& c) { c.desc.num_threads = 3; }),
        With(f16(Elementwise(kNchw, {4, 8, 32, 32}, 4)),
             [](CallSpec& c) { c.desc.num_threads = 2; })}},
      // Outputs of 16 MiB (8 Mi elements): see "streaming" above.
      {"half_streaming",
       {bf16(Compute(kInf, kNchw, {2, 4, 1024, 1024})), f16(Compute(kTr, kNhwc, {8192, 1024})),
        bf16(Compute(kRb, kNchw, {32, 2, 512, 256}, kResidualBlock))}},
      // The tensor's bytes must fit int64: 2^62 - 1 f16 elements do (a valid
      // shape, passed with x NULL), 2^62 do not.
      {"half_byte_count_edges",
       {f16(Compute(kInf, kNchw, {1, (int64_t{1} << 62) - 1})),
        f16(Compute(kInf, kNchw, {1, int64_t{1} << 62})),
        bf16(Compute(kBw, kNhwc, {int64_t{1} << 31, (int64_t{1} << 31) - 1}))}},
  };
  seeds.insert(seeds.end(), half.begin(), half.end());
  // The bf16 and f16 kernels on each target.
  for (uint8_t t = 0; t < 6; ++t) {
    seeds.push_back(
        {"half_target" + std::to_string(t),
         {CapAt(CallSpec::kTargetIndex, t), bf16(Compute(kInf, kNhwc, {3, 5, 2, 19})),
          f16(Compute(kTr, kNchw, {3, 19, 5, 2}, kDefaultFlags | BNORM_FLAG_FUSE_RELU)),
          bf16(Compute(kBw, kNhwc, {7, 33})), f16(Compute(kSs, kNchw, {3, 19, 5, 2})),
          bf16(Compute(kLs, kNhwc, {3, 5, 2, 19})), f16(Compute(kBr, kNchw, {3, 19, 5, 2})),
          bf16(Elementwise(kNhwc, {3, 5, 2, 19}, 3)),
          f16(Compute(kRi, kNhwc, {3, 5, 2, 19}, kResidualBlock)),
          bf16(Compute(kRb, kNchw, {3, 19, 5, 2}, kResidualBlock)), Simple(Op::kQueries)}});
  }
  return seeds;
}

}  // namespace
}  // namespace bnorm_fuzz

int main(int argc, char** argv) {
  using namespace bnorm_fuzz;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  mkdir(argv[1], 0755);
  int n = 0;
  for (const auto& [name, calls] : Seeds()) {
    const std::vector<uint8_t> bytes = Encode(calls);
    // The harness must read back exactly the calls meant here.
    if (!(Decode(bytes.data(), bytes.size()) == calls)) {
      fprintf(stderr, "seed %s does not decode to itself\n", name.c_str());
      return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%02d_%s", argv[1], n++, name.c_str());
    FILE* f = fopen(path, "wb");
    if (f == nullptr || fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || fclose(f)) {
      perror(path);
      return 1;
    }
  }
  printf("wrote %d seeds to %s\n", n, argv[1]);
  return 0;
}
