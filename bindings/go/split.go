package bnorm

/*
#include "gobnorm.h"

static gobnorm_result gobnorm_local_stats(const bnorm_desc* d, const bnorm_shape* s,
                                          const void* x, double* partial_stats) {
  return gobnorm_finish(bnorm_local_stats(d, s, x, partial_stats));
}

static gobnorm_result gobnorm_merge_stats(const bnorm_desc* d, int32_t num_partials,
                                          const double* partial_stats, double* merged_stats,
                                          float* mean, float* invstd, float* running_mean,
                                          float* running_var) {
  return gobnorm_finish(bnorm_merge_stats(d, num_partials, partial_stats, merged_stats, mean,
                                          invstd, running_mean, running_var));
}

static gobnorm_result gobnorm_forward_normalize(const bnorm_desc* d, const bnorm_shape* s,
                                                const void* x, void* y, const float* gamma,
                                                const float* beta, const float* mean,
                                                const float* invstd) {
  return gobnorm_finish(bnorm_forward_normalize(d, s, x, y, gamma, beta, mean, invstd));
}

static gobnorm_result gobnorm_backward_reduce(const bnorm_desc* d, const bnorm_shape* s,
                                              const void* x, const void* dy, const void* y,
                                              const float* mean, const float* invstd,
                                              double* grad_sums, float* dgamma, float* dbeta) {
  return gobnorm_finish(
      bnorm_backward_reduce(d, s, x, dy, y, mean, invstd, grad_sums, dgamma, dbeta));
}

static gobnorm_result gobnorm_backward_elementwise(const bnorm_desc* d, const bnorm_shape* s,
                                                   const void* x, const void* dy,
                                                   const void* y, const float* gamma,
                                                   const float* mean, const float* invstd,
                                                   int32_t num_partials, const double* grad_sums,
                                                   void* dx) {
  return gobnorm_finish(bnorm_backward_elementwise(d, s, x, dy, y, gamma, mean, invstd,
                                                   num_partials, grad_sums, dx));
}
*/
import "C"

// SplitValuesPerChannel is BNORM_SPLIT_VALUES_PER_CHANNEL: the float64 values
// per channel in the arrays the split phases exchange. A block, one process's
// array, is SplitValuesPerChannel*NumFeatures values; per channel c:
//
//	stats (LocalStats, MergeStats):  [3c] count, [3c+1] mean, [3c+2] M2
//	grad sums (BackwardReduce):      [3c] count, [3c+1] sum(g), [3c+2] sum(g*(x-mean))
//
// M2 is the sum of squared deviations from that mean; g is dy, zeroed where
// y <= 0 with FuseReLU.
const SplitValuesPerChannel = C.BNORM_SPLIT_VALUES_PER_CHANNEL

// LocalStats is the first phase of training forward over a batch spread
// across processes: this process's part of the batch statistics. partialStats
// (one block, SplitValuesPerChannel*NumFeatures values) gets each channel's
// count, mean and M2. One value per channel (a single sample, spatial size 1)
// is fine. Gather every process's block, in a fixed order, for MergeStats.
func LocalStats[T Element](d Descriptor, s Shape, x []T, partialStats []float64) error {
	const op = "LocalStats"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{{"x", len(x), true}}); err != nil {
		return err
	}
	if _, ok := checkable(&d, s, e.size); ok {
		if err := checkBlocks(op, &d, []blocksArg{{"partial_stats", partialStats, false}}); err != nil {
			return err
		}
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_local_stats(&cd, &cs, tensor(x), ptr64(partialStats)))
}

// MergeStats merges the gathered blocks of LocalStats (k blocks, one after
// another as an allgather lays them out; k is len(partialStats) divided by
// SplitValuesPerChannel*NumFeatures) with Chan's parallel formula, in block
// order, into the whole batch's statistics. Every process that passes the same
// blocks gets the same bits. The outputs:
//   - mean and invstd = 1/sqrt(var_biased + eps), for ForwardNormalize,
//     BackwardReduce and BackwardElementwise; either may be nil;
//   - with TrackRunningStats, runningMean and runningVar (then required) are
//     updated as ForwardTraining updates them; otherwise they are not read;
//   - mergedStats, nil or one block: the merged (count, mean, M2), itself a
//     valid block for a further merge (node, then cluster). It may be the
//     first block of partialStats, partialStats[:SplitValuesPerChannel*NumFeatures].
//
// Counts must be whole numbers >= 0 (a block of count 0 is skipped) and M2 >=
// 0, else ErrInvalidArgument naming the block and channel; a total count <= 1
// is ErrTooFewValues. A partialStats whose length is not a whole number of
// blocks is a *LengthError: the usual sign that the blocks come from a layer
// of another width. (Blocks of another width that happen to fill whole blocks
// of this one cannot be told apart.) Of d it uses NumFeatures, Eps, Momentum
// and TrackRunningStats; the other fields are validated as everywhere.
func MergeStats(d Descriptor, partialStats, mergedStats []float64, mean, invstd, runningMean,
	runningVar []float32) error {
	const op = "MergeStats"
	if err := needs(op, version12); err != nil {
		return err
	}
	// Where the library fails before reading the arrays (num_features <= 0,
	// or too large to address a block), it reports that with any k.
	k := C.int32_t(1)
	if _, ok := blockLength(&d); ok {
		if err := checkBlocks(op, &d, []blocksArg{
			{"partial_stats", partialStats, true}, {"merged_stats", mergedStats, false},
		}); err != nil {
			return err
		}
		if err := checkLayerLengths(op, &d, 0, []arg{
			{"mean", len(mean), false}, {"invstd", len(invstd), false},
			{"running_mean", len(runningMean), false}, {"running_var", len(runningVar), false},
		}); err != nil {
			return err
		}
		var err error
		if k, err = numPartials(op, "partial_stats", &d, len(partialStats)); err != nil {
			return err
		}
	}
	cd := d.c(C.BNORM_DTYPE_F32)
	return result(op, C.gobnorm_merge_stats(&cd, k, ptr64(partialStats), ptr64(mergedStats),
		ptr(mean), ptr(invstd), ptr(runningMean), ptr(runningVar)))
}

// ForwardNormalize is the last phase of split training forward, this
// process's part normalized with the whole batch's statistics (mean and
// invstd from MergeStats): y = (x - mean) * invstd * gamma + beta, then ReLU
// if fused. gamma and beta are read only with Affine. y may be x itself (in
// place).
func ForwardNormalize[T Element](d Descriptor, s Shape, x, y []T, gamma, beta, mean,
	invstd []float32) error {
	const op = "ForwardNormalize"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"y", len(y), true}, {"gamma", len(gamma), false},
		{"beta", len(beta), false}, {"mean", len(mean), false}, {"invstd", len(invstd), false},
	}); err != nil {
		return err
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_forward_normalize(&cd, &cs, tensor(x), tensor(y), ptr(gamma),
		ptr(beta), ptr(mean), ptr(invstd)))
}

// BackwardReduce is the first phase of split training backward: this
// process's grad sums (one block, see SplitValuesPerChannel), with mean and
// invstd the whole batch's (MergeStats). Sum them over the processes
// (allreduce) or gather them all for BackwardElementwise. y, the forward
// output, is needed with FuseReLU only. dgamma and dbeta, when not nil, get
// this part's share only; data-parallel training sums them with the other
// parameter gradients.
func BackwardReduce[T Element](d Descriptor, s Shape, x, dy, y []T, mean, invstd []float32,
	gradSums []float64, dgamma, dbeta []float32) error {
	const op = "BackwardReduce"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"dy", len(dy), true}, {"y", len(y), true}, {"mean", len(mean), false},
		{"invstd", len(invstd), false}, {"dgamma", len(dgamma), false},
		{"dbeta", len(dbeta), false},
	}); err != nil {
		return err
	}
	if _, ok := checkable(&d, s, e.size); ok {
		if err := checkBlocks(op, &d, []blocksArg{{"grad_sums", gradSums, false}}); err != nil {
			return err
		}
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_backward_reduce(&cd, &cs, tensor(x), tensor(dy), tensor(y),
		ptr(mean), ptr(invstd), ptr64(gradSums), ptr(dgamma), ptr(dbeta)))
}

// BackwardElementwise is the last phase of split training backward: dx of this
// process's part, what Backward gives for the whole batch restricted to this
// part. gradSums is every process's block from BackwardReduce, gathered, or one
// block already summed (allreduce); the blocks are added in order. Each
// channel's total count must be a whole number at least this part's values per
// channel (else ErrInvalidArgument) and more than 1 (else ErrTooFewValues).
// With UseGlobalStats, dx = dy * gamma * invstd and gradSums is not read (it
// may be nil). y is needed with FuseReLU only, gamma with Affine only. dx may
// be dy itself (in place).
func BackwardElementwise[T Element](d Descriptor, s Shape, x, dy, y []T, gamma, mean,
	invstd []float32, gradSums []float64, dx []T) error {
	const op = "BackwardElementwise"
	if err := needs(op, version12); err != nil {
		return err
	}
	e := elementOf[T]()
	if err := checkLengths(op, &d, s, e.size, []arg{
		{"x", len(x), true}, {"dy", len(dy), true}, {"y", len(y), true},
		{"gamma", len(gamma), false}, {"mean", len(mean), false}, {"invstd", len(invstd), false},
		{"dx", len(dx), true},
	}); err != nil {
		return err
	}
	k := C.int32_t(1)
	if _, ok := checkable(&d, s, e.size); ok {
		if err := checkBlocks(op, &d, []blocksArg{{"grad_sums", gradSums, true}}); err != nil {
			return err
		}
		var err error
		if k, err = numPartials(op, "grad_sums", &d, len(gradSums)); err != nil {
			return err
		}
	}
	cd, cs := d.c(e.dtype), s.c()
	return result(op, C.gobnorm_backward_elementwise(&cd, &cs, tensor(x), tensor(dy), tensor(y),
		ptr(gamma), ptr(mean), ptr(invstd), k, ptr64(gradSums), tensor(dx)))
}
