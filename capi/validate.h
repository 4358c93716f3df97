// Argument validation for every entry point, in the contract's order of
// precedence. Nothing here writes to a caller's buffer.
#ifndef BNORM_CAPI_VALIDATE_H_
#define BNORM_CAPI_VALIDATE_H_

#include <stddef.h>
#include <stdint.h>

#include "bnorm/bnorm.h"
#include "src/problem.h"

namespace bnorm {

// A layer and an input shape checked against each other.
struct Request {
  bnorm_desc desc;  // the caller's, completed with defaults past its struct_size
  Problem problem;
  size_t element_size;  // bytes per tensor element
};

// desc or shape NULL; descriptor; descriptor fields; shape; channel mismatch.
bnorm_status ValidateRequest(const bnorm_desc* desc, const bnorm_shape* shape, PlanKind kind,
                             Request* request);

// A pointer argument of an entry point.
struct DataArg {
  const char* name;
  const void* ptr;
  bool tensor;  // the shape's element count in the dtype; else float[num_features]
  bool output;
  // Why the pointer is needed: "" always, a flag's name when only that flag
  // needs it, nullptr when it is optional.
  const char* required_by;
  // An output may be exactly one of these inputs (in place), named and
  // separated by commas ("x,residual"); nullptr: none.
  const char* in_place_of = nullptr;
  // A float array of this many elements, neither a tensor nor per-channel.
  int64_t floats = 0;
  // A double array of this many elements (aligned to 8 bytes) instead.
  int64_t doubles = 0;
};

// desc NULL; descriptor; descriptor fields: for the calls that take no
// tensor (the per-channel arrays have num_features floats).
bnorm_status ValidateLayer(const bnorm_desc* desc, Request* request);

// Required pointers NULL; misalignment; overlap (an output may be exactly
// the input its in_place_of names).
bnorm_status ValidateData(const Request& request, const DataArg* args, size_t num_args);
template <size_t N>
bnorm_status ValidateData(const Request& request, const DataArg (&args)[N]) {
  return ValidateData(request, args, N);
}

// Training statistics need more than one value per channel.
bnorm_status ValidateEnoughValues(const Request& request, const bnorm_shape* shape,
                                  const char* what);

// Doubles in one block of the split phases' exchanged arrays, 3 per channel,
// saturated: a num_features near 2^62 must not wrap (no such buffer exists).
int64_t SplitBlockDoubles(const Request& request);

// The split phases' exchanged arrays: num_partials blocks of
// 3 * num_features doubles, num_partials >= 1.
bnorm_status ValidatePartialCount(const Request& request, int32_t num_partials, const char* name,
                                  int64_t* doubles);

// Merge input: every block's counts whole and in [0, 2^53] and M2 >= 0 (or
// NaN, from NaN data); then, channel by channel, a total count > 1.
bnorm_status ValidatePartialStats(const Request& request, int32_t num_partials,
                                  const double* partial_stats);

// Backward elementwise input: every block's counts whole and in [0, 2^53];
// then, channel by channel, a total of at least the tensor's values per
// channel, and > 1.
bnorm_status ValidateGradSums(const Request& request, const bnorm_shape* shape,
                              int32_t num_partials, const double* grad_sums);

}  // namespace bnorm

#endif  // BNORM_CAPI_VALIDATE_H_
