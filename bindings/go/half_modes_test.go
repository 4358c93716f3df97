package bnorm_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"bnorm"
)

// Every call that takes tensors, run on bf16 or f16 tensors and on the same
// values as float32, with what the library promises:
//   - forward calls: bit for bit, each tensor output of the 16-bit call is the
//     float32 call's output rounded to the type (nearest, ties to even), and
//     every per-channel output and exchanged block is the float32 call's.
//     Against the float64 reference rounded to the type, each tensor output is
//     within 1 ulp, except where the float32 arithmetic itself is off by more
//     than half an ulp of the type (an output that cancels far below its
//     terms); there the float32 output must meet the float32 bound;
//   - backward calls (since 1.4.0) compute in double, so they are not the
//     float32 call's: dx is within 1 ulp of the float64 reference rounded to
//     the type everywhere, also where it cancels; d_residual is dy masked by
//     the ReLU, exactly; dgamma, dbeta and the grad sums are near the
//     reference; and the split phases give Backward's bits;
//   - the in-place variants write the same bits as the out-of-place call.

type mode int

const (
	modeInference mode = iota
	modeTraining
	modeBackward
	modeScaleShift
	modeResidualInference
	modeResidualTraining
	modeResidualBackward
	modeLocalStats
	modeNormalize
	modeBackwardReduce
	modeBackwardElementwise
	numModes
)

// backward is whether m is a backward call, which on 16-bit tensors computes
// in double.
func (m mode) backward() bool {
	return m == modeBackward || m == modeResidualBackward || m == modeBackwardReduce ||
		m == modeBackwardElementwise
}

func (m mode) String() string {
	return [...]string{"Inference", "Training", "Backward", "ScaleShift", "ResidualInference",
		"ResidualTraining", "ResidualBackward", "LocalStats", "Normalize", "BackwardReduce",
		"BackwardElementwise"}[m]
}

// halfCase is a layer, a shape, and the per-channel vectors every mode reads
// (float32 whatever the tensors are).
type halfCase struct {
	desc                    bnorm.Descriptor
	shape                   bnorm.Shape
	g                       geometry
	mean, variance          []float32
	gamma, beta             []float32 // nil without Affine
	scale, shift            []float32
	relu, global, trackStat bool
}

func newHalfCase(t *testing.T, rng *rand.Rand, shape bnorm.Shape, layout bnorm.Layout,
	flags bnorm.Flags) *halfCase {
	t.Helper()
	g := geometryOf(shape, layout)
	desc := bnorm.NewDescriptor(int64(g.c))
	desc.Layout, desc.Flags = layout, flags
	uniform := func(lo, hi float64) []float32 {
		v := make([]float32, g.c)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	c := &halfCase{desc: desc, shape: shape, g: g, mean: uniform(-1, 1), variance: uniform(0.1, 2),
		gamma: uniform(-2, 2), beta: uniform(-1, 1),
		scale: make([]float32, g.c), shift: make([]float32, g.c),
		relu: flags&bnorm.FuseReLU != 0, global: flags&bnorm.UseGlobalStats != 0,
		trackStat: flags&bnorm.TrackRunningStats != 0}
	if flags&bnorm.Affine == 0 {
		c.gamma, c.beta = nil, nil
	}
	if err := bnorm.FoldScaleShift(desc, c.mean, c.variance, c.gamma, c.beta, c.scale,
		c.shift); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *halfCase) String() string {
	return fmt.Sprintf("%v%v %s", c.desc.Layout, c.shape, flagsName(c.desc.Flags))
}

// tensors are what a mode reads, in one element type. y is a training
// forward's output, which the backward calls read for the ReLU mask, and mean
// and invstd that forward's saved statistics.
type tensors[E bnorm.Element] struct {
	x, residual, dy, y []E
	mean, invstd       []float32
}

// newTensors makes random tensors of type T, and the same values as float32.
func newTensors[T half](t *testing.T, rng *rand.Rand, c *halfCase) (tensors[T], tensors[float32]) {
	t.Helper()
	f := formatOf[T]()
	n := c.shape.Elements()
	random := func(lo, hi float64, center, spread []float64) []T {
		v := make([]T, n)
		for i := range v {
			r := lo + (hi-lo)*rng.Float64()
			if center != nil {
				ch := channelOf(c.g, i)
				r = center[ch] + spread[ch]*r
			}
			v[i] = T(f.round(float64(float32(r))))
		}
		return v
	}
	center, spread := make([]float64, c.g.c), make([]float64, c.g.c)
	for ch := range center {
		center[ch], spread[ch] = 6*rng.Float64()-3, 0.1+1.9*rng.Float64()
	}
	h := tensors[T]{x: random(-1, 1, center, spread), residual: random(-2, 2, nil, nil),
		dy: random(-1, 1, nil, nil), y: make([]T, n),
		mean: make([]float32, c.g.c), invstd: make([]float32, c.g.c)}
	runningMean, runningVar := clone(c.mean), clone(c.variance)
	if err := bnorm.ForwardTraining(c.desc, c.shape, h.x, h.y, c.gamma, c.beta, runningMean,
		runningVar, h.mean, h.invstd); err != nil {
		t.Fatalf("%s %v: %v", f.name, c, err)
	}
	single := tensors[float32]{x: upcast(h.x), residual: upcast(h.residual), dy: upcast(h.dy),
		y: upcast(h.y), mean: h.mean, invstd: h.invstd}
	return h, single
}

// channelOf is the channel of element i.
func channelOf(g geometry, i int) int {
	if g.nhwc {
		return i % g.c
	}
	return i / g.s % g.c
}

func upcast[T half](v []T) []float32 {
	f := formatOf[T]()
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(f.value(uint16(x)))
	}
	return out
}

func clone[E any](v []E) []E { return append([]E(nil), v...) }

// named is one output of a call.
type named[V any] struct {
	name   string
	values []V
}

// outputs are a call's tensors, per-channel vectors and exchanged blocks.
type outputs[E bnorm.Element] struct {
	tensors  []named[E]
	channels []named[float32]
	blocks   []named[float64]
}

// expectSameChannels fails unless each per-channel output in got has the
// bits of the same output in other, the result of `whose` call.
func expectSameChannels(t *testing.T, what, whose string, got, other []named[float32]) {
	t.Helper()
	for i, ch := range got {
		if !equalBits(ch.values, other[i].values) {
			t.Fatalf("%s: %s is not %s", what, ch.name, whose)
		}
	}
}

func bitsOf[E bnorm.Element](v E) uint32 {
	switch x := any(v).(type) {
	case float32:
		return math.Float32bits(x)
	case bnorm.BF16:
		return uint32(x)
	case bnorm.F16:
		return uint32(x)
	}
	panic("unreachable")
}

func sameBits[E bnorm.Element](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if bitsOf(a[i]) != bitsOf(b[i]) {
			return false
		}
	}
	return true
}

// filled is n copies of a NaN of type E, so that an element left unwritten
// shows.
func filled[E bnorm.Element](n int) []E {
	v := make([]E, n)
	var nan E
	switch p := any(&nan).(type) {
	case *float32:
		*p = float32(math.NaN())
	case *bnorm.BF16:
		*p = 0x7fc0
	case *bnorm.F16:
		*p = 0x7e00
	}
	for i := range v {
		v[i] = nan
	}
	return v
}

// runMode runs m on tensors of type E, checking on the way that its in-place
// variants write the same bits.
func runMode[E bnorm.Element](t *testing.T, m mode, c *halfCase, in tensors[E]) outputs[E] {
	t.Helper()
	d, s, n, k := c.desc, c.shape, c.shape.Elements(), c.g.c
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v %s: %v", m, what, err)
		}
	}
	same := func(what string, a, b []E) {
		t.Helper()
		if !sameBits(a, b) {
			t.Fatalf("%v: %s differs from the out-of-place call", m, what)
		}
	}
	var reluY []E
	if c.relu {
		reluY = in.y
	}
	var out outputs[E]
	switch m {
	case modeInference:
		y, xy := filled[E](n), clone(in.x)
		must("", bnorm.ForwardInference(d, s, in.x, y, c.mean, c.variance, c.gamma, c.beta))
		must("in place", bnorm.ForwardInference(d, s, xy, xy, c.mean, c.variance, c.gamma, c.beta))
		same("y over x", xy, y)
		out.tensors = []named[E]{{"y", y}}
	case modeTraining, modeResidualTraining:
		// Out of place, y over x, and (with a residual) y over residual.
		variants := 2
		if m == modeResidualTraining {
			variants = 3
		}
		for v := 0; v < variants; v++ {
			var runningMean, runningVar []float32
			if c.trackStat {
				runningMean, runningVar = clone(c.mean), clone(c.variance)
			}
			saveMean, saveInvstd := filled[float32](k), filled[float32](k)
			x, residual, y := in.x, in.residual, filled[E](n)
			switch v {
			case 1:
				x = clone(in.x)
				y = x
			case 2:
				residual = clone(in.residual)
				y = residual
			}
			var err error
			if m == modeTraining {
				err = bnorm.ForwardTraining(d, s, x, y, c.gamma, c.beta, runningMean, runningVar,
					saveMean, saveInvstd)
			} else {
				err = bnorm.ForwardTrainingResidual(d, s, x, residual, y, c.gamma, c.beta,
					runningMean, runningVar, saveMean, saveInvstd)
			}
			must(fmt.Sprintf("variant %d", v), err)
			channels := []named[float32]{{"save_mean", saveMean}, {"save_invstd", saveInvstd},
				{"running_mean", runningMean}, {"running_var", runningVar}}
			if v == 0 {
				out.tensors, out.channels = []named[E]{{"y", y}}, channels
				continue
			}
			same(fmt.Sprintf("variant %d", v), y, out.tensors[0].values)
			expectSameChannels(t, fmt.Sprintf("%v variant %d", m, v), "variant 0's", channels,
				out.channels)
		}
	case modeBackward:
		dx, dgamma, dbeta := filled[E](n), make([]float32, k), make([]float32, k)
		must("", bnorm.Backward(d, s, in.x, in.dy, reluY, c.gamma, in.mean, in.invstd, dx,
			dgamma, dbeta))
		dyDx := clone(in.dy)
		must("in place", bnorm.Backward(d, s, in.x, dyDx, reluY, c.gamma, in.mean, in.invstd,
			dyDx, nil, nil))
		same("dx over dy", dyDx, dx)
		out.tensors = []named[E]{{"dx", dx}}
		out.channels = []named[float32]{{"dgamma", dgamma}, {"dbeta", dbeta}}
	case modeScaleShift:
		y, xy := filled[E](n), clone(in.x)
		must("", bnorm.ForwardScaleShift(d, s, in.x, y, c.scale, c.shift))
		must("in place", bnorm.ForwardScaleShift(d, s, xy, xy, c.scale, c.shift))
		same("y over x", xy, y)
		out.tensors = []named[E]{{"y", y}}
	case modeResidualInference:
		y, xy, ry := filled[E](n), clone(in.x), clone(in.residual)
		must("", bnorm.ForwardInferenceResidual(d, s, in.x, in.residual, y, c.mean, c.variance,
			c.gamma, c.beta))
		must("over x", bnorm.ForwardInferenceResidual(d, s, xy, in.residual, xy, c.mean,
			c.variance, c.gamma, c.beta))
		must("over residual", bnorm.ForwardInferenceResidual(d, s, in.x, ry, ry, c.mean,
			c.variance, c.gamma, c.beta))
		same("y over x", xy, y)
		same("y over residual", ry, y)
		out.tensors = []named[E]{{"y", y}}
	case modeResidualBackward:
		dx, dResidual := filled[E](n), filled[E](n)
		dgamma, dbeta := make([]float32, k), make([]float32, k)
		must("", bnorm.BackwardResidual(d, s, in.x, in.dy, reluY, c.gamma, in.mean, in.invstd,
			dx, dResidual, dgamma, dbeta))
		dyDx, other := clone(in.dy), filled[E](n)
		must("dx over dy", bnorm.BackwardResidual(d, s, in.x, dyDx, reluY, c.gamma, in.mean,
			in.invstd, dyDx, other, nil, nil))
		same("dx over dy", dyDx, dx)
		same("d_residual beside dx over dy", other, dResidual)
		dyDr := clone(in.dy)
		must("d_residual over dy", bnorm.BackwardResidual(d, s, in.x, dyDr, reluY, c.gamma,
			in.mean, in.invstd, other, dyDr, nil, nil))
		same("d_residual over dy", dyDr, dResidual)
		same("dx beside d_residual over dy", other, dx)
		out.tensors = []named[E]{{"dx", dx}, {"d_residual", dResidual}}
		out.channels = []named[float32]{{"dgamma", dgamma}, {"dbeta", dbeta}}
	case modeLocalStats:
		block := make([]float64, bnorm.SplitValuesPerChannel*k)
		must("", bnorm.LocalStats(d, s, in.x, block))
		out.blocks = []named[float64]{{"partial_stats", block}}
	case modeNormalize:
		y, xy := filled[E](n), clone(in.x)
		must("", bnorm.ForwardNormalize(d, s, in.x, y, c.gamma, c.beta, in.mean, in.invstd))
		must("in place", bnorm.ForwardNormalize(d, s, xy, xy, c.gamma, c.beta, in.mean, in.invstd))
		same("y over x", xy, y)
		out.tensors = []named[E]{{"y", y}}
	case modeBackwardReduce, modeBackwardElementwise:
		sums := make([]float64, bnorm.SplitValuesPerChannel*k)
		dgamma, dbeta := make([]float32, k), make([]float32, k)
		must("reduce", bnorm.BackwardReduce(d, s, in.x, in.dy, reluY, in.mean, in.invstd, sums,
			dgamma, dbeta))
		if m == modeBackwardReduce {
			out.blocks = []named[float64]{{"grad_sums", sums}}
			out.channels = []named[float32]{{"dgamma", dgamma}, {"dbeta", dbeta}}
			break
		}
		dx, dyDx := filled[E](n), clone(in.dy)
		must("", bnorm.BackwardElementwise(d, s, in.x, in.dy, reluY, c.gamma, in.mean, in.invstd,
			sums, dx))
		must("in place", bnorm.BackwardElementwise(d, s, in.x, dyDx, reluY, c.gamma, in.mean,
			in.invstd, sums, dyDx))
		same("dx over dy", dyDx, dx)
		out.tensors = []named[E]{{"dx", dx}}
	}
	return out
}

// referenceOf is the float64 reference of each tensor output of m, from the
// float32 inputs (the 16-bit inputs' exact values).
func referenceOf(m mode, c *halfCase, in tensors[float32]) [][]float64 {
	eps := float64(c.desc.Eps)
	dx := func() []float64 {
		return referenceBackward(c.g, in.x, in.dy, in.y, c.gamma, in.mean, in.invstd, c.relu,
			c.global).dx
	}
	switch m {
	case modeInference:
		return [][]float64{referenceInference(c.g, in.x, c.mean, c.variance, c.gamma, c.beta,
			eps, c.relu)}
	case modeTraining:
		return [][]float64{referenceTraining(c.g, in.x, c.gamma, c.beta, c.mean, c.variance, eps,
			0, c.relu).y}
	case modeResidualInference:
		bn := referenceInference(c.g, in.x, c.mean, c.variance, c.gamma, c.beta, eps, false)
		return [][]float64{withResidual(bn, in.residual, c.relu)}
	case modeResidualTraining:
		bn := referenceTraining(c.g, in.x, c.gamma, c.beta, c.mean, c.variance, eps, 0, false).y
		return [][]float64{withResidual(bn, in.residual, c.relu)}
	case modeBackward, modeBackwardElementwise:
		return [][]float64{dx()}
	case modeResidualBackward:
		return [][]float64{dx(), float64s(maskedByReLU(in.dy, in.y, c.relu))}
	case modeScaleShift, modeNormalize:
		y := make([]float64, len(in.x))
		for i, x := range in.x {
			ch := channelOf(c.g, i)
			if m == modeScaleShift {
				y[i] = float64(x)*float64(c.scale[ch]) + float64(c.shift[ch])
			} else {
				scale, shift := affine(c.gamma, c.beta, ch)
				y[i] = (float64(x)-float64(in.mean[ch]))*float64(in.invstd[ch])*scale + shift
			}
			y[i] = relu(y[i], c.relu)
		}
		return [][]float64{y}
	}
	return nil // per-channel outputs only
}

// tally counts the tensor outputs checked against the reference, and those
// where the float32 arithmetic was off by more than half an ulp of the type.
type tally struct{ elements, cancelled int }

func (a *tally) add(b tally) {
	a.elements, a.cancelled = a.elements+b.elements, a.cancelled+b.cancelled
}

// checkMode runs m on the 16-bit tensors and on their float32 values, and
// checks every promise between the two and against the float64 reference
// (for the backward calls, checkHalfBackward's).
func checkMode[T half](t *testing.T, m mode, c *halfCase, h tensors[T],
	single tensors[float32]) tally {
	t.Helper()
	f := formatOf[T]()
	what := fmt.Sprintf("%s %v %v", f.name, m, c)
	got, want := runMode(t, m, c, h), runMode(t, m, c, single)
	if m.backward() {
		return checkHalfBackward(t, what, m, c, h, single, got, want)
	}
	expectSameChannels(t, what, "the float32 call's", got.channels, want.channels)
	for i, b := range got.blocks {
		if !equalBits64(b.values, want.blocks[i].values) {
			t.Fatalf("%s: %s is not the float32 call's", what, b.name)
		}
	}
	expected := referenceOf(m, c, single)
	if len(expected) != len(got.tensors) || len(want.tensors) != len(got.tensors) {
		t.Fatalf("%s: %d outputs, %d references", what, len(got.tensors), len(expected))
	}
	var counts tally
	for i, out := range got.tensors {
		name := what + " " + out.name
		expectRoundedFloat32(t, name, out.values, want.tensors[i].values)
		counts.add(expectNearReference(t, name, out.values, want.tensors[i].values, expected[i]))
	}
	return counts
}

// expectRoundedFloat32 fails unless got is single rounded to the type,
// element by element (a NaN: any quiet NaN).
func expectRoundedFloat32[T half](t *testing.T, what string, got []T, single []float32) {
	t.Helper()
	f := formatOf[T]()
	for i, s := range single {
		g := uint16(got[i])
		if s != s {
			if !f.isNaN(g) || g&f.quietBit() == 0 {
				t.Fatalf("%s[%d]: %#04x is not a quiet NaN", what, i, g)
			}
		} else if want := f.round(float64(s)); g != want {
			t.Fatalf("%s[%d]: %#04x, but the float32 call's %g rounds to %#04x", what, i, g, s,
				want)
		}
	}
}

// expectNearReference: within 1 ulp of the reference rounded to the type,
// unless the float32 output is itself more than half an ulp of the type away
// from the reference; then the float32 output must meet the float32 bound.
func expectNearReference[T half](t *testing.T, what string, got []T, single []float32,
	expected []float64) tally {
	t.Helper()
	f := formatOf[T]()
	bound := outputTolerance * math.Max(1, maxAbs(expected))
	var counts tally
	for i, e := range expected {
		counts.elements++
		if f32Error := math.Abs(float64(single[i]) - e); f32Error > f.ulp(e)/2 {
			counts.cancelled++
			if f32Error > bound {
				t.Fatalf("%s[%d]: the float32 call gives %g, reference %g (bound %g)", what, i,
					single[i], e, bound)
			}
			continue
		}
		rounded := f.round(e)
		if apart := ulpsApart(uint16(got[i]), rounded); apart > 1 {
			t.Fatalf("%s[%d]: %#04x (%g) is %d ulps from the reference %g (%#04x)", what, i,
				uint16(got[i]), f.value(uint16(got[i])), apart, e, rounded)
		}
	}
	return counts
}

// checkHalfBackward checks a backward call's outputs on 16-bit tensors (got)
// against the float64 reference; want, the float32 call's, only counts where
// float32 arithmetic is off by more than half an ulp of the type.
func checkHalfBackward[T half](t *testing.T, what string, m mode, c *halfCase, h tensors[T],
	single tensors[float32], got outputs[T], want outputs[float32]) tally {
	t.Helper()
	f := formatOf[T]()
	ref := referenceBackward(c.g, single.x, single.dy, single.y, c.gamma, single.mean,
		single.invstd, c.relu, c.global)
	for _, ch := range got.channels {
		expected, scale := ref.dgamma, ref.dgammaScale
		if ch.name == "dbeta" {
			expected, scale = ref.dbeta, ref.dbetaScale
		}
		expectNear(t, what+" "+ch.name, ch.values, expected,
			func(i int) float64 { return sumTolerance * scale[i] })
	}
	if m == modeBackwardReduce {
		// Per channel: the count exactly, sum(g) and sum(g * (x - mean)).
		sums := got.blocks[0].values
		expected := gradBlock(c.g, single.x, single.dy, single.y, single.mean, c.relu)
		for ch := 0; ch < c.g.c; ch++ {
			scales := []float64{0, ref.dbetaScale[ch], ref.dgammaScale[ch] / float64(single.invstd[ch])}
			for j, scale := range scales {
				at := perChannel*ch + j
				if d := math.Abs(sums[at] - expected[at]); !(d <= sumTolerance*scale) {
					t.Fatalf("%s: grad_sums[%d] = %g, reference %g", what, at, sums[at], expected[at])
				}
			}
		}
	}
	if m == modeBackwardReduce || m == modeBackwardElementwise {
		// The phases with the reduce call's own sums: Backward's bits.
		whole := runMode(t, modeBackward, c, h)
		expectSameChannels(t, what, "Backward's", got.channels, whole.channels)
		for i, out := range got.tensors {
			if !sameBits(out.values, whole.tensors[i].values) {
				t.Fatalf("%s: %s is not Backward's", what, out.name)
			}
		}
	}
	expected := referenceOf(m, c, single)
	if len(expected) != len(got.tensors) || len(want.tensors) != len(got.tensors) {
		t.Fatalf("%s: %d outputs, %d references", what, len(got.tensors), len(expected))
	}
	var counts tally
	for i, out := range got.tensors {
		ulps := 1 // dx
		if out.name == "d_residual" {
			ulps = 0 // masked dy, a value of the type
		}
		expectWithinULPs(t, what+" "+out.name, out.values, expected[i], ulps)
		for j, e := range expected[i] {
			counts.elements++
			if math.Abs(float64(want.tensors[i].values[j])-e) > f.ulp(e)/2 {
				counts.cancelled++
			}
		}
	}
	return counts
}

// expectWithinULPs fails unless each element of got is within ulps of the
// reference rounded to the type, and NaN exactly where the reference is.
func expectWithinULPs[T half](t *testing.T, what string, got []T, expected []float64, ulps int) {
	t.Helper()
	f := formatOf[T]()
	for i, e := range expected {
		g, rounded := uint16(got[i]), f.round(e)
		if f.isNaN(g) || math.IsNaN(e) {
			if !f.isNaN(g) || !math.IsNaN(e) {
				t.Fatalf("%s[%d]: %#04x (%g), reference %g", what, i, g, f.value(g), e)
			}
		} else if apart := ulpsApart(g, rounded); apart > ulps {
			t.Fatalf("%s[%d]: %#04x (%g) is %d ulps from the reference %g (%#04x)", what, i, g,
				f.value(g), apart, e, rounded)
		}
	}
}
