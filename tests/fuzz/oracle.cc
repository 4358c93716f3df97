#include "oracle.h"

#include <math.h>
#include <string.h>

namespace bnorm_fuzz {
namespace {

constexpr Extent kV = Extent::kVector, kT = Extent::kTensor, kW = Extent::kWeights;

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
  r.element_size = dtype == BNORM_DTYPE_F32 ? 4 : 2;
  r.affine = flags & BNORM_FLAG_AFFINE;
  r.track = flags & BNORM_FLAG_TRACK_RUNNING_STATS;
  r.relu = flags & BNORM_FLAG_FUSE_RELU;
  r.global_stats = flags & BNORM_FLAG_USE_GLOBAL_STATS;
  r.f32 = dtype == BNORM_DTYPE_F32;
}

}  // namespace

const Signature& SignatureOf(Op op) {
  static const Signature kInference = {kInferenceSlots, 6, {1, -1}, {0, -1}, 3};
  static const Signature kTraining = {kTrainingSlots, 8, {1, -1}, {0, -1}, -1};
  static const Signature kBackward = {kBackwardSlots, 9, {6, -1}, {1, -1}, -1};
  static const Signature kFoldScaleShift = {kFoldScaleShiftSlots, 6, {-1, -1}, {-1, -1}, 1};
  static const Signature kForwardScaleShift = {kForwardScaleShiftSlots, 4, {1, -1}, {0, -1}, -1};
  static const Signature kFoldIntoLayer = {kFoldIntoLayerSlots, 8, {6, 7}, {0, 1}, 3};
  switch (op) {
    case Op::kInference:
      return kInference;
    case Op::kTraining:
      return kTraining;
    case Op::kFoldScaleShift:
      return kFoldScaleShift;
    case Op::kForwardScaleShift:
      return kForwardScaleShift;
    case Op::kFoldIntoLayer:
      return kFoldIntoLayer;
    default:
      return kBackward;
  }
}

bool HasShape(Op op) { return op != Op::kFoldScaleShift && op != Op::kFoldIntoLayer; }

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
  return r;
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

bool IsUsed(const Request& r, Use use) {
  switch (use) {
    case Use::kIfAffine:
      return r.affine;
    case Use::kIfTrack:
      return r.track;
    case Use::kIfRelu:
      return r.relu;
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
    default:
      return r.vector_bytes;
  }
}

bnorm_status ModelCall(const Request& r, Op op, void* const* ptrs) {
  const Signature& sig = SignatureOf(op);
  for (int i = 0; i < sig.num_slots; ++i) {
    if (ptrs[i] == nullptr && Required(r, sig.slots[i].use)) return BNORM_ERR_NULL_POINTER;
  }
  for (int i = 0; i < sig.num_slots; ++i) {
    const uint64_t align = sig.slots[i].extent == Extent::kTensor ? r.element_size : sizeof(float);
    if (IsUsed(r, sig.slots[i].use) && reinterpret_cast<uintptr_t>(ptrs[i]) % align != 0) {
      return BNORM_ERR_INVALID_ARGUMENT;
    }
  }
  if (OutputOverlap(r, op, ptrs, true)) return BNORM_ERR_ALIASING;
  const bool needs_statistics = op == Op::kTraining || (op == Op::kBackward && !r.global_stats);
  if (needs_statistics && r.count == 1) return BNORM_ERR_TOO_FEW_VALUES;
  // The folding calls have no tensor: they do not use the dtype.
  if (HasShape(op) && !r.f32) return BNORM_ERR_UNSUPPORTED;
  return BNORM_OK;
}

bool AnyOverlap(const Request& r, Op op, void* const* ptrs) {
  return OutputOverlap(r, op, ptrs, false);
}

}  // namespace bnorm_fuzz
