package bnorm

// #include <bnorm/bnorm.h>
import "C"

import (
	"fmt"
	"math"
)

// maxRank is the largest rank the library accepts (bnorm_shape.dims has 5).
const maxRank = 5

// Shape is a tensor's dims in memory order (see Layout); rank 2 to 5.
type Shape []int64

// Channels is the channel dimension for the layout: s[1] for NCHW, the last
// dim for NHWC, or 0 if s has no such dimension. Building a Descriptor from it
// keeps the layer and the data in agreement by construction.
func (s Shape) Channels(layout Layout) int64 {
	dim := s.channelDim(layout)
	if dim < 0 || dim >= len(s) {
		return 0
	}
	return s[dim]
}

// Elements is the tensor's element count, or 0 for a shape the library
// rejects (rank outside 2..5, a dim <= 0, or a float32 byte count that
// overflows an int64).
func (s Shape) Elements() int {
	n, ok := s.elements(4)
	if !ok {
		return 0
	}
	return n
}

func (s Shape) String() string { return fmt.Sprint([]int64(s)) }

func (s Shape) channelDim(layout Layout) int {
	if layout == NHWC {
		return len(s) - 1
	}
	return 1
}

// elements mirrors the library's shape check for elements of elementSize
// bytes: ok is false exactly when bnorm would answer BNORM_ERR_INVALID_SHAPE.
func (s Shape) elements(elementSize int) (int, bool) {
	if len(s) < 2 || len(s) > maxRank {
		return 0, false
	}
	maxCount := math.MaxInt64 / int64(elementSize) // the byte count must fit in an int64
	count := int64(1)
	for _, d := range s {
		if d <= 0 || count > maxCount/d {
			return 0, false
		}
		count *= d
	}
	if count > math.MaxInt {
		return 0, false
	}
	return int(count), true
}

// c passes the dims as given; a rank the library rejects keeps its value so
// the library's message names it.
func (s Shape) c() C.bnorm_shape {
	var cs C.bnorm_shape
	cs.rank = C.int32_t(len(s))
	if len(s) > math.MaxInt32 {
		cs.rank = math.MaxInt32
	}
	for i := 0; i < len(s) && i < maxRank; i++ {
		cs.dims[i] = C.int64_t(s[i])
	}
	return cs
}
