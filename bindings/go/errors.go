package bnorm

// #include <bnorm/bnorm.h>
import "C"

import (
	"errors"
	"fmt"
	"strings"
)

// Status is a bnorm_status other than BNORM_OK. Each value is also an error,
// so the constants below serve as sentinels for errors.Is.
type Status int32

// One sentinel per failing bnorm_status, with the same values.
const (
	ErrNullPointer       Status = C.BNORM_ERR_NULL_POINTER
	ErrInvalidDescriptor Status = C.BNORM_ERR_INVALID_DESCRIPTOR
	ErrInvalidShape      Status = C.BNORM_ERR_INVALID_SHAPE
	ErrFeatureMismatch   Status = C.BNORM_ERR_FEATURE_MISMATCH
	ErrInvalidArgument   Status = C.BNORM_ERR_INVALID_ARGUMENT
	ErrTooFewValues      Status = C.BNORM_ERR_TOO_FEW_VALUES
	ErrAliasing          Status = C.BNORM_ERR_ALIASING
	ErrUnsupported       Status = C.BNORM_ERR_UNSUPPORTED
	ErrOutOfMemory       Status = C.BNORM_ERR_OUT_OF_MEMORY
	ErrInternal          Status = C.BNORM_ERR_INTERNAL
)

// Error returns the library's bnorm_status_string, e.g.
// "BNORM_ERR_FEATURE_MISMATCH: the input's channel count differs from num_features".
func (s Status) Error() string {
	return C.GoString(C.bnorm_status_string(C.bnorm_status(s)))
}

// Name is the status's C name, e.g. "BNORM_ERR_FEATURE_MISMATCH".
func (s Status) Name() string {
	name, _, _ := strings.Cut(s.Error(), ":")
	return name
}

// Error is a failing library call: its status and the bnorm_last_error()
// message read on the thread that made the call.
type Error struct {
	Op      string // the Go function, e.g. "ForwardTraining"
	Status  Status
	Message string // e.g. "input channel dimension (dim 1) is 64 but num_features is 128"
}

func (e *Error) Error() string {
	return fmt.Sprintf("bnorm: %s: %s: %s", e.Op, e.Status.Name(), e.Message)
}

// Unwrap makes errors.Is(err, ErrFeatureMismatch) and the like work.
func (e *Error) Unwrap() error { return e.Status }

// ErrLength is matched (errors.Is) by every *LengthError.
var ErrLength = errors.New("bnorm: slice length does not match the shape or num_features")

// LengthError is a non-empty slice whose length is not what the call needs.
// It is detected in Go, before the library is called, because C cannot see a
// slice's length.
type LengthError struct {
	Op   string // the Go function, e.g. "ForwardTraining"
	Arg  string // the C parameter name, e.g. "running_mean"
	Got  int
	Want int
	Of   string // what Want counts: "the element count of shape [...]" or "num_features"
	// Multiple: the length must be a multiple of Want, not equal to it
	// (FoldIntoLayer's weights, NumFeatures rows).
	Multiple bool
}

func (e *LengthError) Error() string {
	if e.Multiple {
		return fmt.Sprintf("bnorm: %s: %s has %d elements, not a multiple of %s (%d)", e.Op,
			e.Arg, e.Got, e.Of, e.Want)
	}
	return fmt.Sprintf("bnorm: %s: %s has %d elements but %s is %d", e.Op, e.Arg, e.Got, e.Of, e.Want)
}

// Is reports ErrLength as a match.
func (e *LengthError) Is(target error) bool { return target == ErrLength }

// ErrLibraryVersion is matched (errors.Is) by every *VersionError.
var ErrLibraryVersion = errors.New("bnorm: the loaded library is older than the function called")

// VersionError is a call to a function that the loaded library is too old to
// have: the process loaded a libbnorm.so.1 older than the header this package
// was built against (see RequiredVersion). It is returned before the library
// is called, and nothing is written.
type VersionError struct {
	Op   string // the Go function, e.g. "MergeStats"
	Need uint32 // the version that added it, e.g. 10200
	Have uint32 // LibraryVersion()
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("bnorm: %s needs libbnorm %s or later, but the loaded library is %s",
		e.Op, versionText(e.Need), versionText(e.Have))
}

// Is reports ErrLibraryVersion as a match.
func (e *VersionError) Is(target error) bool { return target == ErrLibraryVersion }
