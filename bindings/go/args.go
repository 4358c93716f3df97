package bnorm

// #include <bnorm/bnorm.h>
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// arg is one slice argument, named as in bnorm.h, by its length.
type arg struct {
	name   string
	length int
	tensor bool // shape's element count (FoldIntoLayer: the weights'), else num_features
}

// checkLengths returns a *LengthError for the first non-empty slice of the
// wrong length. It checks only when the library would accept the descriptor's
// num_features and layout, the shape (of elements of elementSize bytes), and
// the channel count: otherwise the library fails before reading any data, and
// its message (the feature mismatch above all) is the one the caller needs.
func checkLengths(op string, d *Descriptor, s Shape, elementSize int, args []arg) error {
	count, ok := checkable(d, s, elementSize)
	if !ok {
		return nil
	}
	for _, a := range args {
		want, of := int(d.NumFeatures), "num_features"
		if a.tensor {
			want, of = count, "the element count of shape "+s.String()
		}
		if a.length != 0 && a.length != want {
			return &LengthError{Op: op, Arg: a.name, Got: a.length, Want: want, Of: of}
		}
	}
	return nil
}

// checkable reports whether the library would accept the descriptor's
// num_features and layout, the shape of elements of elementSize bytes, and
// the channel count, and gives the shape's element count.
func checkable(d *Descriptor, s Shape, elementSize int) (count int, ok bool) {
	count, ok = s.elements(elementSize)
	if !ok || d.NumFeatures <= 0 || (d.Layout != NCHW && d.Layout != NHWC) ||
		s.Channels(d.Layout) != d.NumFeatures {
		return 0, false
	}
	return count, true
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
		if a.length != 0 && a.length != want {
			return &LengthError{Op: op, Arg: a.name, Got: a.length, Want: want, Of: of}
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

// tensor is ptr for a tensor of any Element type, which the C API takes as
// void* in the descriptor's dtype.
func tensor[T Element](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

// ptr64 is ptr for the split phases' float64 arrays.
func ptr64(s []float64) *C.double {
	if len(s) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&s[0]))
}

// blocksArg is one of the split phases' float64 arrays: blocks of
// SplitValuesPerChannel * num_features values.
type blocksArg struct {
	name string
	data []float64
	any  bool // any whole number of blocks (num_partials of them), else exactly one
}

// ofBlock is what a block's length counts, for LengthError.Of.
var ofBlock = fmt.Sprintf("%d * num_features", SplitValuesPerChannel)

// blockLength is the length of one block, SplitValuesPerChannel values per
// channel, when num_partials blocks of it can be addressed (the library
// checks that their byte count fits in an int64, and reports it otherwise)
// and an int holds it.
func blockLength(d *Descriptor) (int, bool) {
	const most = math.MaxInt64 / 8 / SplitValuesPerChannel // doubles the library can address
	if d.NumFeatures <= 0 || d.NumFeatures > most || d.NumFeatures > math.MaxInt/SplitValuesPerChannel {
		return 0, false
	}
	return int(d.NumFeatures) * SplitValuesPerChannel, true
}

// checkBlocks returns a *LengthError for the first non-empty array that is not
// one block (or, for any, a whole number of blocks). Call it only where
// checkLengths or checkLayerLengths would check.
func checkBlocks(op string, d *Descriptor, args []blocksArg) error {
	per, ok := blockLength(d)
	if !ok {
		return nil
	}
	for _, a := range args {
		switch n := len(a.data); {
		case n == 0:
		case a.any && n%per != 0:
			return &LengthError{Op: op, Arg: a.name, Got: n, Want: per, Of: ofBlock, Multiple: true}
		case !a.any && n != per:
			return &LengthError{Op: op, Arg: a.name, Got: n, Want: per, Of: ofBlock}
		}
	}
	return nil
}

// numPartials is the num_partials of an array of length values that
// checkBlocks accepted (whole blocks): its block count, or 1 when it is empty
// (NULL), so that the library reports the NULL if the array is needed. More
// blocks than an int32 counts is a *LengthError.
func numPartials(op, name string, d *Descriptor, length int) (C.int32_t, error) {
	per, ok := blockLength(d)
	if !ok || length == 0 {
		return 1, nil
	}
	if length/per > math.MaxInt32 {
		return 0, &LengthError{Op: op, Arg: name, Got: length, Want: math.MaxInt32 * per,
			Of: fmt.Sprintf("at most %d blocks (an int32 num_partials) of %s", math.MaxInt32,
				ofBlock)}
	}
	return C.int32_t(length / per), nil
}
