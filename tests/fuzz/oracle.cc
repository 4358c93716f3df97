#include "oracle.h"

#include <math.h>
#include <string.h>

namespace bnorm_fuzz {
namespace {

constexpr Slot kInferenceSlots[] = {
    {"x", true, false, Use::kAlways},        {"y", true, true, Use::kAlways},
    {"mean", false, false, Use::kAlways},    {"var", false, false, Use::kAlways},
    {"gamma", false, false, Use::kIfAffine}, {"beta", false, false, Use::kIfAffine},
};
constexpr Slot kTrainingSlots[] = {
    {"x", true, false, Use::kAlways},
    {"y", true, true, Use::kAlways},
    {"gamma", false, false, Use::kIfAffine},
    {"beta", false, false, Use::kIfAffine},
    {"running_mean", false, true, Use::kIfTrack},
    {"running_var", false, true, Use::kIfTrack},
    {"save_mean", false, true, Use::kOptional},
    {"save_invstd", false, true, Use::kOptional},
};
constexpr Slot kBackwardSlots[] = {
    {"x", true, false, Use::kAlways},          {"dy", true, false, Use::kAlways},
    {"y", true, false, Use::kIfRelu},          {"gamma", false, false, Use::kIfAffine},
    {"save_mean", false, false, Use::kAlways}, {"save_invstd", false, false, Use::kAlways},
    {"dx", true, true, Use::kOptional},        {"dgamma", false, true, Use::kOptional},
    {"dbeta", false, true, Use::kOptional},
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
  return (i == sig.in_place_output && j == sig.in_place_input) ||
         (j == sig.in_place_output && i == sig.in_place_input);
}

bool Overlaps(uintptr_t a, uint64_t a_bytes, uintptr_t b, uint64_t b_bytes) {
  using Wide = unsigned __int128;
  return a < Wide{b} + b_bytes && b < Wide{a} + a_bytes;
}

// Whether two used arguments (one of them an output, if outputs_only) overlap
// other than as the exact in-place pair.
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

}  // namespace

const Signature& SignatureOf(Op op) {
  static const Signature kInference = {kInferenceSlots, 6, 1, 0};
  static const Signature kTraining = {kTrainingSlots, 8, 1, 0};
  static const Signature kBackward = {kBackwardSlots, 9, 6, 1};
  return op == Op::kInference ? kInference : op == Op::kTraining ? kTraining : kBackward;
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
  const uint32_t struct_size = Load<uint32_t>(desc, 0);
  if (!IsKnownDescSize(struct_size)) {
    r.status = BNORM_ERR_INVALID_DESCRIPTOR;
    return r;
  }
  // Fields past an older struct_size take their defaults.
  bnorm_desc d;
  StoreDesc(DescSpec(), &d);
  memcpy(&d, desc, struct_size);
  const int64_t num_features = Load<int64_t>(&d, offsetof(bnorm_desc, num_features));
  const float eps = Load<float>(&d, offsetof(bnorm_desc, eps));
  const float momentum = Load<float>(&d, offsetof(bnorm_desc, momentum));
  const uint32_t flags = Load<uint32_t>(&d, offsetof(bnorm_desc, flags));
  const int32_t layout = Load<int32_t>(&d, offsetof(bnorm_desc, layout));
  const int32_t dtype = Load<int32_t>(&d, offsetof(bnorm_desc, dtype));
  const int32_t num_threads = Load<int32_t>(&d, offsetof(bnorm_desc, num_threads));
  if (num_features <= 0) {
    r.status = BNORM_ERR_INVALID_DESCRIPTOR;
    return r;
  }
  if (!(isfinite(eps) && eps > 0) || !(momentum >= 0 && momentum <= 1) ||
      (layout != BNORM_LAYOUT_NCHW && layout != BNORM_LAYOUT_NHWC) ||
      (dtype != BNORM_DTYPE_F32 && dtype != BNORM_DTYPE_BF16 && dtype != BNORM_DTYPE_F16) ||
      (flags & ~0xFu) != 0 || num_threads < 0) {
    r.status = BNORM_ERR_INVALID_ARGUMENT;
    return r;
  }
  r.element_size = dtype == BNORM_DTYPE_F32 ? 4 : 2;
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
  r.affine = flags & BNORM_FLAG_AFFINE;
  r.track = flags & BNORM_FLAG_TRACK_RUNNING_STATS;
  r.relu = flags & BNORM_FLAG_FUSE_RELU;
  r.global_stats = flags & BNORM_FLAG_USE_GLOBAL_STATS;
  r.f32 = dtype == BNORM_DTYPE_F32;
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
  return slot.tensor ? r.tensor_bytes : static_cast<uint64_t>(r.channels) * sizeof(float);
}

bnorm_status ModelCall(const Request& r, Op op, void* const* ptrs) {
  const Signature& sig = SignatureOf(op);
  for (int i = 0; i < sig.num_slots; ++i) {
    if (ptrs[i] == nullptr && Required(r, sig.slots[i].use)) return BNORM_ERR_NULL_POINTER;
  }
  for (int i = 0; i < sig.num_slots; ++i) {
    const uint64_t align = sig.slots[i].tensor ? r.element_size : sizeof(float);
    if (IsUsed(r, sig.slots[i].use) && reinterpret_cast<uintptr_t>(ptrs[i]) % align != 0) {
      return BNORM_ERR_INVALID_ARGUMENT;
    }
  }
  if (OutputOverlap(r, op, ptrs, true)) return BNORM_ERR_ALIASING;
  const bool needs_statistics = op == Op::kTraining || (op == Op::kBackward && !r.global_stats);
  if (needs_statistics && r.count == 1) return BNORM_ERR_TOO_FEW_VALUES;
  if (!r.f32) return BNORM_ERR_UNSUPPORTED;
  return BNORM_OK;
}

bool AnyOverlap(const Request& r, Op op, void* const* ptrs) {
  return OutputOverlap(r, op, ptrs, false);
}

}  // namespace bnorm_fuzz
