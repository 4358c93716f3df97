#include "bnorm/bnorm.h"

#define BNORM_STRINGIFY_(x) #x
#define BNORM_STRINGIFY(x) BNORM_STRINGIFY_(x)

extern "C" {

uint32_t bnorm_version(void) {
  return BNORM_VERSION_MAJOR * 10000 + BNORM_VERSION_MINOR * 100 + BNORM_VERSION_PATCH;
}

const char* bnorm_version_string(void) {
  return BNORM_STRINGIFY(BNORM_VERSION_MAJOR) "." BNORM_STRINGIFY(
      BNORM_VERSION_MINOR) "." BNORM_STRINGIFY(BNORM_VERSION_PATCH);
}

}  // extern "C"

static_assert(BNORM_VERSION_NUMBER ==
                  BNORM_VERSION_MAJOR * 10000 + BNORM_VERSION_MINOR * 100 + BNORM_VERSION_PATCH,
              "BNORM_VERSION_NUMBER must match the version parts");
