// What bnorm.h says a call must return, computed without the library, so the
// harness knows before a call whether it may touch data (and so needs buffers
// as large as the shape) or must be rejected (and may get tiny buffers).
#ifndef BNORM_TESTS_FUZZ_ORACLE_H_
#define BNORM_TESTS_FUZZ_ORACLE_H_

#include <stddef.h>
#include <stdint.h>

#include "bnorm/bnorm.h"
#include "input_format.h"

namespace bnorm_fuzz {

// When a pointer argument is read or written. kOptional: only when non-NULL.
// kIfSums: without BNORM_FLAG_USE_GLOBAL_STATS (bnorm_backward_elementwise's
// grad_sums).
enum class Use : uint8_t { kAlways, kOptional, kIfAffine, kIfTrack, kIfRelu, kIfSums };

// How long an argument is.
enum class Extent : uint8_t {
  kVector,    // float[num_features]
  kTensor,    // the shape's element count in the dtype
  kWeights,   // float[num_features * row_length] (bnorm_fold_into_layer)
  kStats,     // double[3 * num_features]: one block of the split phases
  kPartials,  // double[num_partials * 3 * num_features]: the blocks a merge reads
};
constexpr int kNumExtents = 5;

// The split phases' exchanged values per channel (bnorm.h).
constexpr int kSplit = BNORM_SPLIT_VALUES_PER_CHANNEL;

struct Slot {
  const char* name;
  Extent extent;
  bool output;
  Use use;
};

struct Signature {
  const Slot* slots;
  int num_slots;
  // The output/input pairs that may be the same pointer (in place); -1: none.
  int in_place_output[2];
  int in_place_input[2];
  int variance;  // the slot that holds variances (>= 0 in sane data), or -1
};

// Calls that take a shape (the others take a descriptor only).
bool HasShape(Op op);

const Signature& SignatureOf(Op op);

// struct_size values the header accepts: field boundaries from num_features on.
bool IsKnownDescSize(uint32_t size);

// The caller's view of a descriptor: writes the fields through memcpy, so
// enum fields may hold any int32 without a C++ enum load.
void StoreDesc(const DescSpec& spec, bnorm_desc* out);

// The verdict on everything but the data pointers.
struct Request {
  bnorm_status status = BNORM_OK;
  // The rest holds when status is BNORM_OK.
  int64_t channels = 0;
  int64_t count = 0;  // values per channel
  uint64_t element_size = 4;
  uint64_t tensor_bytes = 0;    // < 2^63: larger shapes are rejected
  uint64_t vector_bytes = 0;    // num_features floats, saturated at UINT64_MAX
  uint64_t weight_bytes = 0;    // bnorm_fold_into_layer: < 2^63, larger is rejected
  uint64_t stats_bytes = 0;     // 3 * num_features doubles, saturated at UINT64_MAX
  int32_t num_partials = 0;     // bnorm_merge_stats, bnorm_backward_elementwise
  uint64_t partials_bytes = 0;  // num_partials blocks: < 2^63, larger is rejected
  bool affine = false, track = false, relu = false, global_stats = false;
  // The tensors' element type (BNORM_DTYPE_*), element_size bytes each.
  int32_t dtype = BNORM_DTYPE_F32;
  // What the harness's reference checks need: the descriptor's eps and
  // momentum (defaults past an older struct_size), the layout, and for NCHW
  // the values of a channel per sample (element j is in channel
  // (j / inner) % channels; NHWC: j % channels).
  float eps = 0, momentum = 0;
  bool nhwc = false;
  int64_t inner = 1;
};

// The channel of a tensor's element `index`, for a request that passed.
int64_t ChannelOf(const Request& r, uint64_t index);

// `desc` is the caller's memory (struct_size bytes of it are read) or NULL.
Request ModelRequest(const void* desc, const bnorm_shape* shape);

// The same for the calls without a shape: the descriptor, then (for
// Op::kFoldIntoLayer) row_length and the weight count.
Request ModelLayerRequest(const void* desc, Op op, int64_t row_length);

// After either of the above: num_partials (>= 1, the blocks' byte count
// within int64) for Op::kMergeStats, and for Op::kBackwardElementwise when it
// reads grad_sums.
void ModelPartialCount(Request& r, Op op, int32_t num_partials);

bool IsUsed(const Request& r, Use use);
uint64_t SlotBytes(const Request& r, const Slot& slot);

// The verdict on a call whose request passed, from its pointers: NULL
// pointers, alignment, overlap.
bnorm_status ModelPointers(const Request& r, Op op, void* const* ptrs);

// The verdict on a call whose pointers passed: the exchanged blocks' counts
// (read from the caller's memory: bnorm_merge_stats, bnorm_backward_
// elementwise), too few values (every dtype is implemented). bnorm.h
// fixes the order of the blocks' errors: every block's counts (and for the
// merge M2) first, BNORM_ERR_INVALID_ARGUMENT naming the block and channel;
// only then the totals, channel by channel.
struct Verdict {
  bnorm_status status = BNORM_OK;
  // Where an error in the exchanged blocks was found, for the message check:
  // kBlockValue: a block's count or M2, and bnorm_last_error() must name a
  // block and channel ("block B, channel C") whose value is bad (which one,
  // when several are, is the library's walk); kTotal: the total count of
  // `channel`, the first channel in order whose total fails, which the
  // message must name ("channel C").
  enum Where : uint8_t { kNowhere, kBlockValue, kTotal } where = kNowhere;
  int64_t channel = -1;
};
Verdict ModelValues(const Request& r, Op op, void* const* ptrs);

// The slot a split phase reads exchanged blocks from, or -1.
int PartialsSlot(Op op);

// Whether the exchanged value at block `block`, channel `channel` of a call
// of `op` (bnorm_merge_stats, bnorm_backward_elementwise) is one its block
// check rejects: a count that is not a whole number from 0 to 2^53, or (the
// merge) M2 < 0. Out-of-range indices are not bad.
bool IsBadBlockValue(const Request& r, Op op, const void* blocks, int64_t block, int64_t channel);

// A count as bnorm_merge_stats and bnorm_backward_elementwise accept it.
bool IsValidCount(double count);

// Whether two used, non-NULL arguments overlap, other than the in-place pairs.
bool AnyOverlap(const Request& r, Op op, void* const* ptrs);

}  // namespace bnorm_fuzz

#endif  // BNORM_TESTS_FUZZ_ORACLE_H_
