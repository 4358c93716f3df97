package bnorm_test

import (
	"testing"

	"bnorm"
)

// In place means passing the same slice twice, which the C API allows for
// y == x and dx == dy; the results are the same bits as out of place.
func TestInPlace(t *testing.T) {
	desc := bnorm.NewDescriptor(17)
	desc.Layout = bnorm.NHWC
	desc.Flags |= bnorm.FuseReLU
	shape := bnorm.Shape{3, 4, 5, 17}

	t.Run("ForwardInference y == x", func(t *testing.T) {
		out, in := newBatch(desc, shape, 11), newBatch(desc, shape, 11)
		runOutOfAndInPlace(t, out, in, (*batch).inference, func(b *batch) { b.y = b.x })
		if !equalBits(in.x, out.y) {
			t.Error("in-place y differs from out-of-place y")
		}
	})

	t.Run("ForwardTraining y == x", func(t *testing.T) {
		out, in := newBatch(desc, shape, 12), newBatch(desc, shape, 12)
		runOutOfAndInPlace(t, out, in, (*batch).training, func(b *batch) { b.y = b.x })
		if !equalBits(in.x, out.y) || !equalBits(in.runningVar, out.runningVar) ||
			!equalBits(in.saveInvstd, out.saveInvstd) {
			t.Error("in-place training differs from out of place")
		}
	})

	t.Run("Backward dx == dy", func(t *testing.T) {
		out, in := newBatch(desc, shape, 13), newBatch(desc, shape, 13)
		for _, b := range []*batch{out, in} {
			if err := b.training(); err != nil {
				t.Fatal(err)
			}
		}
		runOutOfAndInPlace(t, out, in, (*batch).backward, func(b *batch) { b.dx = b.dy })
		if !equalBits(in.dy, out.dx) || !equalBits(in.dgamma, out.dgamma) {
			t.Error("in-place backward differs from out of place")
		}
	})
}

// runOutOfAndInPlace makes the call with out as it is, then with in after
// inPlace passes one of its slices twice.
func runOutOfAndInPlace(t *testing.T, out, in *batch, call func(*batch) error,
	inPlace func(*batch)) {
	t.Helper()
	if err := call(out); err != nil {
		t.Fatal(err)
	}
	inPlace(in)
	if err := call(in); err != nil {
		t.Fatal(err)
	}
}

// nil leaves out an optional output without changing the others.
func TestOptionalOutputsMayBeNil(t *testing.T) {
	desc := bnorm.NewDescriptor(3)
	shape := bnorm.Shape{4, 3, 2, 5}
	full := newBatch(desc, shape, 21)
	if err := full.training(); err != nil {
		t.Fatal(err)
	}
	if err := full.backward(); err != nil {
		t.Fatal(err)
	}

	noSave := newBatch(desc, shape, 21)
	noSave.saveMean, noSave.saveInvstd = nil, nil
	if err := noSave.training(); err != nil {
		t.Fatal(err)
	}
	if !equalBits(noSave.y, full.y) || !equalBits(noSave.runningMean, full.runningMean) {
		t.Error("leaving out save_mean and save_invstd changed the training results")
	}

	for _, keep := range []string{"dx", "dgamma", "dbeta"} {
		b := newBatch(desc, shape, 21)
		b.y, b.saveMean, b.saveInvstd = full.y, full.saveMean, full.saveInvstd
		outputs := map[string]*[]float32{"dx": &b.dx, "dgamma": &b.dgamma, "dbeta": &b.dbeta}
		want := map[string][]float32{"dx": full.dx, "dgamma": full.dgamma, "dbeta": full.dbeta}
		for name, out := range outputs {
			if name != keep {
				*out = nil
			}
		}
		if err := b.backward(); err != nil {
			t.Fatalf("only %s: %v", keep, err)
		}
		if !equalBits(*outputs[keep], want[keep]) {
			t.Errorf("%s alone differs from %s computed with the others", keep, keep)
		}
	}
}
