// Shared by the cgo preambles of the package's files (each file's preamble is
// compiled on its own, so what several need lives here).
#ifndef GOBNORM_H_
#define GOBNORM_H_

#include <string.h>

#include <bnorm/bnorm.h>

// The oldest bnorm this package works with in full: the version that added the
// newest functions it wraps (1.2: the split phases and the residual add).
// Older headers lack them.
#define GOBNORM_REQUIRED_VERSION 10200
#if !defined(BNORM_VERSION_NUMBER) || BNORM_VERSION_NUMBER < GOBNORM_REQUIRED_VERSION
#error "the Go binding needs bnorm.h 1.2 or later: point PKG_CONFIG_PATH at a bnorm 1.2 install"
#endif

// A call's status with bnorm_last_error() copied on the thread that made the
// call: Go may run the next cgo call on another OS thread, whose thread-local
// message belongs to someone else. 512 bytes is the library's own buffer size.
typedef struct {
  bnorm_status status;
  char message[512];
} gobnorm_result;

static inline gobnorm_result gobnorm_finish(bnorm_status status) {
  gobnorm_result r;
  r.status = status;
  r.message[0] = '\0';
  if (status != BNORM_OK) {
    strncpy(r.message, bnorm_last_error(), sizeof(r.message) - 1);
    r.message[sizeof(r.message) - 1] = '\0';
  }
  return r;
}

#endif  // GOBNORM_H_
