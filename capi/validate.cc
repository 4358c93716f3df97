#include "capi/validate.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <cmath>

#include "capi/error.h"
#include "src/exchanged_blocks.h"

namespace bnorm {
namespace {

constexpr uint32_t kKnownFlags = BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS |
                                 BNORM_FLAG_FUSE_RELU | BNORM_FLAG_USE_GLOBAL_STATS;

// Sizes an older header's bnorm_desc may have: each ends on a field boundary,
// at least through num_features.
constexpr uint32_t kDescSizes[] = {
    offsetof(bnorm_desc, eps),    offsetof(bnorm_desc, momentum), offsetof(bnorm_desc, flags),
    offsetof(bnorm_desc, layout), offsetof(bnorm_desc, dtype),    offsetof(bnorm_desc, num_threads),
    sizeof(bnorm_desc),
};

bool IsKnownDescSize(uint32_t size) {
  for (uint32_t s : kDescSizes) {
    if (s == size) return true;
  }
  return false;
}

size_t DtypeSize(bnorm_dtype dtype) { return dtype == BNORM_DTYPE_F32 ? 4 : 2; }

// "(1, 64, 1, 1)"
void FormatShape(const bnorm_shape* shape, char* out, size_t size) {
  size_t used = snprintf(out, size, "(");
  for (int i = 0; i < shape->rank && used < size; ++i) {
    used += snprintf(out + used, size - used, "%s%" PRId64, i ? ", " : "", shape->dims[i]);
  }
  if (used < size) snprintf(out + used, size - used, ")");
}

// The value a caller stored in an enum field, read without loading the enum
// type: values outside the enumerators come from C callers, and loading them
// as the C++ enum type is undefined behaviour.
template <class Enum>
int32_t StoredValue(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "C enums are int-sized on supported ABIs");
  int32_t value;
  memcpy(&value, &field, sizeof(value));
  return value;
}

bnorm_status ValidateFields(const bnorm_desc& d) {
  if (!(std::isfinite(d.eps) && d.eps > 0)) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT, "eps is %g; it must be finite and > 0", d.eps);
  }
  if (!(d.momentum >= 0 && d.momentum <= 1)) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT, "momentum is %g; it must be in [0, 1]", d.momentum);
  }
  const int32_t layout = StoredValue(d.layout);
  if (layout != BNORM_LAYOUT_NCHW && layout != BNORM_LAYOUT_NHWC) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT,
                "layout is %" PRId32 "; it must be BNORM_LAYOUT_NCHW (0) or BNORM_LAYOUT_NHWC (1)",
                layout);
  }
  const int32_t dtype = StoredValue(d.dtype);
  if (dtype != BNORM_DTYPE_F32 && dtype != BNORM_DTYPE_BF16 && dtype != BNORM_DTYPE_F16) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT,
                "dtype is %" PRId32
                "; it must be BNORM_DTYPE_F32 (0), BNORM_DTYPE_BF16 (1) or BNORM_DTYPE_F16 (2)",
                dtype);
  }
  if ((d.flags & ~kKnownFlags) != 0) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT, "flags 0x%" PRIx32 " has unknown bits 0x%" PRIx32,
                d.flags, d.flags & ~kKnownFlags);
  }
  if (d.num_threads < 0) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT, "num_threads is %" PRId32 "; it must be >= 0",
                d.num_threads);
  }
  return BNORM_OK;
}

bnorm_status ValidateShape(const bnorm_shape* shape, size_t element_size) {
  if (shape->rank < 2 || shape->rank > 5) {
    return Fail(BNORM_ERR_INVALID_SHAPE, "rank is %" PRId32 "; it must be 2 to 5", shape->rank);
  }
  int64_t count = 1;
  bool overflow = false;
  for (int i = 0; i < shape->rank; ++i) {
    if (shape->dims[i] <= 0) {
      return Fail(BNORM_ERR_INVALID_SHAPE, "dims[%d] is %" PRId64 "; every dimension must be > 0",
                  i, shape->dims[i]);
    }
    overflow = overflow || __builtin_mul_overflow(count, shape->dims[i], &count);
  }
  // Every byte of the tensor must be addressable with a signed offset.
  int64_t bytes = 0;
  if (overflow || __builtin_mul_overflow(count, static_cast<int64_t>(element_size), &bytes)) {
    char text[160];
    FormatShape(shape, text, sizeof(text));
    return Fail(BNORM_ERR_INVALID_SHAPE, "the element count of shape %s overflows", text);
  }
  return BNORM_OK;
}

bnorm_status ValidateChannels(const bnorm_desc& d, const bnorm_shape* shape) {
  const int channel_dim = d.layout == BNORM_LAYOUT_NHWC ? shape->rank - 1 : 1;
  const int64_t channels = shape->dims[channel_dim];
  if (channels == d.num_features) return BNORM_OK;
  // The most common cause: a channels-last tensor described as NCHW, or the reverse.
  const int other_dim = d.layout == BNORM_LAYOUT_NHWC ? 1 : shape->rank - 1;
  if (shape->rank > 2 && shape->dims[other_dim] == d.num_features) {
    return Fail(BNORM_ERR_FEATURE_MISMATCH,
                "input channel dimension (dim %d) is %" PRId64 " but num_features is %" PRId64
                "; dim %d is %" PRId64 ": is the tensor %s? set layout to %s",
                channel_dim, channels, d.num_features, other_dim, shape->dims[other_dim],
                d.layout == BNORM_LAYOUT_NHWC ? "channels-first" : "channels-last",
                d.layout == BNORM_LAYOUT_NHWC ? "BNORM_LAYOUT_NCHW" : "BNORM_LAYOUT_NHWC");
  }
  return Fail(BNORM_ERR_FEATURE_MISMATCH,
              "input channel dimension (dim %d) is %" PRId64 " but num_features is %" PRId64,
              channel_dim, channels, d.num_features);
}

// The bytes an argument spans, saturated: a num_features near 2^62 cannot be
// a real buffer, but must still not wrap to a small size.
size_t ArgBytes(const Request& r, const DataArg& a) {
  using Wide = unsigned __int128;
  const Plan& p = r.problem.plan;
  Wide bytes;
  if (a.floats > 0) {
    bytes = Wide{sizeof(float)} * static_cast<uint64_t>(a.floats);
  } else if (a.doubles > 0) {
    bytes = Wide{sizeof(double)} * static_cast<uint64_t>(a.doubles);
  } else if (a.tensor) {
    bytes =
        Wide{r.element_size} * static_cast<uint64_t>(p.count) * static_cast<uint64_t>(p.channels);
  } else {
    bytes = Wide{sizeof(float)} * static_cast<uint64_t>(p.channels);
  }
  return bytes > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(bytes);
}

// Written without a + a_bytes, which could wrap past the address space.
bool Overlap(uintptr_t a, size_t a_bytes, uintptr_t b, size_t b_bytes) {
  return a >= b ? a - b < b_bytes : b - a < a_bytes;
}

// Whether `name` is one of the comma-separated names in `list` ("x,residual").
bool NamedIn(const char* name, const char* list) {
  if (name == nullptr || list == nullptr) return false;
  const size_t length = strlen(name);
  for (const char* p = list;; ++p) {
    const char* end = strchr(p, ',');
    const size_t item = end != nullptr ? static_cast<size_t>(end - p) : strlen(p);
    if (item == length && strncmp(p, name, length) == 0) return true;
    if (end == nullptr) return false;
    p = end;
  }
}

}  // namespace

namespace {

// The caller's descriptor, completed with defaults past its struct_size, and
// its fields.
bnorm_status ValidateDescriptor(const bnorm_desc* desc, Request* r) {
  if (!IsKnownDescSize(desc->struct_size)) {
    return Fail(BNORM_ERR_INVALID_DESCRIPTOR,
                "desc->struct_size is %" PRIu32
                "; expected sizeof(bnorm_desc) (%zu) or an older size that ends on a field "
                "(was the descriptor initialised with bnorm_desc_init?)",
                desc->struct_size, sizeof(bnorm_desc));
  }
  bnorm_desc_init(&r->desc, 1);
  memcpy(&r->desc, desc, desc->struct_size);
  const bnorm_desc& d = r->desc;
  if (d.num_features <= 0) {
    return Fail(BNORM_ERR_INVALID_DESCRIPTOR, "num_features is %" PRId64 "; it must be > 0",
                d.num_features);
  }
  if (bnorm_status s = ValidateFields(d)) return s;
  r->element_size = DtypeSize(d.dtype);
  Problem& pr = r->problem;
  pr.eps = d.eps;
  pr.momentum = d.momentum;
  pr.affine = (d.flags & BNORM_FLAG_AFFINE) != 0;
  pr.track_running_stats = (d.flags & BNORM_FLAG_TRACK_RUNNING_STATS) != 0;
  pr.relu = (d.flags & BNORM_FLAG_FUSE_RELU) != 0;
  pr.global_stats = (d.flags & BNORM_FLAG_USE_GLOBAL_STATS) != 0;
  pr.num_threads = d.num_threads;
  return BNORM_OK;
}

}  // namespace

bnorm_status ValidateRequest(const bnorm_desc* desc, const bnorm_shape* shape, PlanKind kind,
                             Request* r) {
  if (desc == nullptr) return Fail(BNORM_ERR_NULL_POINTER, "desc is NULL");
  if (shape == nullptr) return Fail(BNORM_ERR_NULL_POINTER, "shape is NULL");
  if (bnorm_status s = ValidateDescriptor(desc, r)) return s;
  if (bnorm_status s = ValidateShape(shape, r->element_size)) return s;
  if (bnorm_status s = ValidateChannels(r->desc, shape)) return s;
  const bnorm_desc& d = r->desc;
  r->problem.plan =
      MakePlan(d.layout == BNORM_LAYOUT_NHWC, shape->rank, shape->dims, kind, r->element_size);
  return BNORM_OK;
}

bnorm_status ValidateLayer(const bnorm_desc* desc, Request* r) {
  if (desc == nullptr) return Fail(BNORM_ERR_NULL_POINTER, "desc is NULL");
  if (bnorm_status s = ValidateDescriptor(desc, r)) return s;
  r->problem.plan = Plan{};
  r->problem.plan.channels = r->desc.num_features;
  return BNORM_OK;
}

bnorm_status ValidateData(const Request& r, const DataArg* args, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const DataArg& a = args[i];
    if (a.ptr != nullptr || a.required_by == nullptr) continue;
    if (a.required_by[0] == '\0') return Fail(BNORM_ERR_NULL_POINTER, "%s is NULL", a.name);
    return Fail(BNORM_ERR_NULL_POINTER, "%s is NULL but %s is set", a.name, a.required_by);
  }
  for (size_t i = 0; i < n; ++i) {
    const DataArg& a = args[i];
    const size_t align = a.tensor ? r.element_size : a.doubles > 0 ? sizeof(double) : sizeof(float);
    if (reinterpret_cast<uintptr_t>(a.ptr) % align != 0) {
      return Fail(BNORM_ERR_INVALID_ARGUMENT, "%s (%p) is not aligned to %zu bytes", a.name, a.ptr,
                  align);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const DataArg& a = args[i];
      const DataArg& b = args[j];
      if (a.ptr == nullptr || b.ptr == nullptr || !(a.output || b.output)) continue;
      const uintptr_t pa = reinterpret_cast<uintptr_t>(a.ptr);
      const uintptr_t pb = reinterpret_cast<uintptr_t>(b.ptr);
      if (!Overlap(pa, ArgBytes(r, a), pb, ArgBytes(r, b))) continue;
      const bool in_place_pair = (a.output && NamedIn(b.name, a.in_place_of)) ||
                                 (b.output && NamedIn(a.name, b.in_place_of));
      if (in_place_pair && pa == pb) continue;
      return Fail(BNORM_ERR_ALIASING, "%s overlaps %s%s", a.output ? a.name : b.name,
                  a.output ? b.name : a.name,
                  in_place_pair ? " (in place is allowed only with the same pointer)" : "");
    }
  }
  return BNORM_OK;
}

bnorm_status ValidateEnoughValues(const Request& r, const bnorm_shape* shape, const char* what) {
  if (r.problem.plan.count > 1) return BNORM_OK;
  char text[160];
  FormatShape(shape, text, sizeof(text));
  return Fail(BNORM_ERR_TOO_FEW_VALUES,
              "%s needs more than 1 value per channel, got input of shape %s", what, text);
}

bnorm_status ValidatePartialCount(const Request& r, int32_t num_partials, const char* name,
                                  int64_t* doubles) {
  const int64_t channels = r.desc.num_features;
  // 3 * num_features * num_partials doubles must be addressable.
  int64_t count = 0, bytes = 0;
  if (num_partials < 1 ||
      __builtin_mul_overflow(channels, kValuesPerChannel * num_partials, &count) ||
      __builtin_mul_overflow(count, static_cast<int64_t>(sizeof(double)), &bytes)) {
    return Fail(BNORM_ERR_INVALID_ARGUMENT,
                "num_partials is %" PRId32 " with num_features %" PRId64
                "; it must be >= 1 and the %s array's size must not overflow",
                num_partials, channels, name);
  }
  *doubles = count;
  return BNORM_OK;
}

namespace {

// A count as the split phases write it: a whole number >= 0 that a double
// holds exactly.
// (The integer round trip, not std::floor: this build's baseline x86-64 has
// no rounding instruction, and a libm call per value doubled a merge's cost.)
bool IsCount(double count) {
  return count >= 0 && count <= 0x1p53 && static_cast<double>(static_cast<int64_t>(count)) == count;
}

bnorm_status CheckCount(const char* name, int32_t block, int64_t channel, double count) {
  if (IsCount(count)) return BNORM_OK;
  return Fail(BNORM_ERR_INVALID_ARGUMENT,
              "%s block %" PRId32 ", channel %" PRId64
              ": count is %.17g; it must be a whole number from 0 to 2^53 (is the array laid "
              "out as (count, ...) per channel, num_features channels per block?)",
              name, block, channel, count);
}

}  // namespace

static_assert(kValuesPerChannel == BNORM_SPLIT_VALUES_PER_CHANNEL,
              "the header's count of exchanged values per channel");

int64_t SplitBlockDoubles(const Request& r) {
  const int64_t channels = r.desc.num_features;
  return channels > INT64_MAX / kValuesPerChannel ? INT64_MAX : kValuesPerChannel * channels;
}

namespace {

// Every block's values are checked before any channel's total, so which error
// is reported does not depend on how the walk tiles the channels. Each walk
// stops at the first error, left in *status.
template <class CheckValues>
bool CheckBlocks(const Request& r, int32_t num_partials, const double* blocks,
                 const CheckValues& check, bnorm_status* status) {
  return FoldBlocks<char>(
      r.desc.num_features, num_partials, blocks,
      [&](char*, int block, int64_t c, const double* v) {
        return (*status = check(block, c, v)) == BNORM_OK;
      },
      [](int64_t, char) { return true; });
}

template <class CheckTotal>
bool CheckTotalCounts(const Request& r, int32_t num_partials, const double* blocks,
                      const CheckTotal& check, bnorm_status* status) {
  return FoldBlocks<double>(
      r.desc.num_features, num_partials, blocks,
      [](double* total, int, int64_t, const double* v) {
        *total += v[0];
        return true;
      },
      [&](int64_t c, double total) { return (*status = check(c, total)) == BNORM_OK; });
}

}  // namespace

bnorm_status ValidatePartialStats(const Request& r, int32_t num_partials,
                                  const double* partial_stats) {
  const auto check_block = [](int32_t i, int64_t c, const double* v) -> bnorm_status {
    if (bnorm_status s = CheckCount("partial_stats", i, c, v[0])) return s;
    if (v[2] < 0) {
      return Fail(BNORM_ERR_INVALID_ARGUMENT,
                  "partial_stats block %" PRId32 ", channel %" PRId64 ": M2 is %g; it must be >= 0",
                  i, c, v[2]);
    }
    return BNORM_OK;
  };
  const auto check_total = [&](int64_t c, double total) -> bnorm_status {
    if (total > 1) return BNORM_OK;
    return Fail(BNORM_ERR_TOO_FEW_VALUES,
                "merging statistics needs more than 1 value per channel in all, got %.17g in "
                "channel %" PRId64 " over %" PRId32 " blocks",
                total, c, num_partials);
  };
  bnorm_status status = BNORM_OK;
  if (CheckBlocks(r, num_partials, partial_stats, check_block, &status)) {
    CheckTotalCounts(r, num_partials, partial_stats, check_total, &status);
  }
  return status;
}

bnorm_status ValidateGradSums(const Request& r, const bnorm_shape* shape, int32_t num_partials,
                              const double* grad_sums) {
  const auto check_block = [](int32_t i, int64_t c, const double* v) {
    return CheckCount("grad_sums", i, c, v[0]);
  };
  const double local = static_cast<double>(r.problem.plan.count);
  const auto check_total = [&](int64_t c, double total) -> bnorm_status {
    if (total < local) {
      char text[160];
      FormatShape(shape, text, sizeof(text));
      return Fail(BNORM_ERR_INVALID_ARGUMENT,
                  "grad_sums channel %" PRId64
                  ": the total count is %.17g but this part, of shape %s, alone has %" PRId64
                  " values per channel; pass the sums of every process (allreduced, or all "
                  "blocks gathered)",
                  c, total, text, r.problem.plan.count);
    }
    if (total > 1) return BNORM_OK;
    return Fail(BNORM_ERR_TOO_FEW_VALUES,
                "training-mode backward needs more than 1 value per channel in all, got %.17g "
                "in channel %" PRId64,
                total, c);
  };
  bnorm_status status = BNORM_OK;
  if (CheckBlocks(r, num_partials, grad_sums, check_block, &status)) {
    CheckTotalCounts(r, num_partials, grad_sums, check_total, &status);
  }
  return status;
}

}  // namespace bnorm
