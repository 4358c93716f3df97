package bnorm_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"bnorm"
)

// Batch norm folded for inference: the per-channel scale and shift, inference
// from them, and folding into the convolution before.

// roundedOnce is the tolerance of a result computed in float64 and rounded
// to float32 once: one float32 ulp of the reference.
func roundedOnce(want []float64) func(int) float64 {
	return func(i int) float64 { return 0x1p-23 * math.Abs(want[i]) }
}

// layer is a batch-norm layer as a model file holds it: statistics and
// parameters, gamma and beta nil when it is not affine (as a caller without
// them would pass them).
type layer struct {
	desc                        bnorm.Descriptor
	mean, variance, gamma, beta []float32
}

func newLayer(desc bnorm.Descriptor, seed int64) layer {
	rng := rand.New(rand.NewSource(seed))
	uniform := func(lo, hi float64) []float32 {
		v := make([]float32, desc.NumFeatures)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	l := layer{desc: desc, mean: uniform(-2, 2), variance: uniform(0.1, 4),
		gamma: uniform(-1.5, 1.5), beta: uniform(-1, 1)}
	if desc.Flags&bnorm.Affine == 0 {
		l.gamma, l.beta = nil, nil
	}
	return l
}

func (l layer) fold() (scale, shift []float32, err error) {
	scale, shift = make([]float32, l.desc.NumFeatures), make([]float32, l.desc.NumFeatures)
	err = bnorm.FoldScaleShift(l.desc, l.mean, l.variance, l.gamma, l.beta, scale, shift)
	return scale, shift, err
}

// referenceScale is the header's scale[c] = gamma[c] / sqrt(var[c] + eps) in
// float64, gamma 1 without Affine.
func (l layer) referenceScale(c int) float64 {
	gamma, _ := affine(l.gamma, l.beta, c)
	return gamma / math.Sqrt(float64(l.variance[c])+float64(l.desc.Eps))
}

// The header's formulas in float64: scale and shift = beta - mean * scale.
func TestFoldScaleShiftAgreesWithFloat64Reference(t *testing.T) {
	for _, channels := range []int64{1, 3, 17, 67} {
		for _, flags := range []bnorm.Flags{0, bnorm.Affine} {
			desc := bnorm.NewDescriptor(channels)
			desc.Flags = flags
			desc.Eps = 1e-3
			l := newLayer(desc, channels)
			scale, shift, err := l.fold()
			if err != nil {
				t.Fatalf("C=%d %s: %v", channels, flagsName(flags), err)
			}
			wantScale, wantShift := make([]float64, channels), make([]float64, channels)
			for c := range wantScale {
				_, beta := affine(l.gamma, l.beta, c)
				wantScale[c] = l.referenceScale(c)
				wantShift[c] = beta - float64(l.mean[c])*wantScale[c]
			}
			name := fmt.Sprintf("C=%d %s ", channels, flagsName(flags))
			expectNear(t, name+"scale", scale, wantScale, roundedOnce(wantScale))
			expectNear(t, name+"shift", shift, wantShift, roundedOnce(wantShift))
		}
	}
}

// Without Affine, gamma and beta are not read: passing them changes nothing.
func TestFoldScaleShiftIgnoresGammaAndBetaWithoutAffine(t *testing.T) {
	desc := bnorm.NewDescriptor(5)
	desc.Flags = 0
	l := newLayer(desc, 3)
	scale, shift, err := l.fold()
	if err != nil {
		t.Fatal(err)
	}
	other := newLayer(bnorm.NewDescriptor(5), 4) // affine: it has gamma and beta
	l.gamma, l.beta = other.gamma, other.beta
	scale2, shift2, err := l.fold()
	if err != nil {
		t.Fatal(err)
	}
	if !equalBits(scale, scale2) || !equalBits(shift, shift2) {
		t.Error("gamma and beta changed the result of a layer without Affine")
	}
}

// ForwardScaleShift is y = x * scale + shift (then ReLU) with the float32
// pair, and with the pair from FoldScaleShift it is ForwardInference with the
// statistics, to float32 rounding: every rank, both layouts, odd channel
// counts, with and without ReLU and Affine.
func TestForwardScaleShiftMatchesInference(t *testing.T) {
	rng := rand.New(rand.NewSource(77))
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		for _, channels := range []int64{1, 3, 17} {
			for rank := 2; rank <= 5; rank++ {
				shape := randomShape(rng, layout, rank, channels)
				seed := rng.Int63()
				t.Run(fmt.Sprintf("%v%v", layout, shape), func(t *testing.T) {
					for _, flags := range []bnorm.Flags{0, bnorm.FuseReLU, bnorm.Affine,
						bnorm.Affine | bnorm.FuseReLU} {
						checkScaleShift(t, layout, shape, flags, seed)
					}
				})
			}
		}
	}
}

func checkScaleShift(t *testing.T, layout bnorm.Layout, shape bnorm.Shape, flags bnorm.Flags,
	seed int64) {
	t.Helper()
	desc := bnorm.NewDescriptor(shape.Channels(layout))
	desc.Layout, desc.Flags = layout, flags
	name := flagsName(flags) + " "
	fuse := flags&bnorm.FuseReLU != 0
	b := newBatch(desc, shape, seed) // x with per-channel centers and spreads
	l := newLayer(desc, seed)
	scale, shift, err := l.fold()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}

	y := make([]float32, len(b.x))
	if err := bnorm.ForwardScaleShift(desc, shape, b.x, y, scale, shift); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	g := geometryOf(shape, layout)
	want := make([]float64, len(b.x))
	for c := 0; c < g.c; c++ {
		g.forChannel(c, func(i int) {
			want[i] = relu(float64(b.x[i])*float64(scale[c])+float64(shift[c]), fuse)
		})
	}
	expectNear(t, name+"y", y, want, roundedOnce(want))

	inference := make([]float32, len(b.x))
	if err := bnorm.ForwardInference(desc, shape, b.x, inference, l.mean, l.variance, l.gamma,
		l.beta); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Both round the scale, the shift and the result: a few ulps of the
	// terms' magnitudes, which cancel where y is near 0.
	terms := make([]float64, len(b.x))
	for c := 0; c < g.c; c++ {
		_, beta := affine(l.gamma, l.beta, c)
		s := math.Abs(l.referenceScale(c))
		g.forChannel(c, func(i int) {
			terms[i] = (math.Abs(float64(b.x[i]))+math.Abs(float64(l.mean[c])))*s + math.Abs(beta)
		})
	}
	expectNear(t, name+"y vs ForwardInference", y, float64s(inference),
		func(i int) float64 { return 8 * 0x1p-24 * terms[i] })
}

func float64s(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}

// In place is passing the same slice twice: x as y in ForwardScaleShift,
// weights and bias as their folded outputs in FoldIntoLayer. The results are
// the same bits as out of place.
func TestFoldingInPlace(t *testing.T) {
	t.Run("ForwardScaleShift y == x", func(t *testing.T) {
		desc := bnorm.NewDescriptor(17)
		desc.Layout = bnorm.NHWC
		desc.Flags |= bnorm.FuseReLU
		shape := bnorm.Shape{3, 4, 5, 17}
		b := newBatch(desc, shape, 31)
		scale, shift, err := newLayer(desc, 31).fold()
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(b.x))
		if err := bnorm.ForwardScaleShift(desc, shape, b.x, y, scale, shift); err != nil {
			t.Fatal(err)
		}
		if err := bnorm.ForwardScaleShift(desc, shape, b.x, b.x, scale, shift); err != nil {
			t.Fatal(err)
		}
		if !equalBits(b.x, y) {
			t.Error("in-place y differs from out-of-place y")
		}
	})

	for _, withBias := range []bool{false, true} {
		t.Run(fmt.Sprintf("FoldIntoLayer bias %v", withBias), func(t *testing.T) {
			desc := bnorm.NewDescriptor(5)
			l := newLayer(desc, 32)
			conv := newConv(5, 3, 3, 3, withBias, 33)
			outW, outB := make([]float32, len(conv.weights)), make([]float32, 5)
			if err := bnorm.FoldIntoLayer(desc, conv.weights, conv.bias, l.mean, l.variance,
				l.gamma, l.beta, outW, outB); err != nil {
				t.Fatal(err)
			}
			// Without a bias there is nothing to fold the bias into in place:
			// folded_bias is a fresh slice.
			inB := conv.bias
			if !withBias {
				inB = make([]float32, 5)
			}
			if err := bnorm.FoldIntoLayer(desc, conv.weights, conv.bias, l.mean, l.variance,
				l.gamma, l.beta, conv.weights, inB); err != nil {
				t.Fatal(err)
			}
			if !equalBits(conv.weights, outW) || !equalBits(inB, outB) {
				t.Error("in-place folding differs from out of place")
			}
		})
	}
}

// conv is a convolution's parameters: weights OIHW, bias nil for none.
type conv struct {
	out, in, kh, kw int
	weights, bias   []float32
}

func newConv(out, in, kh, kw int, withBias bool, seed int64) conv {
	rng := rand.New(rand.NewSource(seed))
	c := conv{out: out, in: in, kh: kh, kw: kw, weights: make([]float32, out*in*kh*kw)}
	for i := range c.weights {
		c.weights[i] = float32(2*rng.Float64() - 1)
	}
	if withBias {
		c.bias = make([]float32, out)
		for i := range c.bias {
			c.bias[i] = float32(2*rng.Float64() - 1)
		}
	}
	return c
}

// apply is a naive conv2d in float64 (stride 1, no padding) of an NCHW input
// (n, in, h, w); it returns the NCHW output, its shape, and for each output
// element the sum of the magnitudes of its terms (the scale of its rounding).
func (c conv) apply(x []float32, n, h, w int) (y, magnitude []float64, shape bnorm.Shape) {
	oh, ow := h-c.kh+1, w-c.kw+1
	y, magnitude = make([]float64, n*c.out*oh*ow), make([]float64, n*c.out*oh*ow)
	for b := 0; b < n; b++ {
		for o := 0; o < c.out; o++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					sum, abs := 0.0, 0.0
					if c.bias != nil {
						sum, abs = float64(c.bias[o]), math.Abs(float64(c.bias[o]))
					}
					for ci := 0; ci < c.in; ci++ {
						for ki := 0; ki < c.kh; ki++ {
							for kj := 0; kj < c.kw; kj++ {
								term := float64(x[((b*c.in+ci)*h+i+ki)*w+j+kj]) *
									float64(c.weights[((o*c.in+ci)*c.kh+ki)*c.kw+kj])
								sum += term
								abs += math.Abs(term)
							}
						}
					}
					at := ((b*c.out+o)*oh+i)*ow + j
					y[at], magnitude[at] = sum, abs
				}
			}
		}
	}
	return y, magnitude, bnorm.Shape{int64(n), int64(c.out), int64(oh), int64(ow)}
}

// The convolution with the folded weights and bias is the convolution followed
// by eval-mode batch norm (ForwardInference with the statistics).
func TestFoldIntoLayerMatchesConvThenBatchNorm(t *testing.T) {
	const n, h, w = 2, 7, 6
	for _, out := range []int{1, 3, 17} {
		for _, flags := range []bnorm.Flags{0, bnorm.Affine} {
			for _, withBias := range []bool{false, true} {
				name := fmt.Sprintf("out=%d %s bias=%v", out, flagsName(flags), withBias)
				t.Run(name, func(t *testing.T) {
					checkFoldIntoConv(t, out, flags, withBias, n, h, w)
				})
			}
		}
	}
}

func checkFoldIntoConv(t *testing.T, out int, flags bnorm.Flags, withBias bool, n, h, w int) {
	const in, kh, kw = 3, 3, 2
	seed := int64(100*out) + int64(flags)*10
	if withBias {
		seed++
	}
	desc := bnorm.NewDescriptor(int64(out))
	desc.Flags = flags
	l := newLayer(desc, seed)
	c := newConv(out, in, kh, kw, withBias, seed+1)
	rng := rand.New(rand.NewSource(seed + 2))
	x := make([]float32, n*in*h*w)
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}

	folded := conv{out: out, in: in, kh: kh, kw: kw,
		weights: make([]float32, len(c.weights)), bias: make([]float32, out)}
	if err := bnorm.FoldIntoLayer(desc, c.weights, c.bias, l.mean, l.variance, l.gamma, l.beta,
		folded.weights, folded.bias); err != nil {
		t.Fatal(err)
	}

	// The header's formulas in float64.
	rowLength := in * kh * kw
	wantW, wantB := make([]float64, len(c.weights)), make([]float64, out)
	for o := 0; o < out; o++ {
		s := l.referenceScale(o)
		for k := 0; k < rowLength; k++ {
			wantW[o*rowLength+k] = float64(c.weights[o*rowLength+k]) * s
		}
		bias := 0.0
		if withBias {
			bias = float64(c.bias[o])
		}
		_, beta := affine(l.gamma, l.beta, o)
		wantB[o] = (bias-float64(l.mean[o]))*s + beta
	}
	expectNear(t, "folded_weights", folded.weights, wantW, roundedOnce(wantW))
	expectNear(t, "folded_bias", folded.bias, wantB, roundedOnce(wantB))

	// The layer pair in eval mode: conv, then batch norm of its output.
	z, magnitude, shape := c.apply(x, n, h, w)
	want := make([]float32, len(z))
	if err := bnorm.ForwardInference(desc, shape, float32s(z), want, l.mean, l.variance,
		l.gamma, l.beta); err != nil {
		t.Fatal(err)
	}
	got, _, _ := folded.apply(x, n, h, w)
	g := geometryOf(shape, bnorm.NCHW)
	tolerance := make([]float64, len(z))
	for o := 0; o < out; o++ {
		_, beta := affine(l.gamma, l.beta, o)
		s := math.Abs(l.referenceScale(o))
		g.forChannel(o, func(i int) {
			tolerance[i] = 8 * 0x1p-24 * ((magnitude[i]+math.Abs(float64(l.mean[o])))*s +
				math.Abs(beta))
		})
	}
	expectNear(t, "conv(folded) vs batch norm of conv", want, got,
		func(i int) float64 { return tolerance[i] })
}

func float32s(v []float64) []float32 {
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return w
}

// A folding call's buffers, each valid for a 3-channel affine layer and a
// linear layer of 3 outputs and 4 inputs, for breaking one at a time.
type foldCall struct {
	desc                            bnorm.Descriptor
	shape                           bnorm.Shape
	x, y                            []float32
	mean, variance, gamma, beta     []float32
	scale, shift                    []float32
	weights, bias, foldedW, foldedB []float32
}

func newFoldCall() *foldCall {
	desc := bnorm.NewDescriptor(3)
	l := newLayer(desc, 9)
	b := newBatch(desc, bnorm.Shape{2, 3, 4}, 9)
	lin := newConv(3, 4, 1, 1, true, 10)
	return &foldCall{desc: desc, shape: b.shape, x: b.x, y: b.y,
		mean: l.mean, variance: l.variance, gamma: l.gamma, beta: l.beta,
		scale: make([]float32, 3), shift: make([]float32, 3),
		weights: lin.weights, bias: lin.bias,
		foldedW: make([]float32, len(lin.weights)), foldedB: make([]float32, 3)}
}

func (f *foldCall) foldScaleShift() error {
	return bnorm.FoldScaleShift(f.desc, f.mean, f.variance, f.gamma, f.beta, f.scale, f.shift)
}

func (f *foldCall) forwardScaleShift() error {
	return bnorm.ForwardScaleShift(f.desc, f.shape, f.x, f.y, f.scale, f.shift)
}

func (f *foldCall) foldIntoLayer() error {
	return bnorm.FoldIntoLayer(f.desc, f.weights, f.bias, f.mean, f.variance, f.gamma, f.beta,
		f.foldedW, f.foldedB)
}

func (f *foldCall) buffers() [][]float32 {
	return [][]float32{f.x, f.y, f.mean, f.variance, f.gamma, f.beta, f.scale, f.shift,
		f.weights, f.bias, f.foldedW, f.foldedB}
}

// The valid calls succeed, so each case below fails for its one change.
func TestFoldCallsSucceedUnbroken(t *testing.T) {
	for name, call := range map[string]func(*foldCall) error{
		"FoldScaleShift":    (*foldCall).foldScaleShift,
		"ForwardScaleShift": (*foldCall).forwardScaleShift,
		"FoldIntoLayer":     (*foldCall).foldIntoLayer,
	} {
		if err := call(newFoldCall()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFoldingLengthChecks(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(f *foldCall)
		call    func(f *foldCall) error
		want    bnorm.LengthError
		text    string
	}{
		{"FoldScaleShift var short", func(f *foldCall) { f.variance = f.variance[:2] },
			(*foldCall).foldScaleShift, vectorLength("FoldScaleShift", "var", 2),
			"bnorm: FoldScaleShift: var has 2 elements but num_features is 3"},
		{"FoldScaleShift shift long", func(f *foldCall) { f.shift = make([]float32, 4) },
			(*foldCall).foldScaleShift, vectorLength("FoldScaleShift", "shift", 4), ""},
		// gamma is not read without Affine, but a gamma that is passed must fit.
		{"FoldScaleShift gamma short without Affine", func(f *foldCall) {
			f.desc.Flags = 0
			f.gamma = f.gamma[:1]
		}, (*foldCall).foldScaleShift, vectorLength("FoldScaleShift", "gamma", 1), ""},
		{"ForwardScaleShift x short", func(f *foldCall) { f.x = f.x[:23] },
			(*foldCall).forwardScaleShift, tensorLength("ForwardScaleShift", "x", 23),
			"bnorm: ForwardScaleShift: x has 23 elements but the element count of shape " +
				"[2 3 4] is 24"},
		{"ForwardScaleShift scale long", func(f *foldCall) { f.scale = make([]float32, 4) },
			(*foldCall).forwardScaleShift, vectorLength("ForwardScaleShift", "scale", 4), ""},
		{"FoldIntoLayer weights not a multiple", func(f *foldCall) { f.weights = f.weights[:11] },
			(*foldCall).foldIntoLayer,
			bnorm.LengthError{Op: "FoldIntoLayer", Arg: "weights", Got: 11, Want: 3,
				Of: "num_features", Multiple: true},
			"bnorm: FoldIntoLayer: weights has 11 elements, not a multiple of num_features (3)"},
		{"FoldIntoLayer weights fewer than num_features",
			func(f *foldCall) { f.weights = f.weights[:2] }, (*foldCall).foldIntoLayer,
			bnorm.LengthError{Op: "FoldIntoLayer", Arg: "weights", Got: 2, Want: 3,
				Of: "num_features", Multiple: true}, ""},
		{"FoldIntoLayer folded_weights short", func(f *foldCall) { f.foldedW = f.foldedW[:9] },
			(*foldCall).foldIntoLayer,
			bnorm.LengthError{Op: "FoldIntoLayer", Arg: "folded_weights", Got: 9, Want: 12,
				Of: "the element count of weights"},
			"bnorm: FoldIntoLayer: folded_weights has 9 elements but the element count of " +
				"weights is 12"},
		{"FoldIntoLayer bias long", func(f *foldCall) { f.bias = make([]float32, 4) },
			(*foldCall).foldIntoLayer, vectorLength("FoldIntoLayer", "bias", 4), ""},
		{"FoldIntoLayer mean short", func(f *foldCall) { f.mean = f.mean[:2] },
			(*foldCall).foldIntoLayer, vectorLength("FoldIntoLayer", "mean", 2), ""},
		{"FoldIntoLayer folded_bias long", func(f *foldCall) { f.foldedB = make([]float32, 6) },
			(*foldCall).foldIntoLayer, vectorLength("FoldIntoLayer", "folded_bias", 6), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFoldCall()
			before, err := callBroken(f, c.breakIt, c.call)
			expectLengthError(t, err, c.want)
			if c.text != "" {
				expectErrorText(t, err, c.text)
			}
			expectUnchanged(t, f, before)
		})
	}
}

// The library's own checks, with its messages; the Go side adds nothing of
// its own where the library fails before reading the data.
func TestFoldingLibraryErrors(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(f *foldCall)
		call    func(f *foldCall) error
		op      string
		want    bnorm.Status
		message string
	}{
		{"FoldScaleShift eps 0", func(f *foldCall) { f.desc.Eps = 0 },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrInvalidArgument, "eps is 0; it must be finite and > 0"},
		{"FoldScaleShift eps -1", func(f *foldCall) { f.desc.Eps = -1 },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrInvalidArgument, "eps is -1; it must be finite and > 0"},
		{"ForwardScaleShift eps 0", func(f *foldCall) { f.desc.Eps = 0 },
			(*foldCall).forwardScaleShift, "ForwardScaleShift",
			bnorm.ErrInvalidArgument, "eps is 0; it must be finite and > 0"},
		{"FoldIntoLayer eps -0.5", func(f *foldCall) { f.desc.Eps = -0.5 },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrInvalidArgument, "eps is -0.5; it must be finite and > 0"},
		{"FoldIntoLayer eps NaN", func(f *foldCall) { f.desc.Eps = float32(math.NaN()) },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrInvalidArgument, "eps is nan; it must be finite and > 0"},
		// Not used by the folding calls, but validated as everywhere.
		{"FoldScaleShift momentum 2", func(f *foldCall) { f.desc.Momentum = 2 },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrInvalidArgument, "momentum is 2; it must be in [0, 1]"},
		{"FoldIntoLayer unknown flag bit", func(f *foldCall) { f.desc.Flags |= 1 << 4 },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrInvalidArgument, "flags 0x13 has unknown bits 0x10"},

		// num_features <= 0: no row length to derive, and no length checks.
		{"FoldIntoLayer NewDescriptor(0)", func(f *foldCall) { f.desc = bnorm.NewDescriptor(0) },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrInvalidDescriptor, "num_features is 0; it must be > 0"},
		{"FoldScaleShift negative num_features", func(f *foldCall) { f.desc.NumFeatures = -3 },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrInvalidDescriptor, "num_features is -3; it must be > 0"},

		{"ForwardScaleShift 5 channels for a 3-channel layer",
			func(f *foldCall) { f.shape = bnorm.Shape{2, 5, 4}; f.x = make([]float32, 40) },
			(*foldCall).forwardScaleShift, "ForwardScaleShift",
			bnorm.ErrFeatureMismatch, "input channel dimension (dim 1) is 5 but num_features is 3"},
		{"ForwardScaleShift rank 1", func(f *foldCall) { f.shape = bnorm.Shape{6} },
			(*foldCall).forwardScaleShift, "ForwardScaleShift",
			bnorm.ErrInvalidShape, "rank is 1; it must be 2 to 5"},

		{"FoldScaleShift mean nil", func(f *foldCall) { f.mean = nil },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrNullPointer, "mean is NULL"},
		{"FoldScaleShift gamma nil with Affine", func(f *foldCall) { f.gamma = nil },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrNullPointer, "gamma is NULL but BNORM_FLAG_AFFINE is set"},
		{"ForwardScaleShift shift empty", func(f *foldCall) { f.shift = []float32{} },
			(*foldCall).forwardScaleShift, "ForwardScaleShift",
			bnorm.ErrNullPointer, "shift is NULL"},
		{"FoldIntoLayer weights nil", func(f *foldCall) { f.weights = nil },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrNullPointer, "weights is NULL"},
		{"FoldIntoLayer folded_bias nil", func(f *foldCall) { f.foldedB = nil },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrNullPointer, "folded_bias is NULL"},

		{"FoldScaleShift shift is scale", func(f *foldCall) { f.shift = f.scale },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrAliasing, "scale overlaps shift"},
		{"FoldScaleShift scale is mean", func(f *foldCall) { f.scale = f.mean },
			(*foldCall).foldScaleShift, "FoldScaleShift",
			bnorm.ErrAliasing, "scale overlaps mean"},
		{"ForwardScaleShift y one element past x", func(f *foldCall) {
			buf := make([]float32, len(f.x)+1)
			copy(buf, f.x)
			f.x, f.y = buf[:len(f.x)], buf[1:]
		}, (*foldCall).forwardScaleShift, "ForwardScaleShift",
			bnorm.ErrAliasing, "y overlaps x (in place is allowed only with the same pointer)"},
		{"FoldIntoLayer folded_weights one element past weights", func(f *foldCall) {
			buf := make([]float32, len(f.weights)+1)
			copy(buf, f.weights)
			f.weights, f.foldedW = buf[:len(f.weights)], buf[1:]
		}, (*foldCall).foldIntoLayer, "FoldIntoLayer", bnorm.ErrAliasing,
			"folded_weights overlaps weights (in place is allowed only with the same pointer)"},
		{"FoldIntoLayer folded_bias is mean", func(f *foldCall) { f.foldedB = f.mean },
			(*foldCall).foldIntoLayer, "FoldIntoLayer",
			bnorm.ErrAliasing, "folded_bias overlaps mean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFoldCall()
			before, err := callBroken(f, c.breakIt, c.call)
			e := expectLibraryError(t, err, c.want, c.message)
			if e.Op != c.op {
				t.Errorf("got Op %s, want %s", e.Op, c.op)
			}
			expectErrorText(t, err, fmt.Sprintf("bnorm: %s: %s: %s", c.op, c.want.Name(), c.message))
			expectUnchanged(t, f, before)
		})
	}
}

// A convolution followed by batch norm, prepared for deployment: fold the
// batch norm into the convolution once, or keep the layer and precompute its
// scale and shift.
func Example_folding() {
	desc := bnorm.NewDescriptor(2) // eps 1e-5, Affine
	mean, variance := []float32{1, -2}, []float32{4, 0.25}
	gamma, beta := []float32{2, 1}, []float32{0.5, -1}

	// Folded into the layer before: a linear layer of 2 outputs and 3
	// inputs, weights (out, in), so 3 values per row.
	weights := []float32{1, 2, 3, -1, 0, 1}
	bias := []float32{0.5, 0}
	if err := bnorm.FoldIntoLayer(desc, weights, bias, mean, variance, gamma, beta,
		weights, bias); err != nil { // in place
		fmt.Println(err)
		return
	}
	fmt.Printf("folded weights %.3f\nfolded bias %.3f\n", weights, bias)

	// Or the layer as y = x * scale + shift.
	scale, shift := make([]float32, 2), make([]float32, 2)
	if err := bnorm.FoldScaleShift(desc, mean, variance, gamma, beta, scale, shift); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("scale %.3f\nshift %.3f\n", scale, shift)
	shape := bnorm.Shape{1, 2, 3} // NCHW: channel 0 is x[0:3], channel 1 is x[3:6]
	x := []float32{1, 3, 5, -2, -1, 0}
	y := make([]float32, len(x))
	if err := bnorm.ForwardScaleShift(desc, shape, x, y, scale, shift); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("y %.3f\n", y)

	// Too few weights for 2 rows is caught before calling the library.
	err := bnorm.FoldIntoLayer(desc, weights[:5], nil, mean, variance, gamma, beta,
		make([]float32, 5), make([]float32, 2))
	fmt.Println(err, errors.Is(err, bnorm.ErrLength))
	// And eps <= 0 by the library.
	desc.Eps = 0
	err = bnorm.FoldScaleShift(desc, mean, variance, gamma, beta, scale, shift)
	fmt.Println(err, errors.Is(err, bnorm.ErrInvalidArgument))
	// Output:
	// folded weights [1.000 2.000 3.000 -2.000 0.000 2.000]
	// folded bias [0.000 3.000]
	// scale [1.000 2.000]
	// shift [-0.500 3.000]
	// y [0.500 2.500 4.500 -1.000 1.000 3.000]
	// bnorm: FoldIntoLayer: weights has 5 elements, not a multiple of num_features (2) true
	// bnorm: FoldScaleShift: BNORM_ERR_INVALID_ARGUMENT: eps is 0; it must be finite and > 0 true
}
