package bnorm

// #include "gobnorm.h"
import "C"

import (
	"fmt"
	"sync/atomic"
)

// HeaderVersion is BNORM_VERSION_NUMBER of the header this package was built
// against: MAJOR*10000 + MINOR*100 + PATCH.
const HeaderVersion = C.BNORM_VERSION_NUMBER

// RequiredVersion is the oldest bnorm version (MAJOR*10000 + MINOR*100 +
// PATCH) that has every function this package wraps: 1.2, which added the
// split phases and the residual add. The package does not build against an
// older header. A program may still load an older libbnorm.so.1 at run time;
// the functions it lacks then return a *VersionError instead of calling into
// it.
const RequiredVersion = C.GOBNORM_REQUIRED_VERSION

// The versions that added functions to the 1.0 API.
const (
	version11 = 10100 // FoldScaleShift, ForwardScaleShift, FoldIntoLayer
	// LocalStats, MergeStats, ForwardNormalize, BackwardReduce and
	// BackwardElementwise; ForwardInferenceResidual, ForwardTrainingResidual
	// and BackwardResidual.
	version12 = 10200
)

// LibraryVersion is the loaded library's version number, to compare with
// HeaderVersion.
func LibraryVersion() uint32 { return uint32(C.bnorm_version()) }

// Version is the loaded library's version string, e.g. "1.4.0".
func Version() string { return C.GoString(C.bnorm_version_string()) }

// ActiveTarget names the SIMD target the library's calls use, e.g. "AVX2".
func ActiveTarget() string { return C.GoString(C.bnorm_active_target()) }

// loadedVersion is LibraryVersion(), read once: the loaded library does not
// change while the process runs. (The tests set it to reach VersionError.)
var loadedVersion atomic.Uint32

func init() { loadedVersion.Store(LibraryVersion()) }

// needs returns a *VersionError if the loaded library is older than since,
// the version that added op's C function: calling a symbol the library does
// not export would end the process ("symbol lookup error").
func needs(op string, since uint32) error {
	if have := loadedVersion.Load(); have < since {
		return &VersionError{Op: op, Need: since, Have: have}
	}
	return nil
}

// versionText writes a version number as "1.4.0".
func versionText(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}
