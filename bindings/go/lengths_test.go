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
	const ofShape = "the element count of shape [2 3 4]"
	cases := []struct {
		name    string
		breakIt func(b *batch)
		call    func(b *batch) error
		want    bnorm.LengthError
	}{
		{"x short", func(b *batch) { b.x = b.x[:23] }, (*batch).inference,
			bnorm.LengthError{Op: "ForwardInference", Arg: "x", Got: 23, Want: 24, Of: ofShape}},
		{"y long", func(b *batch) { b.y = make([]float32, 25) }, (*batch).inference,
			bnorm.LengthError{Op: "ForwardInference", Arg: "y", Got: 25, Want: 24, Of: ofShape}},
		{"var short", func(b *batch) { b.runningVar = b.runningVar[:2] }, (*batch).inference,
			bnorm.LengthError{Op: "ForwardInference", Arg: "var", Got: 2, Want: 3,
				Of: "num_features"}},
		{"beta long", func(b *batch) { b.beta = make([]float32, 4) }, (*batch).inference,
			bnorm.LengthError{Op: "ForwardInference", Arg: "beta", Got: 4, Want: 3,
				Of: "num_features"}},
		{"running_mean long", func(b *batch) { b.runningMean = make([]float32, 4) },
			(*batch).training,
			bnorm.LengthError{Op: "ForwardTraining", Arg: "running_mean", Got: 4, Want: 3,
				Of: "num_features"}},
		{"save_invstd short", func(b *batch) { b.saveInvstd = b.saveInvstd[:1] },
			(*batch).training,
			bnorm.LengthError{Op: "ForwardTraining", Arg: "save_invstd", Got: 1, Want: 3,
				Of: "num_features"}},
		{"dy short", func(b *batch) { b.dy = b.dy[:12] }, (*batch).backward,
			bnorm.LengthError{Op: "Backward", Arg: "dy", Got: 12, Want: 24, Of: ofShape}},
		// y is read only with FuseReLU, but a y that is passed must still fit.
		{"y short without FuseReLU", func(b *batch) { b.y = b.y[:1] }, (*batch).backward,
			bnorm.LengthError{Op: "Backward", Arg: "y", Got: 1, Want: 24, Of: ofShape}},
		{"dx long", func(b *batch) { b.dx = make([]float32, 48) }, (*batch).backward,
			bnorm.LengthError{Op: "Backward", Arg: "dx", Got: 48, Want: 24, Of: ofShape}},
		{"dgamma short", func(b *batch) { b.dgamma = b.dgamma[:2] }, (*batch).backward,
			bnorm.LengthError{Op: "Backward", Arg: "dgamma", Got: 2, Want: 3,
				Of: "num_features"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 3)
			c.breakIt(b)
			before := b.snapshot()
			err := c.call(b)

			var e *bnorm.LengthError
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want a *bnorm.LengthError", err)
			}
			if *e != c.want {
				t.Errorf("got  %+v\nwant %+v", *e, c.want)
			}
			if !errors.Is(err, bnorm.ErrLength) {
				t.Error("errors.Is(err, bnorm.ErrLength) is false")
			}
			var libraryError *bnorm.Error
			if errors.As(err, &libraryError) {
				t.Errorf("a length error is also a library error: %v", libraryError)
			}
			b.expectUnchanged(t, before)
		})
	}
}

func TestLengthErrorText(t *testing.T) {
	b := newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 3)
	b.runningMean = b.runningMean[:2]
	want := "bnorm: ForwardTraining: running_mean has 2 elements but num_features is 3"
	if got := b.training().Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
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
