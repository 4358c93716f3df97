// The fuzz input: a sequence of bnorm calls, each decoded from a few bytes.
// Decoding reads front to back and yields zeros past the end, so every byte
// string is a valid input. Most byte values decode to a sensible default and a
// few to edge cases, so mutations mostly stay near calls that get far into the
// library. Encode is the exact inverse of Decode for every CallSpec it emits,
// which is how make_seeds.cc writes the committed corpus.
#ifndef BNORM_TESTS_FUZZ_INPUT_FORMAT_H_
#define BNORM_TESTS_FUZZ_INPUT_FORMAT_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "bnorm/bnorm.h"

namespace bnorm_fuzz {

enum class Op : uint8_t {
  kDescInit,
  kInference,
  kTraining,
  kBackward,
  kSetMaxTarget,
  kStatusString,
  kTargetName,
  kQueries,  // version, active target, target count, last error
  // Since 1.1, appended so that older inputs keep their meaning.
  kFoldScaleShift,
  kForwardScaleShift,
  kFoldIntoLayer,
  // Since 1.2, the split (distributed) phases, appended likewise.
  kLocalStats,
  kMergeStats,
  kForwardNormalize,
  kBackwardReduce,
  kBackwardElementwise,
  // Since 1.2, the residual-add calls (y = bn(x) + residual, then ReLU),
  // appended likewise.
  kInferenceResidual,
  kTrainingResidual,
  kBackwardResidual,
  kNumOps
};

// Fields as a C caller stores them: enums as raw int32, floats as raw bits.
struct DescSpec {
  bool null = false;
  uint32_t struct_size = sizeof(bnorm_desc);
  int64_t num_features = 4;
  uint32_t eps_bits = 0x3727c5ac;       // 1e-5f
  uint32_t momentum_bits = 0x3dcccccd;  // 0.1f
  uint32_t flags = BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS;
  int32_t layout = BNORM_LAYOUT_NCHW;
  int32_t dtype = BNORM_DTYPE_F32;
  int32_t num_threads = 0;
  bool operator==(const DescSpec& o) const;
};

struct ShapeSpec {
  bool null = false;
  int32_t rank = 4;
  int64_t dims[5] = {2, 4, 3, 3, 0};  // dims past rank are passed too, unread
  bool operator==(const ShapeSpec& o) const;
};

// Where one pointer argument of a call points.
struct Placement {
  enum Kind : uint8_t {
    kFresh,  // its own region, guard bytes on both sides
    kNull,
    kSame,        // the same pointer as an earlier argument (`target`)
    kOffset,      // an earlier argument's pointer + `delta` bytes
    kMisaligned,  // its own region, `misalign` (1..3) bytes past alignment
  };
  Kind kind = kFresh;
  uint8_t target = 0;  // index of an earlier argument, taken modulo their count
  int16_t delta = 0;
  uint8_t misalign = 0;
  bool operator==(const Placement& o) const;
};

enum class Fill : uint8_t {
  kSane,     // floats in [-8, 8]; variances in [0, 8]
  kRaw,      // random bytes: NaNs, infinities, denormals
  kSpecial,  // a mix of 0, -0, +-inf, NaN, denormals, FLT_MAX
};

// The exchanged double arrays (partial_stats, grad_sums) the split phases
// read: (count, mean or sum, M2 or sum) per channel and block. Every kind
// draws from the call's seed; the oracle judges the bytes as they end up.
struct StatsSpec {
  enum Kind : uint8_t {
    kSane,     // valid counts (some 0), means and sums in [-8, 8] per value, M2 >= 0
    kPoked,    // sane, then `pokes` random entries set to special values
    kCount,    // sane, every count `count`
    kSpecial,  // every entry a special value (0, -0, 0.5, -1, NaN, inf, 2^53 + 2, ...)
    kRaw,      // random bytes
  };
  Kind kind = kSane;
  uint8_t pokes = 0;  // kPoked: 1 to 16
  int64_t count = 0;  // kCount
  bool operator==(const StatsSpec& o) const;
};

constexpr int kMaxSlots = 10;  // bnorm_backward_residual's pointer arguments
constexpr size_t kMaxOps = 16;

struct CallSpec {
  Op op = Op::kQueries;
  DescSpec desc;                // kDescInit uses null and num_features only
  bool match_channels = false;  // decode-time: dims[channel] = num_features
  ShapeSpec shape;              // the calls with a shape (HasShape in oracle.h)
  int64_t row_length = 9;       // kFoldIntoLayer
  int32_t num_partials = 1;     // kMergeStats, kBackwardElementwise
  StatsSpec stats;              // kMergeStats, kBackwardElementwise: the blocks read
  Fill fill = Fill::kSane;
  uint32_t seed = 0;
  Placement slots[kMaxSlots];
  // kSetMaxTarget: a listed name, bnorm_target_name(index), or raw bytes.
  enum NameKind : uint8_t { kListedName, kTargetIndex, kRawName } name_kind = kListedName;
  uint8_t name_index = 0;
  std::string raw_name;
  int32_t value = 0;  // kStatusString, kTargetName
  bool operator==(const CallSpec& o) const;
};

// Names kSetMaxTarget may pick by index; nullptr is a NULL name.
extern const char* const kListedNames[16];

// The number of pointer arguments of a compute call (a call on data).
int NumSlots(Op op);

std::vector<CallSpec> Decode(const uint8_t* data, size_t size);
std::vector<uint8_t> Encode(const std::vector<CallSpec>& calls);

}  // namespace bnorm_fuzz

#endif  // BNORM_TESTS_FUZZ_INPUT_FORMAT_H_
