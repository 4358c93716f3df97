/* Compiled as C: a C caller may pass any int as a bnorm_status, which C++ code
 * cannot do without undefined behaviour. */
#include <stdint.h>

#include "bnorm/bnorm.h"

const char* bnorm_fuzz_status_string(int32_t value) {
  return bnorm_status_string((bnorm_status)value);
}
