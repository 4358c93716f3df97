package bnorm_test

import (
	"errors"
	"fmt"
	"math"

	"bnorm"
)

// lcg gives the same inputs on every run, in [-1, 1).
type lcg uint32

func (s *lcg) next() float32 {
	*s = *s*1664525 + 1013904223
	return float32(*s>>8)/16777216*2 - 1
}

// One BatchNorm2d layer driven the way a framework drives it (examples/
// correct_use.c): describe the layer once, normalize a training batch with its
// own statistics while updating the running ones, then run inference with the
// running statistics.
func Example() {
	const n, c, h, w = 32, 64, 28, 28
	desc := bnorm.NewDescriptor(c) // PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracking
	shape := bnorm.Shape{n, c, h, w}

	// Channel ch holds values around (ch % 7) - 3 with a channel-dependent
	// spread, so normalization has something to undo.
	x := make([]float32, shape.Elements())
	rng := lcg(12345)
	for i := range x {
		ch := i / (h * w) % c
		x[i] = float32(ch%7-3) + (0.5+0.5*float32(ch%5))*rng.next()
	}
	y := make([]float32, len(x))

	// gamma = 1 and beta = 0 make the layer a pure normalization; running
	// statistics start where PyTorch starts them.
	gamma, beta := make([]float32, c), make([]float32, c)
	runningMean, runningVar := make([]float32, c), make([]float32, c)
	saveMean, saveInvstd := make([]float32, c), make([]float32, c)
	for i := 0; i < c; i++ {
		gamma[i], runningVar[i] = 1, 1
	}

	err := bnorm.ForwardTraining(desc, shape, x, y, gamma, beta, runningMean, runningVar,
		saveMean, saveInvstd)
	if err != nil {
		fmt.Println(err)
		return
	}
	worstMean, worstVar := 0.0, 0.0
	for ch := 0; ch < c; ch++ {
		mean, variance := channelStats(y, n, c, h*w, ch)
		worstMean = math.Max(worstMean, math.Abs(mean))
		worstVar = math.Max(worstVar, math.Abs(variance-1))
	}
	fmt.Printf("training: every channel of y has mean 0 and variance 1: %v\n",
		worstMean < 1e-3 && worstVar < 1e-3)
	xMean, _ := channelStats(x, n, c, h*w, 3)
	fmt.Printf("running_mean moved by momentum 0.1 toward the batch mean: %v\n",
		math.Abs(float64(runningMean[3])-0.1*xMean) < 1e-5)

	if err := bnorm.ForwardInference(desc, shape, x, y, runningMean, runningVar, gamma, beta); err != nil {
		fmt.Println(err)
		return
	}
	worst := 0.0
	for i := range x {
		ch := i / (h * w) % c
		want := (float64(x[i]) - float64(runningMean[ch])) /
			math.Sqrt(float64(runningVar[ch])+float64(desc.Eps))
		worst = math.Max(worst, math.Abs(float64(y[i])-want))
	}
	fmt.Printf("inference: y = (x - running_mean) / sqrt(running_var + eps): %v\n", worst < 1e-4)
	// Output:
	// training: every channel of y has mean 0 and variance 1: true
	// running_mean moved by momentum 0.1 toward the batch mean: true
	// inference: y = (x - running_mean) / sqrt(running_var + eps): true
}

// channelStats is the mean and biased variance of channel ch of an NCHW
// tensor with s values per (batch, channel) plane.
func channelStats(t []float32, n, c, s, ch int) (mean, variance float64) {
	for b := 0; b < n; b++ {
		for _, v := range t[(b*c+ch)*s : (b*c+ch+1)*s] {
			mean += float64(v)
		}
	}
	mean /= float64(n * s)
	for b := 0; b < n; b++ {
		for _, v := range t[(b*c+ch)*s : (b*c+ch+1)*s] {
			variance += (float64(v) - mean) * (float64(v) - mean)
		}
	}
	return mean, variance / float64(n*s)
}

// A layer built for 128 channels fed a 64-channel input (examples/
// feature_mismatch.c): the call fails with the library's explanation and
// writes nothing, instead of reading past the end of gamma.
func Example_featureMismatch() {
	desc := bnorm.NewDescriptor(128)
	shape := bnorm.Shape{32, 64, 28, 28} // the input really has 64 channels, in dims[1]
	x := make([]float32, shape.Elements())
	y := make([]float32, len(x))
	gamma, beta := make([]float32, 128), make([]float32, 128)
	runningMean, runningVar := make([]float32, 128), make([]float32, 128)
	const sentinel = -12345
	for i := range y {
		y[i] = sentinel
	}

	err := bnorm.ForwardTraining(desc, shape, x, y, gamma, beta, runningMean, runningVar, nil, nil)
	fmt.Println(err)
	fmt.Println("errors.Is(err, bnorm.ErrFeatureMismatch):", errors.Is(err, bnorm.ErrFeatureMismatch))
	var e *bnorm.Error
	if errors.As(err, &e) {
		fmt.Printf("Status %s, Message %q\n", e.Status.Name(), e.Message)
	}
	untouched := true
	for _, v := range y {
		untouched = untouched && v == sentinel
	}
	fmt.Println("y untouched:", untouched)
	// Output:
	// bnorm: ForwardTraining: BNORM_ERR_FEATURE_MISMATCH: input channel dimension (dim 1) is 64 but num_features is 128
	// errors.Is(err, bnorm.ErrFeatureMismatch): true
	// Status BNORM_ERR_FEATURE_MISMATCH, Message "input channel dimension (dim 1) is 64 but num_features is 128"
	// y untouched: true
}

// When the channel count is only known at run time (examples/
// runtime_channels.c), taking num_features from the tensor's own channel
// dimension keeps the layer and the data in agreement by construction.
func Example_runtimeChannels() {
	inputs := []struct {
		layout bnorm.Layout
		shape  bnorm.Shape
	}{
		{bnorm.NCHW, bnorm.Shape{8, 3, 17, 17}},  // BatchNorm2d
		{bnorm.NHWC, bnorm.Shape{8, 17, 17, 3}},  // the same, channels last
		{bnorm.NCHW, bnorm.Shape{16, 10}},        // BatchNorm1d on features
		{bnorm.NCHW, bnorm.Shape{4, 6, 50}},      // BatchNorm1d on sequences
		{bnorm.NHWC, bnorm.Shape{2, 3, 4, 5, 7}}, // BatchNorm3d, channels last
		{bnorm.NCHW, bnorm.Shape{1, 5, 1, 1}},    // one value per channel
	}
	for _, in := range inputs {
		c := in.shape.Channels(in.layout)
		desc := bnorm.NewDescriptor(c)
		desc.Layout = in.layout

		x := make([]float32, in.shape.Elements())
		rng := lcg(2024)
		for i := range x {
			x[i] = 3 + rng.next()
		}
		y := make([]float32, len(x))
		gamma, beta := make([]float32, c), make([]float32, c)
		runningMean, runningVar := make([]float32, c), make([]float32, c)
		for i := range gamma {
			gamma[i], runningVar[i] = 1, 1
		}

		training := "ok"
		err := bnorm.ForwardTraining(desc, in.shape, x, y, gamma, beta, runningMean, runningVar,
			nil, nil)
		if errors.Is(err, bnorm.ErrTooFewValues) {
			// Batch statistics need two values per channel; inference does not.
			training = "one value per channel, skipped"
		} else if err != nil {
			training = err.Error()
		}
		inference := "ok"
		if err := bnorm.ForwardInference(desc, in.shape, x, y, runningMean, runningVar, gamma,
			beta); err != nil {
			inference = err.Error()
		}
		fmt.Printf("%v %v: num_features %d; training %s; inference %s\n",
			in.layout, in.shape, c, training, inference)
	}
	// Output:
	// NCHW [8 3 17 17]: num_features 3; training ok; inference ok
	// NHWC [8 17 17 3]: num_features 3; training ok; inference ok
	// NCHW [16 10]: num_features 10; training ok; inference ok
	// NCHW [4 6 50]: num_features 6; training ok; inference ok
	// NHWC [2 3 4 5 7]: num_features 7; training ok; inference ok
	// NCHW [1 5 1 1]: num_features 5; training one value per channel, skipped; inference ok
}
