// Status results with their per-thread message (bnorm_last_error).
#ifndef BNORM_CAPI_ERROR_H_
#define BNORM_CAPI_ERROR_H_

#include <exception>
#include <new>

#include "bnorm/bnorm.h"

namespace bnorm {

// Records a formatted message for this thread and returns `status`.
bnorm_status Fail(bnorm_status status, const char* format, ...)
    __attribute__((format(printf, 2, 3)));

// A successful call leaves "" as the last error.
bnorm_status Succeed();

const char* LastError();

// Runs body() (returning bnorm_status) so that no C++ exception crosses the C
// ABI: allocation failure becomes BNORM_ERR_OUT_OF_MEMORY, anything else
// BNORM_ERR_INTERNAL.
template <class Body>
bnorm_status GuardedCall(const Body& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(BNORM_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return Fail(BNORM_ERR_INTERNAL, "internal error: %s", e.what());
  } catch (...) {
    return Fail(BNORM_ERR_INTERNAL, "internal error: unknown exception");
  }
}

}  // namespace bnorm

#endif  // BNORM_CAPI_ERROR_H_
