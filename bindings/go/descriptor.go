package bnorm

// #cgo pkg-config: bnorm
// #include <bnorm/bnorm.h>
import "C"

import "fmt"

// Layout is the memory order of a tensor's dimensions.
type Layout int32

const (
	// NCHW is channels first: (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W).
	NCHW Layout = C.BNORM_LAYOUT_NCHW
	// NHWC is channels last: (N, C), (N, L, C), (N, H, W, C), (N, D, H, W, C).
	NHWC Layout = C.BNORM_LAYOUT_NHWC
)

func (l Layout) String() string {
	switch l {
	case NCHW:
		return "NCHW"
	case NHWC:
		return "NHWC"
	}
	return fmt.Sprintf("Layout(%d)", int32(l))
}

// Flags select a layer's behaviour; see the BNORM_FLAG_* macros.
type Flags uint32

const (
	// Affine applies gamma (scale) and beta (shift).
	Affine Flags = C.BNORM_FLAG_AFFINE
	// TrackRunningStats makes ForwardTraining update the running statistics.
	TrackRunningStats Flags = C.BNORM_FLAG_TRACK_RUNNING_STATS
	// FuseReLU applies max(y, 0) in forward; Backward then needs the forward y.
	FuseReLU Flags = C.BNORM_FLAG_FUSE_RELU
	// UseGlobalStats makes Backward treat mean and invstd as constants.
	UseGlobalStats Flags = C.BNORM_FLAG_USE_GLOBAL_STATS
)

// Descriptor is a batch-norm layer's fixed configuration (bnorm_desc without
// struct_size and dtype, which the binding sets: the dtype is that of the
// call's tensor slices). Start from NewDescriptor and change fields as needed.
type Descriptor struct {
	NumFeatures int64   // C, the layer's channel count
	Eps         float32 // > 0 and finite
	Momentum    float32 // in [0, 1]; running = (1-m)*running + m*batch
	Flags       Flags
	Layout      Layout
	NumThreads  int32 // 0: OpenMP's default; n > 0: at most n threads

	// forcedDtype, when not 0, replaces the dtype of the call's tensors: only
	// the package's tests set it, to reach the library's answer to a dtype
	// no Element type has.
	forcedDtype int32
}

// NewDescriptor returns the library's defaults (bnorm_desc_init) for a layer
// of numFeatures channels. A numFeatures <= 0 is kept as given, so that, as in
// C, every call with this descriptor fails with ErrInvalidDescriptor and the
// library's message.
func NewDescriptor(numFeatures int64) Descriptor {
	var d C.bnorm_desc
	// The only failure is numFeatures <= 0, after which d is still fully
	// initialised: the calls report it.
	C.bnorm_desc_init(&d, C.int64_t(numFeatures))
	return Descriptor{
		NumFeatures: int64(d.num_features),
		Eps:         float32(d.eps),
		Momentum:    float32(d.momentum),
		Flags:       Flags(d.flags),
		Layout:      Layout(d.layout),
		NumThreads:  int32(d.num_threads),
	}
}

// c is the descriptor as the library reads it, compiled against this header,
// for tensors of the given dtype.
func (d *Descriptor) c(dtype C.bnorm_dtype) C.bnorm_desc {
	if d.forcedDtype != 0 {
		dtype = C.bnorm_dtype(d.forcedDtype)
	}
	return C.bnorm_desc{
		struct_size:  C.uint32_t(C.sizeof_bnorm_desc),
		num_features: C.int64_t(d.NumFeatures),
		eps:          C.float(d.Eps),
		momentum:     C.float(d.Momentum),
		flags:        C.uint32_t(d.Flags),
		layout:       C.bnorm_layout(d.Layout),
		dtype:        dtype,
		num_threads:  C.int32_t(d.NumThreads),
	}
}
