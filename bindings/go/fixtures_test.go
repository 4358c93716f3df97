package bnorm_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"bnorm"
)

// batch holds every buffer the three calls take, with data that gives the
// normalization something to undo: per-channel centers and spreads.
type batch struct {
	desc  bnorm.Descriptor
	shape bnorm.Shape

	x, y, dy, dx                         []float32
	gamma, beta, runningMean, runningVar []float32
	saveMean, saveInvstd, dgamma, dbeta  []float32
}

// placeholderElements sizes the tensors of a shape the library rejects: the
// binding passes any length through, since the library fails before reading.
const placeholderElements = 24

func newBatch(desc bnorm.Descriptor, shape bnorm.Shape, seed int64) *batch {
	rng := rand.New(rand.NewSource(seed))
	elements, channels := shape.Elements(), int(desc.NumFeatures)
	if elements == 0 {
		elements = placeholderElements
	}
	if channels <= 0 {
		channels = 3
	}
	uniform := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	b := &batch{
		desc: desc, shape: shape,
		x: uniform(elements, -1, 1), y: make([]float32, elements),
		dy: uniform(elements, -1, 1), dx: make([]float32, elements),
		gamma: uniform(channels, -1.5, 1.5), beta: uniform(channels, -1, 1),
		runningMean: uniform(channels, -1, 1), runningVar: uniform(channels, 0.5, 2),
		saveMean: make([]float32, channels), saveInvstd: make([]float32, channels),
		dgamma: make([]float32, channels), dbeta: make([]float32, channels),
	}
	if shape.Channels(desc.Layout) == desc.NumFeatures && shape.Elements() > 0 {
		g := geometryOf(shape, desc.Layout)
		for c := 0; c < g.c; c++ {
			center, spread := 4*rng.Float64()-2, 0.2+2*rng.Float64()
			g.forChannel(c, func(i int) { b.x[i] = float32(center + spread*float64(b.x[i])) })
		}
	}
	return b
}

func (b *batch) inference() error {
	return bnorm.ForwardInference(b.desc, b.shape, b.x, b.y, b.runningMean, b.runningVar,
		b.gamma, b.beta)
}

func (b *batch) training() error {
	return bnorm.ForwardTraining(b.desc, b.shape, b.x, b.y, b.gamma, b.beta, b.runningMean,
		b.runningVar, b.saveMean, b.saveInvstd)
}

func (b *batch) backward() error {
	return bnorm.Backward(b.desc, b.shape, b.x, b.dy, b.y, b.gamma, b.saveMean, b.saveInvstd,
		b.dx, b.dgamma, b.dbeta)
}

func (b *batch) buffers() [][]float32 {
	return [][]float32{b.x, b.y, b.dy, b.dx, b.gamma, b.beta, b.runningMean, b.runningVar,
		b.saveMean, b.saveInvstd, b.dgamma, b.dbeta}
}

// buffered is a call's fixture (a batch or a foldCall): every buffer it passes.
type buffered interface {
	buffers() [][]float32
}

// snapshot copies every buffer, to prove later that a call wrote nothing.
func snapshot(f buffered) [][]float32 {
	var copies [][]float32
	for _, buf := range f.buffers() {
		copies = append(copies, append([]float32(nil), buf...))
	}
	return copies
}

// expectUnchanged fails the test if any buffer differs from the snapshot.
func expectUnchanged(t *testing.T, f buffered, before [][]float32) {
	t.Helper()
	for i, buf := range f.buffers() {
		if !equalBits(buf, before[i]) {
			t.Errorf("buffer %d was written by a failing call", i)
		}
	}
}

// callBroken breaks one thing in a valid fixture and makes the call, which
// should fail. It returns the buffers as they were before the call, for
// expectUnchanged.
func callBroken[F buffered](f F, breakIt func(F), call func(F) error) ([][]float32, error) {
	breakIt(f)
	before := snapshot(f)
	return before, call(f)
}

// expectLengthError fails the test unless err is the binding's length error
// want: it matches ErrLength and is not a library error.
func expectLengthError(t *testing.T, err error, want bnorm.LengthError) {
	t.Helper()
	var e *bnorm.LengthError
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a *bnorm.LengthError", err)
	}
	if *e != want {
		t.Errorf("got  %+v\nwant %+v", *e, want)
	}
	if !errors.Is(err, bnorm.ErrLength) {
		t.Error("errors.Is(err, bnorm.ErrLength) is false")
	}
	var libraryError *bnorm.Error
	if errors.As(err, &libraryError) {
		t.Errorf("a length error is also a library error: %v", libraryError)
	}
}

// expectLibraryError fails the test unless err is a *bnorm.Error with the
// status want and the library's message, matching that sentinel only and not
// ErrLength. It returns the error for further checks.
func expectLibraryError(t *testing.T, err error, want bnorm.Status, message string) *bnorm.Error {
	t.Helper()
	var e *bnorm.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a *bnorm.Error", err)
	}
	if e.Status != want || e.Message != message {
		t.Errorf("got status %s, message %q\nwant status %s, message %q",
			e.Status.Name(), e.Message, want.Name(), message)
	}
	for _, s := range allSentinels {
		if errors.Is(err, s) != (s == want) {
			t.Errorf("errors.Is(err, %s) = %v", s.Name(), errors.Is(err, s))
		}
	}
	if errors.Is(err, bnorm.ErrLength) {
		t.Error("a library error matches ErrLength")
	}
	return e
}

// expectErrorText fails the test unless err is an error whose text is want.
func expectErrorText(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if got := err.Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// equalBits compares bit patterns, so NaNs compare equal to themselves.
func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// expectNear fails the test at the worst element farther from the reference
// than tolerance(i) allows.
func expectNear(t *testing.T, what string, got []float32, want []float64,
	tolerance func(i int) float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, reference has %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if d <= tolerance(i) {
			continue
		}
		// A NaN result is never within tolerance; the last one is reported.
		if excess := d / tolerance(i); at < 0 || excess > worst || math.IsNaN(excess) {
			worst, at = excess, i
		}
	}
	if at >= 0 {
		t.Errorf("%s[%d] = %g, reference %g: error %.3g exceeds the tolerance %.3g", what, at,
			got[at], want[at], math.Abs(float64(got[at])-want[at]), tolerance(at))
	}
}

// within is a tolerance that is the same for every element.
func within(tolerance float64) func(int) float64 {
	return func(int) float64 { return tolerance }
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

func flagsName(f bnorm.Flags) string {
	if f == 0 {
		return "none"
	}
	names := ""
	for _, n := range []struct {
		flag bnorm.Flags
		name string
	}{{bnorm.Affine, "affine"}, {bnorm.TrackRunningStats, "track"}, {bnorm.FuseReLU, "relu"},
		{bnorm.UseGlobalStats, "global"}} {
		if f&n.flag != 0 {
			names += fmt.Sprintf("+%s", n.name)
		}
	}
	return names[1:]
}
