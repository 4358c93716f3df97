package bnorm

/*
#include <stdlib.h>

#include "gobnorm.h"

static gobnorm_result gobnorm_set_max_target(const char* name) {
  return gobnorm_finish(bnorm_set_max_target(name));
}
*/
import "C"

import "unsafe"

// The SIMD target cap is process-wide: it changes the target of calls on
// every goroutine, and results are bit-identical only within one target. So
// the package keeps it unexported; its tests use it (export_test.go) to run
// every target in turn, while no other test runs.

// targets names the SIMD targets compiled in that this CPU can run, best
// first; the last is "SCALAR".
func targets() []string {
	names := make([]string, int(C.bnorm_target_count()))
	for i := range names {
		names[i] = C.GoString(C.bnorm_target_name(C.int32_t(i)))
	}
	return names
}

// setMaxTarget caps the target of every later call at name (one of targets());
// "" removes the cap.
func setMaxTarget(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return result("SetMaxTarget", C.gobnorm_set_max_target(cname))
}
