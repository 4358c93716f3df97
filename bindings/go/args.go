package bnorm

// #include <bnorm/bnorm.h>
import "C"

import "unsafe"

// arg is one slice argument, named as in bnorm.h.
type arg struct {
	name   string
	data   []float32
	tensor bool // shape's element count (FoldIntoLayer: the weights'), else num_features
}

// checkLengths returns a *LengthError for the first non-empty slice of the
// wrong length. It checks only when the library would accept the descriptor's
// num_features and layout, the shape, and the channel count: otherwise the
// library fails before reading any data, and its message (the feature mismatch
// above all) is the one the caller needs.
func checkLengths(op string, d *Descriptor, s Shape, args []arg) error {
	count, ok := s.elements()
	if !ok || d.NumFeatures <= 0 || (d.Layout != NCHW && d.Layout != NHWC) ||
		s.Channels(d.Layout) != d.NumFeatures {
		return nil
	}
	for _, a := range args {
		want, of := int(d.NumFeatures), "num_features"
		if a.tensor {
			want, of = count, "the element count of shape "+s.String()
		}
		if len(a.data) != 0 && len(a.data) != want {
			return &LengthError{Op: op, Arg: a.name, Got: len(a.data), Want: want, Of: of}
		}
	}
	return nil
}

// checkLayerLengths is checkLengths for the calls that take no shape (the
// folding calls): per-channel vectors against num_features and, when weights
// is non-zero, tensor arguments against that weight count. It checks only when
// the library would accept num_features.
func checkLayerLengths(op string, d *Descriptor, weights int, args []arg) error {
	if d.NumFeatures <= 0 {
		return nil
	}
	for _, a := range args {
		want, of := int(d.NumFeatures), "num_features"
		if a.tensor {
			if weights == 0 {
				continue // weights is NULL, which the library reports
			}
			want, of = weights, "the element count of weights"
		}
		if len(a.data) != 0 && len(a.data) != want {
			return &LengthError{Op: op, Arg: a.name, Got: len(a.data), Want: want, Of: of}
		}
	}
	return nil
}

// ptr is NULL for an empty slice, which is how optional arguments are omitted.
// Passing &s[0] for the duration of the call is allowed by cgo's pointer rules:
// float data holds no Go pointers, and C keeps none.
func ptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}
