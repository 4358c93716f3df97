package bnorm_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"bnorm"
)

// Tolerances from the contract (spec/c-api.md, "Numbers it must hold") and
// the C test suite.
const (
	outputTolerance = 5e-5 // of the largest |y| or |dx| of the reference
	statsTolerance  = 1e-6 // relative, per-channel statistics
	sumTolerance    = 1e-6 // of the sum of the terms' magnitudes (dgamma, dbeta)
)

// randomShape has the given channel count where the layout keeps channels,
// a batch of 2 to 4 (so training has two values per channel) and spatial
// dims of 1 to 5.
func randomShape(rng *rand.Rand, layout bnorm.Layout, rank int, channels int64) bnorm.Shape {
	shape := make(bnorm.Shape, rank)
	for i := range shape {
		shape[i] = 1 + rng.Int63n(5)
	}
	shape[0] = 2 + rng.Int63n(3)
	if layout == bnorm.NHWC {
		shape[rank-1] = channels
	} else {
		shape[1] = channels
	}
	return shape
}

// Every rank and both layouts, with odd channel counts (so no SIMD width
// divides them), every flag combination, and each of the three calls.
func TestAgreesWithFloat64Reference(t *testing.T) {
	rng := rand.New(rand.NewSource(2024))
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		for _, channels := range []int64{1, 3, 17} {
			for rank := 2; rank <= 5; rank++ {
				desc := bnorm.NewDescriptor(channels)
				desc.Layout = layout
				desc.Eps = []float32{1e-5, 1e-3}[rng.Intn(2)]
				desc.Momentum = rng.Float32()
				shape := randomShape(rng, layout, rank, channels)
				seed := rng.Int63()
				t.Run(fmt.Sprintf("%v%v", layout, shape), func(t *testing.T) {
					for flags := bnorm.Flags(0); flags < 16; flags++ {
						desc.Flags = flags
						checkInference(t, desc, shape, seed)
						checkTraining(t, desc, shape, seed)
						checkBackward(t, desc, shape, seed)
					}
				})
			}
		}
	}
}

// gammaBeta leaves gamma and beta out (nil) unless the layer is affine, as a
// caller without them would.
func gammaBeta(b *batch) ([]float32, []float32) {
	if b.desc.Flags&bnorm.Affine == 0 {
		return nil, nil
	}
	return b.gamma, b.beta
}

func checkInference(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, seed int64) {
	t.Helper()
	b := newBatch(desc, shape, seed)
	b.gamma, b.beta = gammaBeta(b)
	if err := b.inference(); err != nil {
		t.Fatalf("%s: %v", flagsName(desc.Flags), err)
	}
	want := referenceInference(geometryOf(shape, desc.Layout), b.x, b.runningMean, b.runningVar,
		b.gamma, b.beta, float64(desc.Eps), desc.Flags&bnorm.FuseReLU != 0)
	expectNear(t, "inference "+flagsName(desc.Flags)+" y", b.y, want,
		within(outputTolerance*maxAbs(want)))
}

func checkTraining(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, seed int64) {
	t.Helper()
	b := newBatch(desc, shape, seed)
	b.gamma, b.beta = gammaBeta(b)
	track := desc.Flags&bnorm.TrackRunningStats != 0
	initialMean := append([]float32(nil), b.runningMean...)
	initialVar := append([]float32(nil), b.runningVar...)
	if !track {
		// Ignored without the flag, so they may be left out.
		b.runningMean, b.runningVar = nil, nil
	}
	if err := b.training(); err != nil {
		t.Fatalf("%s: %v", flagsName(desc.Flags), err)
	}
	g := geometryOf(shape, desc.Layout)
	want := referenceTraining(g, b.x, b.gamma, b.beta, initialMean, initialVar,
		float64(desc.Eps), float64(desc.Momentum), desc.Flags&bnorm.FuseReLU != 0)
	name := "training " + flagsName(desc.Flags) + " "
	expectNear(t, name+"y", b.y, want.y, within(outputTolerance*maxAbs(want.y)))
	// A mean's error scales with the channel's spread as well as its size.
	expectNear(t, name+"save_mean", b.saveMean, want.mean, func(c int) float64 {
		return statsTolerance * (math.Abs(want.mean[c]) + 1/want.invstd[c])
	})
	expectNear(t, name+"save_invstd", b.saveInvstd, want.invstd, func(c int) float64 {
		return statsTolerance * want.invstd[c]
	})
	if track {
		expectNear(t, name+"running_mean", b.runningMean, want.runningMean, func(c int) float64 {
			return statsTolerance * (math.Abs(want.runningMean[c]) + 1/want.invstd[c])
		})
		expectNear(t, name+"running_var", b.runningVar, want.runningVar, func(c int) float64 {
			return statsTolerance * want.runningVar[c]
		})
	}
}

func checkBackward(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, seed int64) {
	t.Helper()
	b := newBatch(desc, shape, seed)
	b.gamma, b.beta = gammaBeta(b)
	global := desc.Flags&bnorm.UseGlobalStats != 0
	// The forward pass that the backward pass differentiates, which gives y
	// (for FuseReLU) and the statistics.
	if global {
		for c := range b.saveMean {
			b.saveMean[c] = b.runningMean[c]
			b.saveInvstd[c] = float32(1 / math.Sqrt(float64(b.runningVar[c])+float64(desc.Eps)))
		}
		if err := b.inference(); err != nil {
			t.Fatal(err)
		}
	} else if err := b.training(); err != nil {
		t.Fatal(err)
	}
	if err := b.backward(); err != nil {
		t.Fatalf("%s: %v", flagsName(desc.Flags), err)
	}
	want := referenceBackward(geometryOf(shape, desc.Layout), b.x, b.dy, b.y, b.gamma,
		b.saveMean, b.saveInvstd, desc.Flags&bnorm.FuseReLU != 0, global)
	name := "backward " + flagsName(desc.Flags) + " "
	expectNear(t, name+"dx", b.dx, want.dx, within(outputTolerance*maxAbs(want.dx)))
	expectNear(t, name+"dgamma", b.dgamma, want.dgamma, func(c int) float64 {
		return sumTolerance * want.dgammaScale[c]
	})
	expectNear(t, name+"dbeta", b.dbeta, want.dbeta, func(c int) float64 {
		return sumTolerance * want.dbetaScale[c]
	})
}

// A channel whose mean is 1e4 times its standard deviation: a naive one-pass
// sum of squares would lose the variance, and a normalize pass that rounds
// the mean would lose the output (the contract's numbers).
func TestKeepsPrecisionWhenMeanDwarfsSpread(t *testing.T) {
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		desc := bnorm.NewDescriptor(3)
		desc.Layout = layout
		desc.Flags = 0
		shape := randomShape(rand.New(rand.NewSource(4)), layout, 4, 3)
		b := newBatch(desc, shape, 4)
		for i := range b.x {
			b.x[i] = 1e4 + b.dy[i] // dy is uniform in [-1, 1)
		}
		if err := b.training(); err != nil {
			t.Fatal(err)
		}
		want := referenceTraining(geometryOf(shape, layout), b.x, nil, nil, b.runningMean,
			b.runningVar, float64(desc.Eps), 0, false)
		expectNear(t, layout.String()+" y", b.y, want.y, within(outputTolerance*maxAbs(want.y)))
		expectNear(t, layout.String()+" save_invstd", b.saveInvstd, want.invstd,
			func(c int) float64 { return 1e-4 * want.invstd[c] })
	}
}

// Inference, and backward with frozen statistics, need no batch statistics,
// so one value per channel is fine for them.
func TestOneValuePerChannelWithoutBatchStatistics(t *testing.T) {
	desc := bnorm.NewDescriptor(5)
	desc.Flags |= bnorm.UseGlobalStats
	shape := bnorm.Shape{1, 5, 1, 1}
	b := newBatch(desc, shape, 8)
	if err := b.inference(); err != nil {
		t.Fatal(err)
	}
	g := geometryOf(shape, desc.Layout)
	want := referenceInference(g, b.x, b.runningMean, b.runningVar, b.gamma, b.beta,
		float64(desc.Eps), false)
	expectNear(t, "y", b.y, want, within(outputTolerance*maxAbs(want)))

	copy(b.saveMean, b.runningMean)
	for c, v := range b.runningVar {
		b.saveInvstd[c] = float32(1 / math.Sqrt(float64(v)+float64(desc.Eps)))
	}
	if err := b.backward(); err != nil {
		t.Fatal(err)
	}
	grads := referenceBackward(g, b.x, b.dy, b.y, b.gamma, b.saveMean, b.saveInvstd, false, true)
	expectNear(t, "dx", b.dx, grads.dx, within(outputTolerance*maxAbs(grads.dx)))
}
