#include "capi/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

namespace bnorm {
namespace {

// A fixed buffer: setting or clearing the message never allocates.
thread_local char last_error[512];

}  // namespace

bnorm_status Fail(bnorm_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(last_error, sizeof(last_error), format, args);
  va_end(args);
  return status;
}

bnorm_status Succeed() {
  last_error[0] = '\0';
  return BNORM_OK;
}

const char* LastError() { return last_error; }

}  // namespace bnorm

extern "C" {

const char* bnorm_last_error(void) { return bnorm::LastError(); }

const char* bnorm_status_string(bnorm_status status) {
  // Any int may arrive from C, and loading an enum outside its values is
  // undefined in C++: read the bits as an int.
  int32_t code;
  static_assert(sizeof(status) == sizeof(code), "C enums are int-sized on supported ABIs");
  memcpy(&code, &status, sizeof(code));
  switch (code) {
    case BNORM_OK:
      return "BNORM_OK: success";
    case BNORM_ERR_NULL_POINTER:
      return "BNORM_ERR_NULL_POINTER: a required pointer is NULL";
    case BNORM_ERR_INVALID_DESCRIPTOR:
      return "BNORM_ERR_INVALID_DESCRIPTOR: descriptor not initialised or num_features <= 0";
    case BNORM_ERR_INVALID_SHAPE:
      return "BNORM_ERR_INVALID_SHAPE: rank outside 2..5, a dimension <= 0, or too many elements";
    case BNORM_ERR_FEATURE_MISMATCH:
      return "BNORM_ERR_FEATURE_MISMATCH: the input's channel count differs from num_features";
    case BNORM_ERR_INVALID_ARGUMENT:
      return "BNORM_ERR_INVALID_ARGUMENT: an argument is out of range or misaligned";
    case BNORM_ERR_TOO_FEW_VALUES:
      return "BNORM_ERR_TOO_FEW_VALUES: training needs more than one value per channel";
    case BNORM_ERR_ALIASING:
      return "BNORM_ERR_ALIASING: an output overlaps an input or another output";
    case BNORM_ERR_UNSUPPORTED:
      return "BNORM_ERR_UNSUPPORTED: a valid request this build does not implement";
    case BNORM_ERR_OUT_OF_MEMORY:
      return "BNORM_ERR_OUT_OF_MEMORY: scratch memory could not be allocated";
    case BNORM_ERR_INTERNAL:
      return "BNORM_ERR_INTERNAL: an internal error (a bug in bnorm)";
  }
  return "BNORM_ERR_UNKNOWN: not a bnorm status code";
}

}  // extern "C"
