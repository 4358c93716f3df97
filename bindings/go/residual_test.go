package bnorm_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"bnorm"
)

// The residual add (bnorm 1.2): y = bn(x) + residual, then ReLU with
// FuseReLU, and its backward, which gives dx and d_residual.

// resBatch is a batch with the residual's two tensors: residual, the skip
// connection's input, and dResidual, its gradient.
type resBatch struct {
	*batch
	residual, dResidual []float32
}

func newResBatch(desc bnorm.Descriptor, shape bnorm.Shape, seed int64) *resBatch {
	b := newBatch(desc, shape, seed)
	rng := rand.New(rand.NewSource(seed ^ 0x2e51d))
	r := &resBatch{batch: b, residual: make([]float32, len(b.x)),
		dResidual: make([]float32, len(b.x))}
	// About as large as bn(x), so that the sum's sign, and the ReLU, go
	// either way.
	for i := range r.residual {
		r.residual[i] = float32(3*rng.Float64() - 1.5)
	}
	return r
}

func (r *resBatch) inferenceResidual() error {
	return bnorm.ForwardInferenceResidual(r.desc, r.shape, r.x, r.residual, r.y, r.runningMean,
		r.runningVar, r.gamma, r.beta)
}

func (r *resBatch) trainingResidual() error {
	return bnorm.ForwardTrainingResidual(r.desc, r.shape, r.x, r.residual, r.y, r.gamma, r.beta,
		r.runningMean, r.runningVar, r.saveMean, r.saveInvstd)
}

func (r *resBatch) backwardResidual() error {
	return bnorm.BackwardResidual(r.desc, r.shape, r.x, r.dy, r.y, r.gamma, r.saveMean,
		r.saveInvstd, r.dx, r.dResidual, r.dgamma, r.dbeta)
}

func (r *resBatch) buffers() [][]float32 {
	return append(r.batch.buffers(), r.residual, r.dResidual)
}

// withResidual extends a float64 reference of bn(x), computed without the
// ReLU, with the residual: bn(x) + residual, then ReLU if fused.
func withResidual(bn []float64, residual []float32, fuseReLU bool) []float64 {
	y := make([]float64, len(bn))
	for i := range bn {
		y[i] = relu(bn[i]+float64(residual[i]), fuseReLU)
	}
	return y
}

// addThenReLU is what a caller without the fused call does after the call
// without a residual (and without FuseReLU): the add in float32, then the
// ReLU.
func addThenReLU(bn, residual []float32, fuseReLU bool) []float64 {
	y := make([]float64, len(bn))
	for i := range bn {
		y[i] = relu(float64(bn[i]+residual[i]), fuseReLU)
	}
	return y
}

// toFloatRounding is the tolerance between the fused call and the call
// without a residual followed by the add: the fused call may round bn(x) and
// the sum differently, a few float32 ulps of the terms.
func toFloatRounding(bn, residual []float32) func(int) float64 {
	return func(i int) float64 {
		return 4 * 0x1p-24 * (math.Abs(float64(bn[i])) + math.Abs(float64(residual[i])))
	}
}

// maskedByReLU is the residual's gradient by definition: dy, zeroed where the
// forward output y <= 0 with FuseReLU (NaN passes).
func maskedByReLU(dy, y []float32, fuseReLU bool) []float32 {
	g := append([]float32(nil), dy...)
	if fuseReLU {
		for i := range g {
			if y[i] <= 0 {
				g[i] = 0
			}
		}
	}
	return g
}

// residualShapes is, for each rank, a random shape and one of spatial size 1
// (rank 2 has no spatial dims), with the given channel count.
func residualShapes(rng *rand.Rand, layout bnorm.Layout, channels int64) []bnorm.Shape {
	var shapes []bnorm.Shape
	for rank := 2; rank <= 5; rank++ {
		shapes = append(shapes, randomShape(rng, layout, rank, channels))
		if rank == 2 {
			continue
		}
		spatial1 := make(bnorm.Shape, rank)
		for i := range spatial1 {
			spatial1[i] = 1
		}
		spatial1[0] = 2 + rng.Int63n(4)
		if layout == bnorm.NHWC {
			spatial1[rank-1] = channels
		} else {
			spatial1[1] = channels
		}
		shapes = append(shapes, spatial1)
	}
	return shapes
}

// Every rank, with and without spatial size 1, both layouts, odd channel
// counts, every flag combination: each residual call against the float64
// reference extended with the residual, and against the binding's calls
// without a residual.
func TestResidualAgreesWithReferenceAndPlainCalls(t *testing.T) {
	rng := rand.New(rand.NewSource(1203))
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		for _, channels := range []int64{1, 3, 17, 67} {
			for _, shape := range residualShapes(rng, layout, channels) {
				desc := bnorm.NewDescriptor(channels)
				desc.Layout = layout
				desc.Eps = []float32{1e-5, 1e-3}[rng.Intn(2)]
				desc.Momentum = rng.Float32()
				seed := rng.Int63()
				t.Run(fmt.Sprintf("%v%v", layout, shape), func(t *testing.T) {
					for flags := bnorm.Flags(0); flags < 16; flags++ {
						desc.Flags = flags
						checkInferenceResidual(t, desc, shape, seed)
						checkTrainingResidual(t, desc, shape, seed)
						checkBackwardResidual(t, desc, shape, seed)
					}
				})
			}
		}
	}
}

// withoutReLU is d without FuseReLU: the call before the add.
func withoutReLU(d bnorm.Descriptor) bnorm.Descriptor {
	d.Flags &^= bnorm.FuseReLU
	return d
}

func checkInferenceResidual(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, seed int64) {
	t.Helper()
	name := "inference " + flagsName(desc.Flags) + " "
	fuse := desc.Flags&bnorm.FuseReLU != 0
	r := newResBatch(desc, shape, seed)
	r.gamma, r.beta = gammaBeta(r.batch)
	if err := r.inferenceResidual(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}

	bn := referenceInference(geometryOf(shape, desc.Layout), r.x, r.runningMean, r.runningVar,
		r.gamma, r.beta, float64(desc.Eps), false)
	want := withResidual(bn, r.residual, fuse)
	expectNear(t, name+"y vs reference", r.y, want,
		within(outputTolerance*(maxAbs(bn)+maxAbs(float64s(r.residual)))))

	plain := make([]float32, len(r.x))
	if err := bnorm.ForwardInference(withoutReLU(desc), shape, r.x, plain, r.runningMean,
		r.runningVar, r.gamma, r.beta); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	expectNear(t, name+"y vs ForwardInference, add, ReLU", r.y,
		addThenReLU(plain, r.residual, fuse), toFloatRounding(plain, r.residual))
}

func checkTrainingResidual(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, seed int64) {
	t.Helper()
	name := "training " + flagsName(desc.Flags) + " "
	fuse := desc.Flags&bnorm.FuseReLU != 0
	track := desc.Flags&bnorm.TrackRunningStats != 0
	r := newResBatch(desc, shape, seed)
	r.gamma, r.beta = gammaBeta(r.batch)
	initialMean := append([]float32(nil), r.runningMean...)
	initialVar := append([]float32(nil), r.runningVar...)
	if !track {
		r.runningMean, r.runningVar = nil, nil
	}
	if err := r.trainingResidual(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}

	g := geometryOf(shape, desc.Layout)
	ref := referenceTraining(g, r.x, r.gamma, r.beta, initialMean, initialVar,
		float64(desc.Eps), float64(desc.Momentum), false)
	expectNear(t, name+"y vs reference", r.y, withResidual(ref.y, r.residual, fuse),
		within(outputTolerance*(maxAbs(ref.y)+maxAbs(float64s(r.residual)))))
	// The statistics are x's: the residual does not enter them.
	expectNear(t, name+"save_mean vs reference", r.saveMean, ref.mean, func(c int) float64 {
		return statsTolerance * (math.Abs(ref.mean[c]) + 1/ref.invstd[c])
	})
	expectNear(t, name+"save_invstd vs reference", r.saveInvstd, ref.invstd, func(c int) float64 {
		return statsTolerance * ref.invstd[c]
	})

	// The call without a residual, on the same batch: the same statistics,
	// bit for bit (the same reduction), and y before the add.
	plain := newResBatch(withoutReLU(desc), shape, seed)
	plain.gamma, plain.beta = r.gamma, r.beta
	if !track {
		plain.runningMean, plain.runningVar = nil, nil
	}
	if err := plain.training(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !equalBits(r.saveMean, plain.saveMean) || !equalBits(r.saveInvstd, plain.saveInvstd) ||
		!equalBits(r.runningMean, plain.runningMean) || !equalBits(r.runningVar, plain.runningVar) {
		t.Errorf("%sthe statistics differ from ForwardTraining's", name)
	}
	expectNear(t, name+"y vs ForwardTraining, add, ReLU", r.y,
		addThenReLU(plain.y, r.residual, fuse), toFloatRounding(plain.y, r.residual))
}

func checkBackwardResidual(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, seed int64) {
	t.Helper()
	name := "backward " + flagsName(desc.Flags) + " "
	fuse := desc.Flags&bnorm.FuseReLU != 0
	global := desc.Flags&bnorm.UseGlobalStats != 0
	r := newResBatch(desc, shape, seed)
	r.gamma, r.beta = gammaBeta(r.batch)
	// The forward pass that the backward pass differentiates: y (for
	// FuseReLU, with the residual in it) and the statistics.
	if global {
		for c := range r.saveMean {
			r.saveMean[c] = r.runningMean[c]
			r.saveInvstd[c] = float32(1 / math.Sqrt(float64(r.runningVar[c])+float64(desc.Eps)))
		}
		if err := r.inferenceResidual(); err != nil {
			t.Fatal(err)
		}
	} else if err := r.trainingResidual(); err != nil {
		t.Fatal(err)
	}
	if err := r.backwardResidual(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}

	if !equalBits(r.dResidual, maskedByReLU(r.dy, r.y, fuse)) {
		t.Errorf("%sd_residual is not dy masked by y > 0", name)
	}
	// Backward with the same flags and this y: the same dx, dgamma, dbeta.
	dx, dgamma, dbeta := make([]float32, len(r.x)), make([]float32, len(r.dgamma)),
		make([]float32, len(r.dbeta))
	if err := bnorm.Backward(desc, shape, r.x, r.dy, r.y, r.gamma, r.saveMean, r.saveInvstd, dx,
		dgamma, dbeta); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !equalBits(r.dx, dx) {
		t.Errorf("%sdx differs from Backward's", name)
	}
	if !equalBits(r.dgamma, dgamma) || !equalBits(r.dbeta, dbeta) {
		t.Errorf("%sdgamma or dbeta differs from Backward's", name)
	}

	want := referenceBackward(geometryOf(shape, desc.Layout), r.x, r.dy, r.y, r.gamma,
		r.saveMean, r.saveInvstd, fuse, global)
	expectNear(t, name+"dx vs reference", r.dx, want.dx, within(outputTolerance*maxAbs(want.dx)))
	expectNear(t, name+"dgamma vs reference", r.dgamma, want.dgamma, func(c int) float64 {
		return sumTolerance * want.dgammaScale[c]
	})
	expectNear(t, name+"dbeta vs reference", r.dbeta, want.dbeta, func(c int) float64 {
		return sumTolerance * want.dbetaScale[c]
	})
}

// The mask at its edges: y exactly +0 or -0 (where the ReLU clamped) blocks
// the gradient, a NaN y passes it, as in PyTorch; without FuseReLU nothing is
// masked and y is not needed.
func TestBackwardResidualMask(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		desc := bnorm.NewDescriptor(3)
		desc.Layout = layout
		desc.Flags |= bnorm.FuseReLU
		shape := bnorm.Shape{4, 3}
		r := newResBatch(desc, shape, 81)
		if err := r.trainingResidual(); err != nil {
			t.Fatal(err)
		}
		copy(r.y, []float32{0, negZero, nan, 1e-30, -1e-30, 2, nan, 0, 0.5, -3, 7, negZero})
		if err := r.backwardResidual(); err != nil {
			t.Fatal(err)
		}
		want := []float32{0, 0, r.dy[2], r.dy[3], 0, r.dy[5], r.dy[6], 0, r.dy[8], 0, r.dy[10], 0}
		if !equalBits(r.dResidual, want) {
			t.Errorf("%v: d_residual %v, want %v", layout, r.dResidual, want)
		}
		dx := make([]float32, len(r.x))
		if err := bnorm.Backward(desc, shape, r.x, r.dy, r.y, r.gamma, r.saveMean, r.saveInvstd,
			dx, nil, nil); err != nil {
			t.Fatal(err)
		}
		if !equalBits(r.dx, dx) {
			t.Errorf("%v: dx differs from Backward's with the same y", layout)
		}

		noReLU := withoutReLU(desc)
		if err := bnorm.BackwardResidual(noReLU, shape, r.x, r.dy, nil, r.gamma, r.saveMean,
			r.saveInvstd, r.dx, r.dResidual, nil, nil); err != nil {
			t.Fatal(err)
		}
		if !equalBits(r.dResidual, r.dy) {
			t.Errorf("%v: without FuseReLU d_residual is not dy", layout)
		}
	}
}

// In place is passing the same slice twice: y as x or as residual (or both,
// when the residual is x itself), dx or d_residual as dy. The results are the
// same bits as out of place.
func TestResidualInPlace(t *testing.T) {
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		desc := bnorm.NewDescriptor(17)
		desc.Layout = layout
		desc.Flags |= bnorm.FuseReLU
		shape := randomShape(rand.New(rand.NewSource(82)), layout, 4, 17)
		forward := []struct {
			name string
			call func(*resBatch) error
		}{
			{"ForwardInferenceResidual", (*resBatch).inferenceResidual},
			{"ForwardTrainingResidual", (*resBatch).trainingResidual},
		}
		inPlace := []struct {
			name   string
			makeIt func(r *resBatch) []float32 // returns y
		}{
			{"y == x", func(r *resBatch) []float32 { r.y = r.x; return r.y }},
			{"y == residual", func(r *resBatch) []float32 { r.y = r.residual; return r.y }},
			{"y == x == residual", func(r *resBatch) []float32 {
				r.residual, r.y = r.x, r.x
				return r.y
			}},
		}
		for _, f := range forward {
			for _, p := range inPlace {
				t.Run(fmt.Sprintf("%v %s %s", layout, f.name, p.name), func(t *testing.T) {
					out, in := newResBatch(desc, shape, 83), newResBatch(desc, shape, 83)
					if p.name == "y == x == residual" {
						out.residual = append([]float32(nil), out.x...)
					}
					if err := f.call(out); err != nil {
						t.Fatal(err)
					}
					y := p.makeIt(in)
					if err := f.call(in); err != nil {
						t.Fatal(err)
					}
					if !equalBits(y, out.y) || !equalBits(in.saveInvstd, out.saveInvstd) ||
						!equalBits(in.runningVar, out.runningVar) {
						t.Error("in place differs from out of place")
					}
				})
			}
		}

		for _, flags := range []bnorm.Flags{desc.Flags, desc.Flags | bnorm.UseGlobalStats} {
			d := desc
			d.Flags = flags
			for _, p := range []struct {
				name   string
				makeIt func(r *resBatch)
			}{
				{"dx == dy", func(r *resBatch) { r.dx = r.dy }},
				{"d_residual == dy", func(r *resBatch) { r.dResidual = r.dy }},
			} {
				t.Run(fmt.Sprintf("%v BackwardResidual %s %s", layout, flagsName(flags), p.name),
					func(t *testing.T) {
						out, in := newResBatch(d, shape, 84), newResBatch(d, shape, 84)
						for _, r := range []*resBatch{out, in} {
							if err := r.trainingResidual(); err != nil {
								t.Fatal(err)
							}
						}
						if err := out.backwardResidual(); err != nil {
							t.Fatal(err)
						}
						p.makeIt(in)
						if err := in.backwardResidual(); err != nil {
							t.Fatal(err)
						}
						if !equalBits(in.dx, out.dx) || !equalBits(in.dResidual, out.dResidual) ||
							!equalBits(in.dgamma, out.dgamma) || !equalBits(in.dbeta, out.dbeta) {
							t.Error("in place differs from out of place")
						}
					})
			}
		}
	}
}

// nil leaves out an optional output (save_mean and save_invstd; dgamma and
// dbeta, also with frozen statistics, where no sums are then needed) without
// changing the others.
func TestResidualOptionalOutputsMayBeNil(t *testing.T) {
	for _, flags := range []bnorm.Flags{bnorm.Affine | bnorm.FuseReLU,
		bnorm.Affine | bnorm.FuseReLU | bnorm.UseGlobalStats} {
		desc := bnorm.NewDescriptor(5)
		desc.Flags = flags
		shape := bnorm.Shape{3, 5, 2, 3}
		full := newResBatch(desc, shape, 85)
		if err := full.trainingResidual(); err != nil {
			t.Fatal(err)
		}
		if err := full.backwardResidual(); err != nil {
			t.Fatal(err)
		}

		noSave := newResBatch(desc, shape, 85)
		noSave.saveMean, noSave.saveInvstd = nil, nil
		if err := noSave.trainingResidual(); err != nil {
			t.Fatal(err)
		}
		if !equalBits(noSave.y, full.y) {
			t.Errorf("%s: leaving out save_mean and save_invstd changed y", flagsName(flags))
		}

		noParams := newResBatch(desc, shape, 85)
		noParams.y, noParams.saveMean, noParams.saveInvstd = full.y, full.saveMean, full.saveInvstd
		noParams.dgamma, noParams.dbeta = nil, nil
		if err := noParams.backwardResidual(); err != nil {
			t.Fatal(err)
		}
		if !equalBits(noParams.dx, full.dx) || !equalBits(noParams.dResidual, full.dResidual) {
			t.Errorf("%s: leaving out dgamma and dbeta changed dx or d_residual", flagsName(flags))
		}
	}
}

// Inference, and backward with frozen statistics, need no batch statistics,
// so one value per channel is fine for them; read-only inputs may overlap.
func TestResidualOneValuePerChannelAndOverlappingInputs(t *testing.T) {
	desc := bnorm.NewDescriptor(5)
	desc.Flags |= bnorm.UseGlobalStats
	r := newResBatch(desc, bnorm.Shape{1, 5, 1, 1}, 86)
	if err := r.inferenceResidual(); err != nil {
		t.Fatal(err)
	}
	copy(r.saveMean, r.runningMean)
	copy(r.saveInvstd, r.runningVar) // any positive numbers will do
	if err := r.backwardResidual(); err != nil {
		t.Fatal(err)
	}

	// The residual one element into x: both are only read.
	r = newResBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 87)
	buf := append(append([]float32(nil), r.x...), 0.5)
	r.x, r.residual = buf[:len(r.x)], buf[1:]
	if err := r.trainingResidual(); err != nil {
		t.Error(err)
	}
}

// residualCall is the fixture for the error tests: a valid call of each
// residual function on the 2x3x4 NCHW batch of a 3-channel layer with the
// library's default flags (Affine | TrackRunningStats).
func newResidualCall() *resBatch {
	return newResBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 7)
}

// The valid calls succeed, so each case below fails for its one change.
func TestResidualCallsSucceedUnbroken(t *testing.T) {
	for name, call := range map[string]func(*resBatch) error{
		"ForwardInferenceResidual": (*resBatch).inferenceResidual,
		"ForwardTrainingResidual":  (*resBatch).trainingResidual,
		"BackwardResidual":         (*resBatch).backwardResidual,
	} {
		if err := call(newResidualCall()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestResidualLengthChecks(t *testing.T) {
	inference, training, backward := (*resBatch).inferenceResidual, (*resBatch).trainingResidual,
		(*resBatch).backwardResidual
	cases := []struct {
		name    string
		breakIt func(r *resBatch)
		call    func(r *resBatch) error
		want    bnorm.LengthError
		text    string
	}{
		{"inference residual short", func(r *resBatch) { r.residual = r.residual[:23] }, inference,
			tensorLength("ForwardInferenceResidual", "residual", 23),
			"bnorm: ForwardInferenceResidual: residual has 23 elements but the element count of " +
				"shape [2 3 4] is 24"},
		{"inference x long", func(r *resBatch) { r.x = make([]float32, 25) }, inference,
			tensorLength("ForwardInferenceResidual", "x", 25), ""},
		{"inference y short", func(r *resBatch) { r.y = r.y[:1] }, inference,
			tensorLength("ForwardInferenceResidual", "y", 1), ""},
		{"inference var short", func(r *resBatch) { r.runningVar = r.runningVar[:2] }, inference,
			vectorLength("ForwardInferenceResidual", "var", 2), ""},
		// gamma is not read without Affine, but a gamma that is passed must fit.
		{"inference gamma long without Affine", func(r *resBatch) {
			r.desc.Flags = 0
			r.gamma = make([]float32, 4)
		}, inference, vectorLength("ForwardInferenceResidual", "gamma", 4), ""},
		{"training residual long", func(r *resBatch) { r.residual = make([]float32, 48) }, training,
			tensorLength("ForwardTrainingResidual", "residual", 48), ""},
		{"training y short", func(r *resBatch) { r.y = r.y[:12] }, training,
			tensorLength("ForwardTrainingResidual", "y", 12), ""},
		{"training running_mean long", func(r *resBatch) { r.runningMean = make([]float32, 4) },
			training, vectorLength("ForwardTrainingResidual", "running_mean", 4), ""},
		{"training save_invstd short", func(r *resBatch) { r.saveInvstd = r.saveInvstd[:1] },
			training, vectorLength("ForwardTrainingResidual", "save_invstd", 1),
			"bnorm: ForwardTrainingResidual: save_invstd has 1 elements but num_features is 3"},
		{"backward d_residual short", func(r *resBatch) { r.dResidual = r.dResidual[:23] },
			backward, tensorLength("BackwardResidual", "d_residual", 23),
			"bnorm: BackwardResidual: d_residual has 23 elements but the element count of " +
				"shape [2 3 4] is 24"},
		{"backward dx long", func(r *resBatch) { r.dx = make([]float32, 25) }, backward,
			tensorLength("BackwardResidual", "dx", 25), ""},
		{"backward dy short", func(r *resBatch) { r.dy = r.dy[:20] }, backward,
			tensorLength("BackwardResidual", "dy", 20), ""},
		// y is read only with FuseReLU, but a y that is passed must still fit.
		{"backward y short without FuseReLU", func(r *resBatch) { r.y = r.y[:1] }, backward,
			tensorLength("BackwardResidual", "y", 1), ""},
		{"backward save_mean short", func(r *resBatch) { r.saveMean = r.saveMean[:2] }, backward,
			vectorLength("BackwardResidual", "save_mean", 2), ""},
		{"backward dbeta long", func(r *resBatch) { r.dbeta = make([]float32, 4) }, backward,
			vectorLength("BackwardResidual", "dbeta", 4), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newResidualCall()
			before, err := callBroken(r, c.breakIt, c.call)
			expectLengthError(t, err, c.want)
			if c.text != "" {
				expectErrorText(t, err, c.text)
			}
			expectUnchanged(t, r, before)
		})
	}
}

// Every status the residual calls can return through the []float32 API, with
// the library's message; nothing is written. (A misaligned pointer cannot be
// made from a []float32, and OUT_OF_MEMORY and INTERNAL cannot be provoked.)
func TestResidualLibraryErrors(t *testing.T) {
	const (
		inf = "ForwardInferenceResidual"
		trn = "ForwardTrainingResidual"
		bwd = "BackwardResidual"
	)
	calls := map[string]func(*resBatch) error{
		inf: (*resBatch).inferenceResidual,
		trn: (*resBatch).trainingResidual,
		bwd: (*resBatch).backwardResidual,
	}
	onePast := func(of []float32) (input, output []float32) {
		buf := make([]float32, len(of)+1)
		copy(buf, of)
		return buf[:len(of)], buf[1:]
	}
	cases := []struct {
		name    string
		op      string
		breakIt func(r *resBatch)
		want    bnorm.Status
		message string
	}{
		// Required pointers: the residual and both gradients always.
		{"x nil", inf, func(r *resBatch) { r.x = nil }, bnorm.ErrNullPointer, "x is NULL"},
		{"residual nil", inf, func(r *resBatch) { r.residual = nil }, bnorm.ErrNullPointer,
			"residual is NULL"},
		{"residual empty", trn, func(r *resBatch) { r.residual = []float32{} }, bnorm.ErrNullPointer,
			"residual is NULL"},
		{"y nil", trn, func(r *resBatch) { r.y = nil }, bnorm.ErrNullPointer, "y is NULL"},
		{"var nil", inf, func(r *resBatch) { r.runningVar = nil }, bnorm.ErrNullPointer,
			"var is NULL"},
		{"beta nil with Affine", inf, func(r *resBatch) { r.beta = nil }, bnorm.ErrNullPointer,
			"beta is NULL but BNORM_FLAG_AFFINE is set"},
		{"gamma nil with Affine", trn, func(r *resBatch) { r.gamma = nil }, bnorm.ErrNullPointer,
			"gamma is NULL but BNORM_FLAG_AFFINE is set"},
		{"running_mean nil with TrackRunningStats", trn, func(r *resBatch) { r.runningMean = nil },
			bnorm.ErrNullPointer, "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"},
		{"dy nil", bwd, func(r *resBatch) { r.dy = nil }, bnorm.ErrNullPointer, "dy is NULL"},
		{"y nil with FuseReLU", bwd, func(r *resBatch) { r.desc.Flags |= bnorm.FuseReLU; r.y = nil },
			bnorm.ErrNullPointer, "y is NULL but BNORM_FLAG_FUSE_RELU is set"},
		{"gamma nil with Affine", bwd, func(r *resBatch) { r.gamma = nil },
			bnorm.ErrNullPointer, "gamma is NULL but BNORM_FLAG_AFFINE is set"},
		{"save_invstd nil", bwd, func(r *resBatch) { r.saveInvstd = nil }, bnorm.ErrNullPointer,
			"save_invstd is NULL"},
		{"dx nil", bwd, func(r *resBatch) { r.dx = nil }, bnorm.ErrNullPointer, "dx is NULL"},
		{"d_residual nil", bwd, func(r *resBatch) { r.dResidual = nil }, bnorm.ErrNullPointer,
			"d_residual is NULL"},

		{"NewDescriptor(0)", inf, func(r *resBatch) { r.desc = bnorm.NewDescriptor(0) },
			bnorm.ErrInvalidDescriptor, "num_features is 0; it must be > 0"},
		{"negative num_features", trn, func(r *resBatch) { r.desc.NumFeatures = -3 },
			bnorm.ErrInvalidDescriptor, "num_features is -3; it must be > 0"},
		{"NewDescriptor(0)", bwd, func(r *resBatch) { r.desc = bnorm.NewDescriptor(0) },
			bnorm.ErrInvalidDescriptor, "num_features is 0; it must be > 0"},

		{"rank 1", inf, func(r *resBatch) { r.shape = bnorm.Shape{6} }, bnorm.ErrInvalidShape,
			"rank is 1; it must be 2 to 5"},
		{"rank 6", trn, func(r *resBatch) { r.shape = bnorm.Shape{2, 3, 4, 1, 1, 1} },
			bnorm.ErrInvalidShape, "rank is 6; it must be 2 to 5"},
		{"zero dim", bwd, func(r *resBatch) { r.shape = bnorm.Shape{2, 3, 0} },
			bnorm.ErrInvalidShape, "dims[2] is 0; every dimension must be > 0"},
		{"element count overflows", trn, func(r *resBatch) { r.shape = bnorm.Shape{1 << 40, 3, 1 << 40} },
			bnorm.ErrInvalidShape,
			"the element count of shape (1099511627776, 3, 1099511627776) overflows"},

		// The tensors stay sized for 3 channels: the mismatch is reported
		// in the library's words, not as a length error.
		{"5 channels for a 3-channel layer", inf, func(r *resBatch) { r.shape = bnorm.Shape{2, 5, 4} },
			bnorm.ErrFeatureMismatch, "input channel dimension (dim 1) is 5 but num_features is 3"},
		{"NCHW tensor described as NHWC", trn, func(r *resBatch) { r.desc.Layout = bnorm.NHWC },
			bnorm.ErrFeatureMismatch,
			"input channel dimension (dim 2) is 4 but num_features is 3; dim 1 is 3: " +
				"is the tensor channels-first? set layout to BNORM_LAYOUT_NCHW"},
		{"8 channels for a 3-channel layer", bwd,
			func(r *resBatch) { r.shape = bnorm.Shape{1, 8, 5} },
			bnorm.ErrFeatureMismatch, "input channel dimension (dim 1) is 8 but num_features is 3"},

		{"eps 0", inf, func(r *resBatch) { r.desc.Eps = 0 }, bnorm.ErrInvalidArgument,
			"eps is 0; it must be finite and > 0"},
		{"momentum 1.5", trn, func(r *resBatch) { r.desc.Momentum = 1.5 }, bnorm.ErrInvalidArgument,
			"momentum is 1.5; it must be in [0, 1]"},
		{"unknown layout", bwd, func(r *resBatch) { r.desc.Layout = 2 }, bnorm.ErrInvalidArgument,
			"layout is 2; it must be BNORM_LAYOUT_NCHW (0) or BNORM_LAYOUT_NHWC (1)"},
		{"unknown flag bit", bwd, func(r *resBatch) { r.desc.Flags |= 1 << 4 },
			bnorm.ErrInvalidArgument, "flags 0x13 has unknown bits 0x10"},
		{"negative num_threads", trn, func(r *resBatch) { r.desc.NumThreads = -1 },
			bnorm.ErrInvalidArgument, "num_threads is -1; it must be >= 0"},
		{"unknown dtype", inf, func(r *resBatch) { r.desc = bnorm.WithDtype(r.desc, 7) },
			bnorm.ErrInvalidArgument, "dtype is 7; it must be BNORM_DTYPE_F32 (0), " +
				"BNORM_DTYPE_BF16 (1) or BNORM_DTYPE_F16 (2)"},

		{"training on one value per channel", trn, func(r *resBatch) { shrinkResTo(r, bnorm.Shape{1, 3}) },
			bnorm.ErrTooFewValues,
			"training needs more than 1 value per channel, got input of shape (1, 3)"},
		{"training-mode backward on one value per channel", bwd,
			func(r *resBatch) { shrinkResTo(r, bnorm.Shape{1, 3, 1}) }, bnorm.ErrTooFewValues,
			"training-mode backward needs more than 1 value per channel, got input of shape (1, 3, 1)"},

		{"y one element past x", inf, func(r *resBatch) { r.x, r.y = onePast(r.x) },
			bnorm.ErrAliasing, "y overlaps x (in place is allowed only with the same pointer)"},
		{"y one element past residual", inf, func(r *resBatch) { r.residual, r.y = onePast(r.residual) },
			bnorm.ErrAliasing, "y overlaps residual (in place is allowed only with the same pointer)"},
		{"y one element past residual", trn,
			func(r *resBatch) { r.residual, r.y = onePast(r.residual) },
			bnorm.ErrAliasing, "y overlaps residual (in place is allowed only with the same pointer)"},
		{"save_mean is running_mean", trn, func(r *resBatch) { r.saveMean = r.runningMean },
			bnorm.ErrAliasing, "running_mean overlaps save_mean"},
		{"mean inside y", inf, func(r *resBatch) { r.runningMean = r.y[5:8] },
			bnorm.ErrAliasing, "y overlaps mean"},
		{"dx and d_residual both dy", bwd, func(r *resBatch) { r.dx, r.dResidual = r.dy, r.dy },
			bnorm.ErrAliasing, "dx overlaps d_residual"},
		{"d_residual is dx", bwd, func(r *resBatch) { r.dResidual = r.dx },
			bnorm.ErrAliasing, "dx overlaps d_residual"},
		{"d_residual one element past dy", bwd, func(r *resBatch) { r.dy, r.dResidual = onePast(r.dy) },
			bnorm.ErrAliasing,
			"d_residual overlaps dy (in place is allowed only with the same pointer)"},
		{"d_residual is x", bwd, func(r *resBatch) { r.dResidual = r.x },
			bnorm.ErrAliasing, "d_residual overlaps x"},
		{"d_residual is y with FuseReLU", bwd, func(r *resBatch) {
			r.desc.Flags |= bnorm.FuseReLU
			r.dResidual = r.y
		}, bnorm.ErrAliasing, "d_residual overlaps y"},
		{"dx is x", bwd, func(r *resBatch) { r.dx = r.x }, bnorm.ErrAliasing, "dx overlaps x"},
		{"dbeta is dgamma", bwd, func(r *resBatch) { r.dbeta = r.dgamma }, bnorm.ErrAliasing,
			"dgamma overlaps dbeta"},
	}
	for _, c := range cases {
		t.Run(c.op+" "+c.name, func(t *testing.T) {
			r := newResidualCall()
			before, err := callBroken(r, c.breakIt, calls[c.op])
			e := expectLibraryError(t, err, c.want, c.message)
			if e.Op != c.op {
				t.Errorf("got Op %s, want %s", e.Op, c.op)
			}
			expectErrorText(t, err, fmt.Sprintf("bnorm: %s: %s: %s", c.op, c.want.Name(), c.message))
			expectUnchanged(t, r, before)
		})
	}
}

// shrinkResTo gives r a smaller valid shape, with tensors to match.
func shrinkResTo(r *resBatch, shape bnorm.Shape) {
	shrinkTo(r.batch, shape)
	n := shape.Elements()
	r.residual, r.dResidual = r.residual[:n], r.dResidual[:n]
}

// The tail of a ResNet block: the second convolution's output x goes through
// batch norm, the block's input (the skip connection) is added, then ReLU; in
// one pass forward, and one backward giving the gradients of both branches.
func Example_residual() {
	desc := bnorm.NewDescriptor(2) // Affine, TrackRunningStats
	desc.Flags |= bnorm.FuseReLU   // y = max(bn(x) + residual, 0)
	shape := bnorm.Shape{1, 2, 4}  // NCHW: channel 0 is x[0:4], channel 1 is x[4:8]
	x := []float32{1, 2, 3, 6, 10, 20, 30, 40}
	residual := []float32{0.5, -1, 0.5, -2, 1, 1, -1, -1} // the block's input
	gamma, beta := []float32{1, 2}, []float32{0, 0.5}
	runningMean, runningVar := []float32{0, 0}, []float32{1, 1}
	saveMean, saveInvstd := make([]float32, 2), make([]float32, 2)

	y := make([]float32, len(x))
	if err := bnorm.ForwardTrainingResidual(desc, shape, x, residual, y, gamma, beta,
		runningMean, runningVar, saveMean, saveInvstd); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("y %.3f\n", y)
	fmt.Printf("batch mean %.2f (x's alone)\n", saveMean)

	// Backward: dy from the next block. dResidual is dy where y > 0 and goes
	// to the skip connection; here it takes dy's place (in place).
	dy := []float32{1, -1, 0.5, 2, 1, 1, -0.5, 0.25}
	dx := make([]float32, len(x))
	dgamma, dbeta := make([]float32, 2), make([]float32, 2)
	if err := bnorm.BackwardResidual(desc, shape, x, dy, y, gamma, saveMean, saveInvstd,
		dx, dy, dgamma, dbeta); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("dx %.3f\nd_residual %.3f\ndgamma %.3f dbeta %.3f\n", dx, dy, dgamma, dbeta)

	// Only one of the two gradients may take dy's place.
	err := bnorm.BackwardResidual(desc, shape, x, dy, y, gamma, saveMean, saveInvstd,
		dy, dy, nil, nil)
	fmt.Println(errors.Is(err, bnorm.ErrAliasing), err)
	// Output:
	// y [0.000 0.000 0.500 0.000 0.000 0.606 0.394 2.183]
	// batch mean [3.00 25.00] (x's alone)
	// dx [-0.067 -0.067 0.200 -0.067 -0.054 0.139 -0.116 0.031]
	// d_residual [0.000 0.000 0.500 0.000 0.000 1.000 -0.500 0.250]
	// dgamma [0.000 -0.335] dbeta [0.500 0.750]
	// true bnorm: BackwardResidual: BNORM_ERR_ALIASING: dx overlaps d_residual
}
