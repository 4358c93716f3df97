package bnorm_test

import (
	"errors"
	"testing"

	"bnorm"
)

// C cannot see a slice's length, so the binding checks every non-empty slice
// before calling: tensors against the shape, per-channel vectors against
// NumFeatures. The batch is 2x3x4 NCHW: 24 elements, 3 channels.
func TestLengthChecks(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(b *batch)
		call    func(b *batch) error
		want    bnorm.LengthError
	}{
		{"x short", func(b *batch) { b.x = b.x[:23] }, (*batch).inference,
			tensorLength("ForwardInference", "x", 23)},
		{"y long", func(b *batch) { b.y = make([]float32, 25) }, (*batch).inference,
			tensorLength("ForwardInference", "y", 25)},
		{"var short", func(b *batch) { b.runningVar = b.runningVar[:2] }, (*batch).inference,
			vectorLength("ForwardInference", "var", 2)},
		{"beta long", func(b *batch) { b.beta = make([]float32, 4) }, (*batch).inference,
			vectorLength("ForwardInference", "beta", 4)},
		{"running_mean long", func(b *batch) { b.runningMean = make([]float32, 4) },
			(*batch).training, vectorLength("ForwardTraining", "running_mean", 4)},
		{"save_invstd short", func(b *batch) { b.saveInvstd = b.saveInvstd[:1] },
			(*batch).training, vectorLength("ForwardTraining", "save_invstd", 1)},
		{"dy short", func(b *batch) { b.dy = b.dy[:12] }, (*batch).backward,
			tensorLength("Backward", "dy", 12)},
		// y is read only with FuseReLU, but a y that is passed must still fit.
		{"y short without FuseReLU", func(b *batch) { b.y = b.y[:1] }, (*batch).backward,
			tensorLength("Backward", "y", 1)},
		{"dx long", func(b *batch) { b.dx = make([]float32, 48) }, (*batch).backward,
			tensorLength("Backward", "dx", 48)},
		{"dgamma short", func(b *batch) { b.dgamma = b.dgamma[:2] }, (*batch).backward,
			vectorLength("Backward", "dgamma", 2)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 3)
			before, err := callBroken(b, c.breakIt, c.call)
			expectLengthError(t, err, c.want)
			expectUnchanged(t, b, before)
		})
	}
}

func TestLengthErrorText(t *testing.T) {
	b := newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 3)
	b.runningMean = b.runningMean[:2]
	expectErrorText(t, b.training(),
		"bnorm: ForwardTraining: running_mean has 2 elements but num_features is 3")
}

// The length checks come after everything the library checks first, so a
// tensor that does not fit the layer is reported as the library words it,
// not as a vector of the wrong length.
func TestLibraryChecksComeBeforeLengths(t *testing.T) {
	// The vectors were sized for the input's 64 channels, not the layer's 128.
	b := newBatch(bnorm.NewDescriptor(64), bnorm.Shape{2, 64, 3}, 5)
	b.desc = bnorm.NewDescriptor(128)
	err := b.training()
	if !errors.Is(err, bnorm.ErrFeatureMismatch) {
		t.Errorf("got %v, want the library's ErrFeatureMismatch", err)
	}

	b = newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 5)
	b.shape = bnorm.Shape{2, 3, 4, 5, 6, 7}
	if err := b.inference(); !errors.Is(err, bnorm.ErrInvalidShape) {
		t.Errorf("got %v, want the library's ErrInvalidShape", err)
	}
}

// tensorLength is the length error for a tensor of the 2x3x4 test shape
// (24 elements) that has got elements.
func tensorLength(op, arg string, got int) bnorm.LengthError {
	return bnorm.LengthError{Op: op, Arg: arg, Got: got, Want: 24,
		Of: "the element count of shape [2 3 4]"}
}

// vectorLength is the length error for a per-channel vector of a 3-channel
// layer that has got elements.
func vectorLength(op, arg string, got int) bnorm.LengthError {
	return bnorm.LengthError{Op: op, Arg: arg, Got: got, Want: 3, Of: "num_features"}
}
