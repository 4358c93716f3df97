#include "oracle.h"

#include <math.h>
#include <string.h>

#include <cmath>

namespace bnorm_fuzz {
namespace {

constexpr Extent kV = Extent::kVector, kT = Extent::kTensor, kW = Extent::kWeights;
constexpr Extent kS = Extent::kStats, kP = Extent::kPartials;

constexpr Slot kInferenceSlots[] = {
    {"x", kT, false, Use::kAlways},       {"y", kT, true, Use::kAlways},
    {"mean", kV, false, Use::kAlways},    {"var", kV, false, Use::kAlways},
    {"gamma", kV, false, Use::kIfAffine}, {"beta", kV, false, Use::kIfAffine},
};
constexpr Slot kTrainingSlots[] = {
    {"x", kT, false, Use::kAlways},
    {"y", kT, true, Use::kAlways},
    {"gamma", kV, false, Use::kIfAffine},
    {"beta", kV, false, Use::kIfAffine},
    {"running_mean", kV, true, Use::kIfTrack},
    {"running_var", kV, true, Use::kIfTrack},
    {"save_mean", kV, true, Use::kOptional},
    {"save_invstd", kV, true, Use::kOptional},
};
constexpr Slot kBackwardSlots[] = {
    {"x", kT, false, Use::kAlways},         {"dy", kT, false, Use::kAlways},
    {"y", kT, false, Use::kIfRelu},         {"gamma", kV, false, Use::kIfAffine},
    {"save_mean", kV, false, Use::kAlways}, {"save_invstd", kV, false, Use::kAlways},
    {"dx", kT, true, Use::kOptional},       {"dgamma", kV, true, Use::kOptional},
    {"dbeta", kV, true, Use::kOptional},
};
constexpr Slot kFoldScaleShiftSlots[] = {
    {"mean", kV, false, Use::kAlways},    {"var", kV, false, Use::kAlways},
    {"gamma", kV, false, Use::kIfAffine}, {"beta", kV, false, Use::kIfAffine},
    {"scale", kV, true, Use::kAlways},    {"shift", kV, true, Use::kAlways},
};
constexpr Slot kForwardScaleShiftSlots[] = {
    {"x", kT, false, Use::kAlways},
    {"y", kT, true, Use::kAlways},
    {"scale", kV, false, Use::kAlways},
    {"shift", kV, false, Use::kAlways},
};
constexpr Slot kFoldIntoLayerSlots[] = {
    {"weights", kW, false, Use::kAlways},       {"bias", kV, false, Use::kOptional},
    {"mean", kV, false, Use::kAlways},          {"var", kV, false, Use::kAlways},
    {"gamma", kV, false, Use::kIfAffine},       {"beta", kV, false, Use::kIfAffine},
    {"folded_weights", kW, true, Use::kAlways}, {"folded_bias", kV, true, Use::kAlways},
};
// Since 1.2: the split phases.
constexpr Slot kLocalStatsSlots[] = {
    {"x", kT, false, Use::kAlways},
    {"partial_stats", kS, true, Use::kAlways},
};
constexpr Slot kMergeStatsSlots[] = {
    {"partial_stats", kP, false, Use::kAlways}, {"merged_stats", kS, true, Use::kOptional},
    {"mean", kV, true, Use::kOptional},         {"invstd", kV, true, Use::kOptional},
    {"running_mean", kV, true, Use::kIfTrack},  {"running_var", kV, true, Use::kIfTrack},
};
constexpr Slot kForwardNormalizeSlots[] = {
    {"x", kT, false, Use::kAlways},       {"y", kT, true, Use::kAlways},
    {"gamma", kV, false, Use::kIfAffine}, {"beta", kV, false, Use::kIfAffine},
    {"mean", kV, false, Use::kAlways},    {"invstd", kV, false, Use::kAlways},
};
constexpr Slot kBackwardReduceSlots[] = {
    {"x", kT, false, Use::kAlways},       {"dy", kT, false, Use::kAlways},
    {"y", kT, false, Use::kIfRelu},       {"mean", kV, false, Use::kAlways},
    {"invstd", kV, false, Use::kAlways},  {"grad_sums", kS, true, Use::kAlways},
    {"dgamma", kV, true, Use::kOptional}, {"dbeta", kV, true, Use::kOptional},
};
constexpr Slot kBackwardElementwiseSlots[] = {
    {"x", kT, false, Use::kAlways},         {"dy", kT, false, Use::kAlways},
    {"y", kT, false, Use::kIfRelu},         {"gamma", kV, false, Use::kIfAffine},
    {"mean", kV, false, Use::kAlways},      {"invstd", kV, false, Use::kAlways},
    {"grad_sums", kP, false, Use::kIfSums}, {"dx", kT, true, Use::kAlways},
};
// Since 1.2: the residual-add calls. residual is an input right after x; y
// may be exactly x or exactly residual; dx and d_residual are required and
// either (not both) may be exactly dy.
constexpr Slot kInferenceResidualSlots[] = {
    {"x", kT, false, Use::kAlways},      {"residual", kT, false, Use::kAlways},
    {"y", kT, true, Use::kAlways},       {"mean", kV, false, Use::kAlways},
    {"var", kV, false, Use::kAlways},    {"gamma", kV, false, Use::kIfAffine},
    {"beta", kV, false, Use::kIfAffine},
};
constexpr Slot kTrainingResidualSlots[] = {
    {"x", kT, false, Use::kAlways},
    {"residual", kT, false, Use::kAlways},
    {"y", kT, true, Use::kAlways},
    {"gamma", kV, false, Use::kIfAffine},
    {"beta", kV, false, Use::kIfAffine},
    {"running_mean", kV, true, Use::kIfTrack},
    {"running_var", kV, true, Use::kIfTrack},
    {"save_mean", kV, true, Use::kOptional},
    {"save_invstd", kV, true, Use::kOptional},
};
constexpr Slot kBackwardResidualSlots[] = {
    {"x", kT, false, Use::kAlways},         {"dy", kT, false, Use::kAlways},
    {"y", kT, false, Use::kIfRelu},         {"gamma", kV, false, Use::kIfAffine},
    {"save_mean", kV, false, Use::kAlways}, {"save_invstd", kV, false, Use::kAlways},
    {"dx", kT, true, Use::kAlways},         {"d_residual", kT, true, Use::kAlways},
    {"dgamma", kV, true, Use::kOptional},   {"dbeta", kV, true, Use::kOptional},
};

// A field of the caller's bytes, read without loading a C++ enum.
template <class T>
T Load(const void* base, size_t offset) {
  T value;
  memcpy(&value, static_cast<const char*>(base) + offset, sizeof(value));
  return value;
}

bool Required(const Request& r, Use use) { return use != Use::kOptional && IsUsed(r, use); }

bool IsInPlacePair(const Signature& sig, int i, int j) {
  for (int k = 0; k < 2; ++k) {
    const int out = sig.in_place_output[k], in = sig.in_place_input[k];
    if (out >= 0 && ((i == out && j == in) || (j == out && i == in))) return true;
  }
  return false;
}

bool Overlaps(uintptr_t a, uint64_t a_bytes, uintptr_t b, uint64_t b_bytes) {
  using Wide = unsigned __int128;
  return a < Wide{b} + b_bytes && b < Wide{a} + a_bytes;
}

// Whether two used arguments (one of them an output, if outputs_only) overlap
// other than as an exact in-place pair.
bool OutputOverlap(const Request& r, Op op, void* const* ptrs, bool outputs_only) {
  const Signature& sig = SignatureOf(op);
  for (int i = 0; i < sig.num_slots; ++i) {
    for (int j = i + 1; j < sig.num_slots; ++j) {
      const Slot &a = sig.slots[i], &b = sig.slots[j];
      if (!ptrs[i] || !ptrs[j] || !IsUsed(r, a.use) || !IsUsed(r, b.use)) continue;
      if (outputs_only && !a.output && !b.output) continue;
      if (IsInPlacePair(sig, i, j) && ptrs[i] == ptrs[j]) continue;
      if (Overlaps(reinterpret_cast<uintptr_t>(ptrs[i]), SlotBytes(r, a),
                   reinterpret_cast<uintptr_t>(ptrs[j]), SlotBytes(r, b))) {
        return true;
      }
    }
  }
  return false;
}

// The descriptor's checks, in bnorm.h's order, shared by every call: fills
// in r.status or the fields the calls use.
void ModelDescriptor(const void* desc, Request& r, int32_t& layout) {
  const uint32_t struct_size = Load<uint32_t>(desc, 0);
  if (!IsKnownDescSize(struct_size)) {
    r.status = BNORM_ERR_INVALID_DESCRIPTOR;
    return;
  }
  // Fields past an older struct_size take their defaults.
  bnorm_desc d;
  StoreDesc(DescSpec(), &d);
  memcpy(&d, desc, struct_size);
  const int64_t num_features = Load<int64_t>(&d, offsetof(bnorm_desc, num_features));
  const float eps = Load<float>(&d, offsetof(bnorm_desc, eps));
  const float momentum = Load<float>(&d, offsetof(bnorm_desc, momentum));
  const uint32_t flags = Load<uint32_t>(&d, offsetof(bnorm_desc, flags));
  layout = Load<int32_t>(&d, offsetof(bnorm_desc, layout));
  const int32_t dtype = Load<int32_t>(&d, offsetof(bnorm_desc, dtype));
  const int32_t num_threads = Load<int32_t>(&d, offsetof(bnorm_desc, num_threads));
  if (num_features <= 0) {
    r.status = BNORM_ERR_INVALID_DESCRIPTOR;
    return;
  }
  if (!(isfinite(eps) && eps > 0) || !(momentum >= 0 && momentum <= 1) ||
      (layout != BNORM_LAYOUT_NCHW && layout != BNORM_LAYOUT_NHWC) ||
      (dtype != BNORM_DTYPE_F32 && dtype != BNORM_DTYPE_BF16 && dtype != BNORM_DTYPE_F16) ||
      (flags & ~0xFu) != 0 || num_threads < 0) {
    r.status = BNORM_ERR_INVALID_ARGUMENT;
    return;
  }
  r.channels = num_features;
  const unsigned __int128 vector_bytes = static_cast<unsigned __int128>(num_features) * 4;
  r.vector_bytes = vector_bytes > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(vector_bytes);
  const unsigned __int128 stats_bytes =
      static_cast<unsigned __int128>(num_features) * kSplit * sizeof(double);
  r.stats_bytes = stats_bytes > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(stats_bytes);
  r.element_size = dtype == BNORM_DTYPE_F32 ? 4 : 2;
  r.affine = flags & BNORM_FLAG_AFFINE;
  r.track = flags & BNORM_FLAG_TRACK_RUNNING_STATS;
  r.relu = flags & BNORM_FLAG_FUSE_RELU;
  r.global_stats = flags & BNORM_FLAG_USE_GLOBAL_STATS;
  r.dtype = dtype;
  r.eps = eps;
  r.momentum = momentum;
  r.nhwc = layout == BNORM_LAYOUT_NHWC;
}

}  // namespace

const Signature& SignatureOf(Op op) {
  static const Signature kInference = {kInferenceSlots, 6, {1, -1}, {0, -1}, 3};
  static const Signature kTraining = {kTrainingSlots, 8, {1, -1}, {0, -1}, -1};
  static const Signature kBackward = {kBackwardSlots, 9, {6, -1}, {1, -1}, -1};
  static const Signature kFoldScaleShift = {kFoldScaleShiftSlots, 6, {-1, -1}, {-1, -1}, 1};
  static const Signature kForwardScaleShift = {kForwardScaleShiftSlots, 4, {1, -1}, {0, -1}, -1};
  static const Signature kFoldIntoLayer = {kFoldIntoLayerSlots, 8, {6, 7}, {0, 1}, 3};
  static const Signature kLocalStats = {kLocalStatsSlots, 2, {-1, -1}, {-1, -1}, -1};
  static const Signature kMergeStats = {kMergeStatsSlots, 6, {1, -1}, {0, -1}, -1};
  static const Signature kForwardNormalize = {kForwardNormalizeSlots, 6, {1, -1}, {0, -1}, -1};
  static const Signature kBackwardReduce = {kBackwardReduceSlots, 8, {-1, -1}, {-1, -1}, -1};
  static const Signature kBackwardElementwise = {
      kBackwardElementwiseSlots, 8, {7, -1}, {1, -1}, -1};
  static const Signature kInferenceResidual = {kInferenceResidualSlots, 7, {2, 2}, {0, 1}, 4};
  static const Signature kTrainingResidual = {kTrainingResidualSlots, 9, {2, 2}, {0, 1}, -1};
  static const Signature kBackwardResidual = {kBackwardResidualSlots, 10, {6, 7}, {1, 1}, -1};
  switch (op) {
    case Op::kInference:
      return kInference;
    case Op::kInferenceResidual:
      return kInferenceResidual;
    case Op::kTrainingResidual:
      return kTrainingResidual;
    case Op::kBackwardResidual:
      return kBackwardResidual;
    case Op::kTraining:
      return kTraining;
    case Op::kFoldScaleShift:
      return kFoldScaleShift;
    case Op::kForwardScaleShift:
      return kForwardScaleShift;
    case Op::kFoldIntoLayer:
      return kFoldIntoLayer;
    case Op::kLocalStats:
      return kLocalStats;
    case Op::kMergeStats:
      return kMergeStats;
    case Op::kForwardNormalize:
      return kForwardNormalize;
    case Op::kBackwardReduce:
      return kBackwardReduce;
    case Op::kBackwardElementwise:
      return kBackwardElementwise;
    default:
      return kBackward;
  }
}

bool HasShape(Op op) {
  return op != Op::kFoldScaleShift && op != Op::kFoldIntoLayer && op != Op::kMergeStats;
}

bool IsKnownDescSize(uint32_t size) {
  return size == sizeof(bnorm_desc) || (size >= offsetof(bnorm_desc, eps) &&
                                        size <= offsetof(bnorm_desc, num_threads) && size % 4 == 0);
}

void StoreDesc(const DescSpec& s, bnorm_desc* out) {
  memset(out, 0, sizeof(*out));
  char* base = reinterpret_cast<char*>(out);
  memcpy(base + offsetof(bnorm_desc, struct_size), &s.struct_size, 4);
  memcpy(base + offsetof(bnorm_desc, num_features), &s.num_features, 8);
  memcpy(base + offsetof(bnorm_desc, eps), &s.eps_bits, 4);
  memcpy(base + offsetof(bnorm_desc, momentum), &s.momentum_bits, 4);
  memcpy(base + offsetof(bnorm_desc, flags), &s.flags, 4);
  memcpy(base + offsetof(bnorm_desc, layout), &s.layout, 4);
  memcpy(base + offsetof(bnorm_desc, dtype), &s.dtype, 4);
  memcpy(base + offsetof(bnorm_desc, num_threads), &s.num_threads, 4);
}

Request ModelRequest(const void* desc, const bnorm_shape* shape) {
  Request r;
  if (desc == nullptr || shape == nullptr) {
    r.status = BNORM_ERR_NULL_POINTER;
    return r;
  }
  int32_t layout = 0;
  ModelDescriptor(desc, r, layout);
  if (r.status != BNORM_OK) return r;
  const int64_t num_features = r.channels;
  if (shape->rank < 2 || shape->rank > 5) {
    r.status = BNORM_ERR_INVALID_SHAPE;
    return r;
  }
  // The element count, and the tensor's bytes, must fit int64: a tensor
  // larger than that cannot exist, whatever the library does next.
  unsigned __int128 elements = 1;
  for (int i = 0; i < shape->rank; ++i) {
    if (shape->dims[i] <= 0) {
      r.status = BNORM_ERR_INVALID_SHAPE;
      return r;
    }
    if (elements <= INT64_MAX) elements *= static_cast<uint64_t>(shape->dims[i]);
  }
  if (elements > INT64_MAX || elements * r.element_size > INT64_MAX) {
    r.status = BNORM_ERR_INVALID_SHAPE;
    return r;
  }
  r.channels = shape->dims[layout == BNORM_LAYOUT_NHWC ? shape->rank - 1 : 1];
  if (r.channels != num_features) {
    r.status = BNORM_ERR_FEATURE_MISMATCH;
    return r;
  }
  r.count = static_cast<int64_t>(elements) / r.channels;
  r.tensor_bytes = static_cast<uint64_t>(elements * r.element_size);
  r.inner = r.nhwc ? 1 : r.count / shape->dims[0];
  return r;
}

int64_t ChannelOf(const Request& r, uint64_t index) {
  return static_cast<int64_t>(index / static_cast<uint64_t>(r.inner) %
                              static_cast<uint64_t>(r.channels));
}

Request ModelLayerRequest(const void* desc, Op op, int64_t row_length) {
  Request r;
  if (desc == nullptr) {
    r.status = BNORM_ERR_NULL_POINTER;
    return r;
  }
  int32_t layout = 0;
  ModelDescriptor(desc, r, layout);
  if (r.status != BNORM_OK || op != Op::kFoldIntoLayer) return r;
  // The weights, like a tensor, must have an element count and a byte count
  // that fit int64.
  const unsigned __int128 weights = static_cast<unsigned __int128>(r.channels) *
                                    static_cast<uint64_t>(row_length > 0 ? row_length : 0);
  if (row_length <= 0 || weights > INT64_MAX || weights * sizeof(float) > INT64_MAX) {
    r.status = BNORM_ERR_INVALID_ARGUMENT;
    return r;
  }
  r.weight_bytes = static_cast<uint64_t>(weights * sizeof(float));
  return r;
}

// bnorm.h: "num_partials >= 1"; like every array, its num_partials * 3 *
// num_features doubles must have a byte count within int64 (the library
// checks both right after the descriptor, and for bnorm_backward_elementwise
// after the shape, before any pointer).
void ModelPartialCount(Request& r, Op op, int32_t num_partials) {
  r.num_partials = num_partials;
  if (r.status != BNORM_OK) return;
  if (op != Op::kMergeStats && !(op == Op::kBackwardElementwise && !r.global_stats)) return;
  const unsigned __int128 bytes = static_cast<unsigned __int128>(r.channels) * kSplit *
                                  static_cast<uint64_t>(num_partials > 0 ? num_partials : 0) *
                                  sizeof(double);
  if (num_partials < 1 || bytes > INT64_MAX) {
    r.status = BNORM_ERR_INVALID_ARGUMENT;
    return;
  }
  r.partials_bytes = static_cast<uint64_t>(bytes);
}

bool IsUsed(const Request& r, Use use) {
  switch (use) {
    case Use::kIfAffine:
      return r.affine;
    case Use::kIfTrack:
      return r.track;
    case Use::kIfRelu:
      return r.relu;
    case Use::kIfSums:
      return !r.global_stats;
    default:
      return true;
  }
}

uint64_t SlotBytes(const Request& r, const Slot& slot) {
  switch (slot.extent) {
    case Extent::kTensor:
      return r.tensor_bytes;
    case Extent::kWeights:
      return r.weight_bytes;
    case Extent::kStats:
      return r.stats_bytes;
    case Extent::kPartials:
      return r.partials_bytes;
    default:
      return r.vector_bytes;
  }
}

bnorm_status ModelPointers(const Request& r, Op op, void* const* ptrs) {
  const Signature& sig = SignatureOf(op);
  for (int i = 0; i < sig.num_slots; ++i) {
    if (ptrs[i] == nullptr && Required(r, sig.slots[i].use)) return BNORM_ERR_NULL_POINTER;
  }
  for (int i = 0; i < sig.num_slots; ++i) {
    const Extent e = sig.slots[i].extent;
    const uint64_t align = e == Extent::kTensor                            ? r.element_size
                           : e == Extent::kStats || e == Extent::kPartials ? sizeof(double)
                                                                           : sizeof(float);
    if (IsUsed(r, sig.slots[i].use) && reinterpret_cast<uintptr_t>(ptrs[i]) % align != 0) {
      return BNORM_ERR_INVALID_ARGUMENT;
    }
  }
  if (OutputOverlap(r, op, ptrs, true)) return BNORM_ERR_ALIASING;
  return BNORM_OK;
}

bool IsValidCount(double count) {
  return count >= 0 && count <= 0x1p53 && std::floor(count) == count;
}

namespace {

double LoadDouble(const void* base, uint64_t index) {
  return Load<double>(base, index * sizeof(double));
}

bool IsBadStatsValue(const void* stats, uint64_t at) {
  return !IsValidCount(LoadDouble(stats, at)) || LoadDouble(stats, at + 2) < 0;
}

// bnorm_merge_stats's blocks. bnorm.h: "Every block's counts must be whole
// numbers from 0 to 2^53 (a block with count 0 is skipped) and its M2 >= 0
// (NaN, from NaN data, passes through), else BNORM_ERR_INVALID_ARGUMENT
// naming the block and channel. Then, in channel order, a total count <= 1
// is BNORM_ERR_TOO_FEW_VALUES."
Verdict ModelStatsValues(const Request& r, const void* stats) {
  const uint64_t channels = static_cast<uint64_t>(r.channels);
  const uint64_t blocks = static_cast<uint64_t>(r.num_partials);
  for (uint64_t at = 0; at < blocks * channels * kSplit; at += kSplit) {
    if (IsBadStatsValue(stats, at)) return {BNORM_ERR_INVALID_ARGUMENT, Verdict::kBlockValue};
  }
  for (uint64_t c = 0; c < channels; ++c) {
    double total = 0;  // in block order, as a caller would add them
    for (uint64_t i = 0; i < blocks; ++i) total += LoadDouble(stats, (i * channels + c) * kSplit);
    if (!(total > 1)) {
      return {BNORM_ERR_TOO_FEW_VALUES, Verdict::kTotal, static_cast<int64_t>(c)};
    }
  }
  return {};
}

// bnorm_backward_elementwise's grad sums. bnorm.h: "Every block's counts
// must be whole numbers from 0 to 2^53 (else BNORM_ERR_INVALID_ARGUMENT
// naming the block and channel); then, in channel order, each total count
// must be at least this part's values per channel (else BNORM_ERR_INVALID_
// ARGUMENT) and more than 1 (else BNORM_ERR_TOO_FEW_VALUES)."
Verdict ModelGradSumValues(const Request& r, const void* sums) {
  const uint64_t channels = static_cast<uint64_t>(r.channels);
  const uint64_t blocks = static_cast<uint64_t>(r.num_partials);
  const double local = static_cast<double>(r.count);
  for (uint64_t at = 0; at < blocks * channels * kSplit; at += kSplit) {
    if (!IsValidCount(LoadDouble(sums, at))) {
      return {BNORM_ERR_INVALID_ARGUMENT, Verdict::kBlockValue};
    }
  }
  for (uint64_t c = 0; c < channels; ++c) {
    double total = 0;
    for (uint64_t i = 0; i < blocks; ++i) total += LoadDouble(sums, (i * channels + c) * kSplit);
    if (total < local)
      return {BNORM_ERR_INVALID_ARGUMENT, Verdict::kTotal, static_cast<int64_t>(c)};
    if (!(total > 1)) return {BNORM_ERR_TOO_FEW_VALUES, Verdict::kTotal, static_cast<int64_t>(c)};
  }
  return {};
}

}  // namespace

int PartialsSlot(Op op) {
  return op == Op::kMergeStats ? 0 : op == Op::kBackwardElementwise ? 6 : -1;
}

bool IsBadBlockValue(const Request& r, Op op, const void* blocks, int64_t block, int64_t channel) {
  if (block < 0 || block >= r.num_partials || channel < 0 || channel >= r.channels) return false;
  const uint64_t at = (static_cast<uint64_t>(block) * r.channels + channel) * kSplit;
  if (op == Op::kMergeStats) return IsBadStatsValue(blocks, at);
  return !IsValidCount(LoadDouble(blocks, at));
}

Verdict ModelValues(const Request& r, Op op, void* const* ptrs) {
  switch (op) {
    case Op::kTraining:
    case Op::kTrainingResidual:
      if (r.count == 1) return {BNORM_ERR_TOO_FEW_VALUES};
      break;
    case Op::kBackward:
    case Op::kBackwardResidual:
      if (!r.global_stats && r.count == 1) return {BNORM_ERR_TOO_FEW_VALUES};
      break;
    case Op::kMergeStats:
      return ModelStatsValues(r, ptrs[0]);
    case Op::kBackwardElementwise:
      if (!r.global_stats) {
        const Verdict v = ModelGradSumValues(r, ptrs[6]);
        if (v.status != BNORM_OK) return v;
      }
      break;
    default:
      // bnorm_local_stats and bnorm_backward_reduce: one value per channel is
      // fine (only the whole batch needs more).
      break;
  }
  // bf16 and f16 tensors are valid for every call: their 2-byte elements
  // are in element_size, and so in the tensors' bytes, alignment and overlaps.
  return {};
}

bool AnyOverlap(const Request& r, Op op, void* const* ptrs) {
  return OutputOverlap(r, op, ptrs, false);
}

}  // namespace bnorm_fuzz
