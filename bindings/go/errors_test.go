package bnorm_test

import (
	"math"
	"testing"

	"bnorm"
)

var allSentinels = []bnorm.Status{
	bnorm.ErrNullPointer, bnorm.ErrInvalidDescriptor, bnorm.ErrInvalidShape,
	bnorm.ErrFeatureMismatch, bnorm.ErrInvalidArgument, bnorm.ErrTooFewValues,
	bnorm.ErrAliasing, bnorm.ErrUnsupported, bnorm.ErrOutOfMemory, bnorm.ErrInternal,
}

// errorCase breaks one thing in a valid 2x3x4 NCHW batch of a 3-channel
// layer with the library's default flags (Affine | TrackRunningStats).
type errorCase struct {
	name    string
	breakIt func(b *batch)
	call    func(b *batch) error
	want    bnorm.Status
	message string // bnorm_last_error(), exactly
}

var errorCases = []errorCase{
	{"x nil", func(b *batch) { b.x = nil }, (*batch).inference,
		bnorm.ErrNullPointer, "x is NULL"},
	{"empty slice is NULL", func(b *batch) { b.runningMean = []float32{} }, (*batch).inference,
		bnorm.ErrNullPointer, "mean is NULL"},
	{"gamma nil with Affine", func(b *batch) { b.gamma = nil }, (*batch).inference,
		bnorm.ErrNullPointer, "gamma is NULL but BNORM_FLAG_AFFINE is set"},
	{"running_var nil with TrackRunningStats", func(b *batch) { b.runningVar = nil },
		(*batch).training,
		bnorm.ErrNullPointer, "running_var is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"},
	{"y nil with FuseReLU", func(b *batch) { b.desc.Flags |= bnorm.FuseReLU; b.y = nil },
		(*batch).backward,
		bnorm.ErrNullPointer, "y is NULL but BNORM_FLAG_FUSE_RELU is set"},
	{"save_invstd nil", func(b *batch) { b.saveInvstd = nil }, (*batch).backward,
		bnorm.ErrNullPointer, "save_invstd is NULL"},

	// bnorm_desc_init keeps a bad num_features, so the call reports it.
	{"NewDescriptor(0)", func(b *batch) { b.desc = bnorm.NewDescriptor(0) }, (*batch).inference,
		bnorm.ErrInvalidDescriptor, "num_features is 0; it must be > 0"},
	{"negative num_features", func(b *batch) { b.desc.NumFeatures = -3 }, (*batch).training,
		bnorm.ErrInvalidDescriptor, "num_features is -3; it must be > 0"},

	{"rank 1", func(b *batch) { b.shape = bnorm.Shape{6} }, (*batch).inference,
		bnorm.ErrInvalidShape, "rank is 1; it must be 2 to 5"},
	{"rank 6", func(b *batch) { b.shape = bnorm.Shape{2, 3, 4, 1, 1, 1} }, (*batch).training,
		bnorm.ErrInvalidShape, "rank is 6; it must be 2 to 5"},
	{"zero dim", func(b *batch) { b.shape = bnorm.Shape{2, 3, 0} }, (*batch).backward,
		bnorm.ErrInvalidShape, "dims[2] is 0; every dimension must be > 0"},
	{"element count overflows", func(b *batch) { b.shape = bnorm.Shape{1 << 40, 3, 1 << 40} },
		(*batch).inference,
		bnorm.ErrInvalidShape, "the element count of shape (1099511627776, 3, 1099511627776) overflows"},

	{"5 channels for a 3-channel layer", func(b *batch) { b.shape = bnorm.Shape{2, 5, 4} },
		(*batch).training,
		bnorm.ErrFeatureMismatch, "input channel dimension (dim 1) is 5 but num_features is 3"},
	{"NCHW tensor described as NHWC", func(b *batch) { b.desc.Layout = bnorm.NHWC },
		(*batch).inference, bnorm.ErrFeatureMismatch,
		"input channel dimension (dim 2) is 4 but num_features is 3; dim 1 is 3: " +
			"is the tensor channels-first? set layout to BNORM_LAYOUT_NCHW"},

	{"eps 0", func(b *batch) { b.desc.Eps = 0 }, (*batch).inference,
		bnorm.ErrInvalidArgument, "eps is 0; it must be finite and > 0"},
	{"eps NaN", func(b *batch) { b.desc.Eps = float32(math.NaN()) }, (*batch).training,
		bnorm.ErrInvalidArgument, "eps is nan; it must be finite and > 0"},
	{"eps +Inf", func(b *batch) { b.desc.Eps = float32(math.Inf(1)) }, (*batch).backward,
		bnorm.ErrInvalidArgument, "eps is inf; it must be finite and > 0"},
	{"momentum 1.5", func(b *batch) { b.desc.Momentum = 1.5 }, (*batch).training,
		bnorm.ErrInvalidArgument, "momentum is 1.5; it must be in [0, 1]"},
	{"momentum NaN", func(b *batch) { b.desc.Momentum = float32(math.NaN()) }, (*batch).training,
		bnorm.ErrInvalidArgument, "momentum is nan; it must be in [0, 1]"},
	{"unknown layout", func(b *batch) { b.desc.Layout = 2 }, (*batch).inference,
		bnorm.ErrInvalidArgument,
		"layout is 2; it must be BNORM_LAYOUT_NCHW (0) or BNORM_LAYOUT_NHWC (1)"},
	{"unknown flag bit", func(b *batch) { b.desc.Flags |= 1 << 4 }, (*batch).backward,
		bnorm.ErrInvalidArgument, "flags 0x13 has unknown bits 0x10"},
	{"negative num_threads", func(b *batch) { b.desc.NumThreads = -1 }, (*batch).inference,
		bnorm.ErrInvalidArgument, "num_threads is -1; it must be >= 0"},

	{"unknown dtype", func(b *batch) { b.desc = bnorm.WithDtype(b.desc, 7) }, (*batch).inference,
		bnorm.ErrInvalidArgument, "dtype is 7; it must be BNORM_DTYPE_F32 (0), " +
			"BNORM_DTYPE_BF16 (1) or BNORM_DTYPE_F16 (2)"},

	{"training on one value per channel", func(b *batch) { shrinkTo(b, bnorm.Shape{1, 3}) },
		(*batch).training, bnorm.ErrTooFewValues,
		"training needs more than 1 value per channel, got input of shape (1, 3)"},
	{"training-mode backward on one value per channel",
		func(b *batch) { shrinkTo(b, bnorm.Shape{1, 3, 1}) }, (*batch).backward,
		bnorm.ErrTooFewValues,
		"training-mode backward needs more than 1 value per channel, got input of shape (1, 3, 1)"},

	{"y one element past x", func(b *batch) {
		buf := make([]float32, len(b.x)+1)
		copy(buf, b.x)
		b.x, b.y = buf[:len(b.x)], buf[1:]
	}, (*batch).inference,
		bnorm.ErrAliasing, "y overlaps x (in place is allowed only with the same pointer)"},
	{"save_mean is running_mean", func(b *batch) { b.saveMean = b.runningMean },
		(*batch).training, bnorm.ErrAliasing, "running_mean overlaps save_mean"},
	{"dx is x", func(b *batch) { b.dx = b.x }, (*batch).backward,
		bnorm.ErrAliasing, "dx overlaps x"},
	{"dbeta is dgamma", func(b *batch) { b.dbeta = b.dgamma }, (*batch).backward,
		bnorm.ErrAliasing, "dgamma overlaps dbeta"},
}

// shrinkTo gives b a smaller valid shape, with tensors to match.
func shrinkTo(b *batch, shape bnorm.Shape) {
	b.shape = shape
	n := shape.Elements()
	b.x, b.y, b.dy, b.dx = b.x[:n], b.y[:n], b.dy[:n], b.dx[:n]
}

// Each status the library can return through a []float32 API, with its
// message, the matching sentinel only, and no output written.
func TestLibraryErrors(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 7)
			before, err := callBroken(b, c.breakIt, c.call)
			expectLibraryError(t, err, c.want, c.message)
			expectUnchanged(t, b, before)
		})
	}
}

// What a caller logs: the Go function, the status name, and the library's
// message naming the numbers.
func TestErrorText(t *testing.T) {
	b := newBatch(bnorm.NewDescriptor(128), bnorm.Shape{2, 64, 3}, 1)
	expectErrorText(t, b.training(), "bnorm: ForwardTraining: BNORM_ERR_FEATURE_MISMATCH: "+
		"input channel dimension (dim 1) is 64 but num_features is 128")
}

// The sentinels are the library's status codes, described by the library
// (bnorm_status_string). OUT_OF_MEMORY and INTERNAL cannot be provoked from
// here, so this is where those two are checked.
func TestSentinelsAreTheLibrarysStatuses(t *testing.T) {
	names := []string{
		"BNORM_ERR_NULL_POINTER", "BNORM_ERR_INVALID_DESCRIPTOR", "BNORM_ERR_INVALID_SHAPE",
		"BNORM_ERR_FEATURE_MISMATCH", "BNORM_ERR_INVALID_ARGUMENT", "BNORM_ERR_TOO_FEW_VALUES",
		"BNORM_ERR_ALIASING", "BNORM_ERR_UNSUPPORTED", "BNORM_ERR_OUT_OF_MEMORY",
		"BNORM_ERR_INTERNAL",
	}
	for i, s := range allSentinels {
		if int(s) != i+1 || s.Name() != names[i] {
			t.Errorf("sentinel %d is %d, %q; want %d, %q", i, int(s), s.Name(), i+1, names[i])
		}
		if len(s.Error()) <= len(s.Name())+2 {
			t.Errorf("%s has no description: %q", s.Name(), s.Error())
		}
	}
	if got := bnorm.ErrOutOfMemory.Error(); got !=
		"BNORM_ERR_OUT_OF_MEMORY: scratch memory could not be allocated" {
		t.Errorf("ErrOutOfMemory.Error() = %q", got)
	}
}
