package bnorm_test

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"bnorm"
)

// bf16 and f16 tensors: the conversions (half_oracle_test.go), every call on
// them against the float64 reference and, for the forward calls, their
// float32 counterpart (half_modes_test.go), NaN, infinities, overflow and
// subnormals, on every SIMD target, and what can go wrong with them.

// halfShapes are, for the channel count, a random rank-4 shape and one of
// spatial size 1 (N x C x 1 x 1, or N x 1 x 1 x C).
func halfShapes(rng *rand.Rand, layout bnorm.Layout, channels int64) []bnorm.Shape {
	spatialOne := bnorm.Shape{3, channels, 1, 1}
	if layout == bnorm.NHWC {
		spatialOne = bnorm.Shape{3, 1, 1, channels}
	}
	return []bnorm.Shape{randomShape(rng, layout, 4, channels), spatialOne}
}

// halfFlagSets cover affine or not, ReLU, running statistics, and frozen
// statistics in the backward calls.
var halfFlagSets = []bnorm.Flags{
	bnorm.Affine | bnorm.TrackRunningStats | bnorm.FuseReLU,
	0,
	bnorm.Affine | bnorm.UseGlobalStats,
}

func checkEveryMode[T half](t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	var counts tally
	calls := 0
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		for _, channels := range []int64{1, 3, 17, 67} {
			for _, shape := range halfShapes(rng, layout, channels) {
				for _, flags := range halfFlagSets {
					c := newHalfCase(t, rng, shape, layout, flags)
					h, single := newTensors[T](t, rng, c)
					for m := mode(0); m < numModes; m++ {
						counts.add(checkMode(t, m, c, h, single))
						calls++
					}
				}
			}
		}
	}
	if calls != 2*4*2*len(halfFlagSets)*int(numModes) {
		t.Errorf("%d cases", calls)
	}
	// Where the float32 arithmetic cancels, the 1-ulp bound gives way to the
	// float32 bound for forward outputs (backward ones, computed in double,
	// keep it); how often, for the record.
	t.Logf("%s: %d cases, %d outputs, %d beyond half an ulp in float32", formatOf[T]().name,
		calls, counts.elements, counts.cancelled)
}

func TestEveryCallOnBF16KeepsItsPromises(t *testing.T) {
	checkEveryMode[bnorm.BF16](t, 61)
}

func TestEveryCallOnF16KeepsItsPromises(t *testing.T) {
	checkEveryMode[bnorm.F16](t, 62)
}

// The library converts and rounds 16-bit tensors itself on every target
// (Highway 1.0.3's own conversions are not exact on all of them), and computes
// the backward calls in double on each. The target cap is process-wide; no
// other test runs meanwhile (none calls t.Parallel).
func TestEveryTargetKeepsTheHalfPromises(t *testing.T) {
	defer func() {
		if err := bnorm.SetMaxTarget(""); err != nil {
			t.Error(err)
		}
	}()
	rng := rand.New(rand.NewSource(13))
	for _, target := range bnorm.Targets() {
		if err := bnorm.SetMaxTarget(target); err != nil {
			t.Fatal(err)
		}
		if got := bnorm.ActiveTarget(); got != target {
			t.Fatalf("capped at %s, running %s", target, got)
		}
		for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
			for _, channels := range []int64{1, 3, 17, 67} {
				shape := randomShape(rng, layout, 4, channels)
				c := newHalfCase(t, rng, shape, layout, halfFlagSets[0])
				hb, sb := newTensors[bnorm.BF16](t, rng, c)
				hf, sf := newTensors[bnorm.F16](t, rng, c)
				for m := mode(0); m < numModes; m++ {
					checkMode(t, m, c, hb, sb)
					checkMode(t, m, c, hf, sf)
				}
			}
		}
	}
}

// scaleShift runs ForwardScaleShift on (N, 2) tensors, channel c scaled by
// scale[c], and checks it is the float32 call rounded, bit for bit.
func scaleShift[T half](t *testing.T, x []T, scale []float32) []uint16 {
	t.Helper()
	d := bnorm.NewDescriptor(2)
	d.Flags = 0
	s := bnorm.Shape{int64(len(x) / 2), 2}
	shift := []float32{0, 0}
	y := filled[T](len(x))
	if err := bnorm.ForwardScaleShift(d, s, x, y, scale, shift); err != nil {
		t.Fatal(err)
	}
	x32, y32 := upcast(x), filled[float32](len(x))
	if err := bnorm.ForwardScaleShift(d, s, x32, y32, scale, shift); err != nil {
		t.Fatal(err)
	}
	expectRoundedFloat32(t, formatOf[T]().name+" scale shift", y, y32)
	out := make([]uint16, len(y))
	for i, v := range y {
		out[i] = uint16(v)
	}
	return out
}

func TestHalfNaNInfinityOverflowAndSubnormals(t *testing.T) {
	// Even indices are channel 0, scaled by 4; odd ones channel 1, scaled by a
	// power of 2 that takes them down.
	out := scaleShift(t, []bnorm.F16{
		0x7e00, // NaN
		0xfd00, // a signalling NaN, negative
		0x7c00, // inf
		0xfc00, // -inf
		0x7bff, // 65504: overflows when scaled by 4
		0x3c00, // 1 -> 2^-10
		0x0001, // the smallest subnormal, 2^-24 -> 2^-22, a subnormal
		0x0400, // the smallest normal, 2^-14 -> 2^-24, a subnormal
		0x03ff, // the largest subnormal -> a normal
		0x8001, // -2^-24 -> -2^-34, which rounds to -0
	}, []float32{4, 0x1p-10})
	want := []uint16{0x7c00, 0xfc00, 0x7c00, 0x1400, 0x0004, 0x0001, 0x0bfe, 0x8000}
	if !f16Format.isNaN(out[0]) || !f16Format.isNaN(out[1]) || fmt.Sprint(out[2:]) != fmt.Sprint(want) {
		t.Errorf("f16: got %#04x, want NaN, NaN, %#04x", out, want)
	}

	out = scaleShift(t, []bnorm.BF16{
		0x7fc0, // NaN
		0xff81, // a signalling NaN, negative
		0x7f7f, // the largest finite: overflows when scaled by 4
		0x3f80, // 1 -> 2^-3
		0x0001, // the smallest subnormal, 2^-133 -> 2^-131, a subnormal
		0x0080, // the smallest normal, 2^-126 -> 2^-129, a subnormal
	}, []float32{4, 0x1p-3})
	want = []uint16{0x7f80, 0x3e00, 0x0004, 0x0010}
	if !bf16Format.isNaN(out[0]) || !bf16Format.isNaN(out[1]) || fmt.Sprint(out[2:]) != fmt.Sprint(want) {
		t.Errorf("bf16: got %#04x, want NaN, NaN, %#04x", out, want)
	}
}

func TestHalfErrors(t *testing.T) {
	d := bnorm.NewDescriptor(3)
	s := bnorm.Shape{2, 3}
	ones := []float32{1, 1, 1}

	err := bnorm.ForwardInference(d, s, make([]bnorm.BF16, 5), make([]bnorm.BF16, 6), ones, ones,
		ones, ones)
	expectLengthError(t, err, bnorm.LengthError{Op: "ForwardInference", Arg: "x", Got: 5, Want: 6,
		Of: "the element count of shape [2 3]"})

	err = bnorm.BackwardResidual(d, s, make([]bnorm.F16, 6), make([]bnorm.F16, 6), nil, ones, ones,
		ones, make([]bnorm.F16, 6), nil, nil, nil)
	expectLibraryError(t, err, bnorm.ErrNullPointer, "d_residual is NULL")

	err = bnorm.ForwardTraining(d, bnorm.Shape{2, 4}, make([]bnorm.F16, 8), make([]bnorm.F16, 8),
		ones, ones, nil, nil, nil, nil)
	expectLibraryError(t, err, bnorm.ErrFeatureMismatch,
		"input channel dimension (dim 1) is 4 but num_features is 3")

	// A dtype no Element type has, through the binding's own path.
	err = bnorm.LocalStats(bnorm.WithDtype(d, 7), s, make([]bnorm.BF16, 6), make([]float64, 9))
	expectLibraryError(t, err, bnorm.ErrInvalidArgument, "dtype is 7; it must be "+
		"BNORM_DTYPE_F32 (0), BNORM_DTYPE_BF16 (1) or BNORM_DTYPE_F16 (2)")
}

// A dtype that disagrees with the data cannot be asked for: the tensors of a
// call share one element type, which sets the dtype, and mixing types does not
// compile. (A misaligned []BF16 or []F16 cannot be made either, short of
// unsafe conversions that checkptr rejects.) This builds a program that mixes
// them, with the go command running the tests.
func TestMixingElementTypesDoesNotCompile(t *testing.T) {
	goCommand := filepath.Join(runtime.GOROOT(), "bin", "go")
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module mixed\n\ngo 1.19\n\nrequire bnorm v0.0.0\n\nreplace bnorm => " + here + "\n",
		"main.go": `package main

import "bnorm"

func main() {
	x, y := make([]bnorm.BF16, 6), make([]float32, 6)
	_ = bnorm.ForwardInference(bnorm.NewDescriptor(3), bnorm.Shape{2, 3}, x, y, nil, nil, nil, nil)
}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCommand, "vet", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	output, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("mixing []bnorm.BF16 and []float32 compiled:\n%s", output)
	}
	if !strings.Contains(string(output), "type []float32 of y does not match") {
		t.Errorf("not the type error expected:\n%s", output)
	}
}

// Example_bf16 trains on bfloat16 activations; the layer's parameters and
// statistics stay float32.
func Example_bf16() {
	desc := bnorm.NewDescriptor(2) // Affine | TrackRunningStats
	shape := bnorm.Shape{4, 2}     // (N, C)
	x := make([]bnorm.BF16, shape.Elements())
	for i, v := range []float32{1, 10, 2, 20, 3, 30, 4, 40} {
		x[i] = bnorm.ToBF16(v)
	}
	y := make([]bnorm.BF16, len(x))
	gamma, beta := []float32{1, 2}, []float32{0, 1}
	runningMean, runningVar := []float32{0, 0}, []float32{1, 1}
	saveMean, saveInvstd := make([]float32, 2), make([]float32, 2)
	if err := bnorm.ForwardTraining(desc, shape, x, y, gamma, beta, runningMean, runningVar,
		saveMean, saveInvstd); err != nil {
		fmt.Println(err)
		return
	}
	values := make([]float32, len(y))
	for i, v := range y {
		values[i] = v.Float32()
	}
	fmt.Println("y", values)
	fmt.Println("batch mean", saveMean, "running mean", runningMean)
	// Output:
	// y [-1.34375 -1.6796875 -0.44726562 0.10546875 0.44726562 1.890625 1.34375 3.6875]
	// batch mean [2.5 25] running mean [0.25 2.5]
}
