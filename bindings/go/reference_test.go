package bnorm_test

import (
	"math"

	"bnorm"
)

// A float64 reference written from the definitions (PyTorch's batch_norm),
// with no attempt at speed, to check the library on any shape and layout.

// geometry sees a tensor as (N, C, S): batch, channels and the product of the
// spatial dims, whatever the rank, in either memory order.
type geometry struct {
	n, c, s int
	nhwc    bool
}

func geometryOf(shape bnorm.Shape, layout bnorm.Layout) geometry {
	g := geometry{n: int(shape[0]), s: 1, nhwc: layout == bnorm.NHWC}
	first, end := 2, len(shape)
	g.c = int(shape[1])
	if g.nhwc {
		first, end = 1, len(shape)-1
		g.c = int(shape[len(shape)-1])
	}
	for _, d := range shape[first:end] {
		g.s *= int(d)
	}
	return g
}

func (g geometry) perChannel() int { return g.n * g.s }

func (g geometry) index(batch, channel, spatial int) int {
	if g.nhwc {
		return (batch*g.s+spatial)*g.c + channel
	}
	return (batch*g.c+channel)*g.s + spatial
}

// forChannel calls f with the index of every element of channel c.
func (g geometry) forChannel(c int, f func(i int)) {
	for b := 0; b < g.n; b++ {
		for i := 0; i < g.s; i++ {
			f(g.index(b, c, i))
		}
	}
}

// affine is gamma[c] and beta[c], or 1 and 0 for a layer without Affine.
func affine(gamma, beta []float32, c int) (float64, float64) {
	if gamma == nil {
		return 1, 0
	}
	return float64(gamma[c]), float64(beta[c])
}

func relu(v float64, on bool) float64 {
	if on && v < 0 {
		return 0
	}
	return v
}

// referenceInference: gamma and beta nil when not affine.
func referenceInference(g geometry, x, mean, variance, gamma, beta []float32, eps float64,
	fuseReLU bool) []float64 {
	y := make([]float64, len(x))
	for c := 0; c < g.c; c++ {
		invstd := 1 / math.Sqrt(float64(variance[c])+eps)
		scale, shift := affine(gamma, beta, c)
		g.forChannel(c, func(i int) {
			y[i] = relu((float64(x[i])-float64(mean[c]))*invstd*scale+shift, fuseReLU)
		})
	}
	return y
}

type trainingResult struct {
	y                       []float64
	mean, invstd            []float64
	runningMean, runningVar []float64 // updated from the given values
}

func referenceTraining(g geometry, x, gamma, beta, runningMean, runningVar []float32,
	eps, momentum float64, fuseReLU bool) trainingResult {
	r := trainingResult{y: make([]float64, len(x))}
	count := float64(g.perChannel())
	for c := 0; c < g.c; c++ {
		sum := 0.0
		g.forChannel(c, func(i int) { sum += float64(x[i]) })
		mean := sum / count
		squares := 0.0
		g.forChannel(c, func(i int) { squares += (float64(x[i]) - mean) * (float64(x[i]) - mean) })
		biased := squares / count
		invstd := 1 / math.Sqrt(biased+eps)
		scale, shift := affine(gamma, beta, c)
		g.forChannel(c, func(i int) {
			r.y[i] = relu((float64(x[i])-mean)*invstd*scale+shift, fuseReLU)
		})
		r.mean = append(r.mean, mean)
		r.invstd = append(r.invstd, invstd)
		unbiased := biased * count / (count - 1)
		r.runningMean = append(r.runningMean, (1-momentum)*float64(runningMean[c])+momentum*mean)
		r.runningVar = append(r.runningVar, (1-momentum)*float64(runningVar[c])+momentum*unbiased)
	}
	return r
}

type backwardResult struct {
	dx, dgamma, dbeta []float64
	// Per channel, sum |dy * (x - mean)| * invstd and sum |dy|: the scale of
	// dgamma's and dbeta's rounding error.
	dgammaScale, dbetaScale []float64
}

// referenceBackward: gamma nil when not affine; y read only with fuseReLU.
func referenceBackward(g geometry, x, dy, y, gamma, saveMean, saveInvstd []float32,
	fuseReLU, globalStats bool) backwardResult {
	r := backwardResult{dx: make([]float64, len(x))}
	count := float64(g.perChannel())
	// ReLU's gradient is blocked where y <= 0 (so NaN passes, as in PyTorch).
	grad := func(i int) float64 {
		if fuseReLU && y[i] <= 0 {
			return 0
		}
		return float64(dy[i])
	}
	for c := 0; c < g.c; c++ {
		mean, invstd := float64(saveMean[c]), float64(saveInvstd[c])
		scale, _ := affine(gamma, gamma, c)
		var sumDy, sumDyXmu, absDy, absDyXmu float64
		g.forChannel(c, func(i int) {
			d := grad(i)
			sumDy += d
			sumDyXmu += d * (float64(x[i]) - mean)
			absDy += math.Abs(d)
			absDyXmu += math.Abs(d * (float64(x[i]) - mean))
		})
		r.dgamma = append(r.dgamma, sumDyXmu*invstd)
		r.dbeta = append(r.dbeta, sumDy)
		r.dgammaScale = append(r.dgammaScale, absDyXmu*invstd)
		r.dbetaScale = append(r.dbetaScale, absDy)
		g.forChannel(c, func(i int) {
			if globalStats {
				r.dx[i] = grad(i) * scale * invstd
				return
			}
			projection := (float64(x[i]) - mean) * invstd * invstd * sumDyXmu / count
			r.dx[i] = (grad(i) - sumDy/count - projection) * scale * invstd
		})
	}
	return r
}
