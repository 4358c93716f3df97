package bnorm

// #include <bnorm/bnorm.h>
import "C"

// HeaderVersion is BNORM_VERSION_NUMBER of the header this package was built
// against: MAJOR*10000 + MINOR*100 + PATCH.
const HeaderVersion = C.BNORM_VERSION_NUMBER

// LibraryVersion is the loaded library's version number, to compare with
// HeaderVersion.
func LibraryVersion() uint32 { return uint32(C.bnorm_version()) }

// Version is the loaded library's version string, e.g. "1.1.0".
func Version() string { return C.GoString(C.bnorm_version_string()) }

// ActiveTarget names the SIMD target the library's calls use, e.g. "AVX2".
func ActiveTarget() string { return C.GoString(C.bnorm_active_target()) }
