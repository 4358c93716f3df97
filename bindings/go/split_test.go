package bnorm_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"

	"bnorm"
)

// The split phases (bnorm 1.2) used as data-parallel training uses them: a
// batch cut into parts of unequal size, one of them a single sample, each
// part's phases run on their own, the exchanged blocks gathered in part order.

// perChannel is SplitValuesPerChannel as an int, for slice arithmetic.
const perChannel = bnorm.SplitValuesPerChannel

// part is samples [begin, end) of a batch: what one process holds.
type part struct{ begin, end int64 }

// partsOf cuts a batch into parts of the given sizes, in order.
func partsOf(sizes ...int64) []part {
	var parts []part
	begin := int64(0)
	for _, n := range sizes {
		parts = append(parts, part{begin, begin + n})
		begin += n
	}
	return parts
}

// shape is the part's shape: the batch is dims[0] in both layouts.
func (p part) shape(whole bnorm.Shape) bnorm.Shape {
	s := append(bnorm.Shape(nil), whole...)
	s[0] = p.end - p.begin
	return s
}

// of is the part's elements of a whole-batch tensor: the batch is the
// outermost dimension in both layouts, so a part is a contiguous range. It is
// a copy, as a process holds its own memory; nil stays nil.
func (p part) of(whole bnorm.Shape, t []float32) []float32 {
	if t == nil {
		return nil
	}
	per := int64(len(t)) / whole[0]
	return append([]float32(nil), t[p.begin*per:p.end*per]...)
}

// splitResult is what the phases give, assembled over the parts.
type splitResult struct {
	y, dx                   []float32 // the parts' slices, in order
	mean, invstd            []float32 // from MergeStats, as every process gets them
	runningMean, runningVar []float32 // updated by MergeStats; nil without TrackRunningStats
	gathered, merged        []float64 // the LocalStats blocks, and their merge
	gradGathered            []float64 // the BackwardReduce blocks
	dgamma, dbeta           []float64 // the parts' shares, summed in float64
}

// runSplit runs forward and backward through the split phases for the given
// parts of a batch, as the processes of a job would, one after another. With
// allreduce the grad sums are summed in block order and BackwardElementwise
// gets that one block; otherwise it gets all blocks. gamma and beta nil
// without Affine; runningMean and runningVar (copied) nil without
// TrackRunningStats.
func runSplit(t *testing.T, d bnorm.Descriptor, whole bnorm.Shape, parts []part,
	x, dy, gamma, beta, runningMean, runningVar []float32, allreduce bool) splitResult {
	t.Helper()
	c := int(d.NumFeatures)
	block := perChannel * c
	r := splitResult{
		mean: make([]float32, c), invstd: make([]float32, c),
		gathered: make([]float64, len(parts)*block), merged: make([]float64, block),
		gradGathered: make([]float64, len(parts)*block),
		dgamma:       make([]float64, c), dbeta: make([]float64, c),
	}
	if runningMean != nil {
		r.runningMean = append([]float32(nil), runningMean...)
		r.runningVar = append([]float32(nil), runningVar...)
	}
	for i, p := range parts { // each process
		err := bnorm.LocalStats(d, p.shape(whole), p.of(whole, x), r.gathered[i*block:(i+1)*block])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	// allgather: every process now holds r.gathered, and merges it.
	if err := bnorm.MergeStats(d, r.gathered, r.merged, r.mean, r.invstd, r.runningMean,
		r.runningVar); err != nil {
		t.Fatal(err)
	}
	ys := make([][]float32, len(parts))
	for i, p := range parts {
		ys[i] = make([]float32, p.shape(whole).Elements())
		if err := bnorm.ForwardNormalize(d, p.shape(whole), p.of(whole, x), ys[i], gamma, beta,
			r.mean, r.invstd); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		r.y = append(r.y, ys[i]...)
	}

	for i, p := range parts {
		dgamma, dbeta := make([]float32, c), make([]float32, c)
		if err := bnorm.BackwardReduce(d, p.shape(whole), p.of(whole, x), p.of(whole, dy), ys[i],
			r.mean, r.invstd, r.gradGathered[i*block:(i+1)*block], dgamma, dbeta); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		for ch := range dgamma {
			r.dgamma[ch] += float64(dgamma[ch])
			r.dbeta[ch] += float64(dbeta[ch])
		}
	}
	sums := r.gradGathered // allgather
	if allreduce {
		sums = sumBlocks(r.gradGathered, block)
	}
	for i, p := range parts {
		dx := make([]float32, p.shape(whole).Elements())
		if err := bnorm.BackwardElementwise(d, p.shape(whole), p.of(whole, x), p.of(whole, dy),
			ys[i], gamma, r.mean, r.invstd, sums, dx); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		r.dx = append(r.dx, dx...)
	}
	return r
}

// sumBlocks is an allreduce(sum) of gathered blocks, added in block order.
func sumBlocks(gathered []float64, block int) []float64 {
	sum := make([]float64, block)
	for i := 0; i < len(gathered); i += block {
		for j := range sum {
			sum[j] += gathered[i+j]
		}
	}
	return sum
}

// statsBlock is the float64 reference of one LocalStats block: per channel,
// count, mean and M2.
func statsBlock(g geometry, x []float32) []float64 {
	out := make([]float64, perChannel*g.c)
	for c := 0; c < g.c; c++ {
		count, sum, m2 := float64(g.perChannel()), 0.0, 0.0
		g.forChannel(c, func(i int) { sum += float64(x[i]) })
		mean := sum / count
		g.forChannel(c, func(i int) { m2 += (float64(x[i]) - mean) * (float64(x[i]) - mean) })
		out[perChannel*c], out[perChannel*c+1], out[perChannel*c+2] = count, mean, m2
	}
	return out
}

// gradBlock is the float64 reference of one BackwardReduce block: per
// channel, count, sum(g) and sum(g * (x - mean)), g being dy masked by the
// forward output y with fuseReLU.
func gradBlock(g geometry, x, dy, y, mean []float32, fuseReLU bool) []float64 {
	out := make([]float64, perChannel*g.c)
	for c := 0; c < g.c; c++ {
		var sum, sumXmu float64
		g.forChannel(c, func(i int) {
			if fuseReLU && y[i] <= 0 {
				return
			}
			sum += float64(dy[i])
			sumXmu += float64(dy[i]) * (float64(x[i]) - float64(mean[c]))
		})
		out[perChannel*c], out[perChannel*c+1], out[perChannel*c+2] =
			float64(g.perChannel()), sum, sumXmu
	}
	return out
}

// Every rank and both layouts, odd channel counts, every flag combination: a
// batch of 7 in parts of 2, 1 and 4 samples (for rank 2 the single sample is
// one value per channel) gives, through the phases, what the whole-batch
// ForwardTraining and Backward give, and what the float64 reference gives.
func TestSplitPhasesMatchTheWholeBatch(t *testing.T) {
	rng := rand.New(rand.NewSource(1202))
	parts := partsOf(2, 1, 4)
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		for _, channels := range []int64{1, 3, 17, 67} {
			for rank := 2; rank <= 5; rank++ {
				desc := bnorm.NewDescriptor(channels)
				desc.Layout = layout
				desc.Eps = []float32{1e-5, 1e-3}[rng.Intn(2)]
				desc.Momentum = rng.Float32()
				shape := randomShape(rng, layout, rank, channels)
				shape[0] = 7
				seed := rng.Int63()
				t.Run(fmt.Sprintf("%v%v", layout, shape), func(t *testing.T) {
					for flags := bnorm.Flags(0); flags < 16; flags++ {
						desc.Flags = flags
						checkSplit(t, desc, shape, parts, seed)
					}
				})
			}
		}
	}
}

func checkSplit(t *testing.T, desc bnorm.Descriptor, shape bnorm.Shape, parts []part, seed int64) {
	t.Helper()
	name := flagsName(desc.Flags) + " "
	relu := desc.Flags&bnorm.FuseReLU != 0
	global := desc.Flags&bnorm.UseGlobalStats != 0
	track := desc.Flags&bnorm.TrackRunningStats != 0
	b := newBatch(desc, shape, seed) // the whole batch, through the fused calls
	b.gamma, b.beta = gammaBeta(b)
	initialMean := append([]float32(nil), b.runningMean...)
	initialVar := append([]float32(nil), b.runningVar...)
	if !track {
		b.runningMean, b.runningVar = nil, nil
	}
	if err := b.training(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var splitMean, splitVar []float32
	if track {
		splitMean, splitVar = initialMean, initialVar
	}
	s := runSplit(t, desc, shape, parts, b.x, b.dy, b.gamma, b.beta, splitMean, splitVar, false)

	g := geometryOf(shape, desc.Layout)
	want := referenceTraining(g, b.x, b.gamma, b.beta, initialMean, initialVar,
		float64(desc.Eps), float64(desc.Momentum), relu)

	// The merged block: the whole batch's count, exactly, mean and M2.
	wantBlock := statsBlock(g, b.x)
	for c := 0; c < g.c; c++ {
		count, mean, m2 := s.merged[perChannel*c], s.merged[perChannel*c+1], s.merged[perChannel*c+2]
		spread := 1 / want.invstd[c]
		if count != wantBlock[perChannel*c] ||
			math.Abs(mean-want.mean[c]) > statsTolerance*(math.Abs(want.mean[c])+spread) ||
			math.Abs(m2-wantBlock[perChannel*c+2]) > statsTolerance*wantBlock[perChannel*c+2] {
			t.Errorf("%smerged channel %d: (%g, %g, %g), reference (%g, %g, %g)", name, c,
				count, mean, m2, wantBlock[perChannel*c], want.mean[c], wantBlock[perChannel*c+2])
		}
	}

	// Forward: the statistics and y, against the reference and the fused call.
	for _, against := range []struct {
		what           string
		factor         float64
		y, mean, inv   []float64
		runMean, runVr []float64
	}{
		{"reference", 1, want.y, want.mean, want.invstd, want.runningMean, want.runningVar},
		{"ForwardTraining", 2, float64s(b.y), float64s(b.saveMean), float64s(b.saveInvstd),
			float64s(b.runningMean), float64s(b.runningVar)},
	} {
		n := name + "vs " + against.what + ": "
		f := against.factor
		expectNear(t, n+"y", s.y, against.y, within(f*outputTolerance*maxAbs(want.y)))
		expectNear(t, n+"mean", s.mean, against.mean, func(c int) float64 {
			return f * statsTolerance * (math.Abs(want.mean[c]) + 1/want.invstd[c])
		})
		expectNear(t, n+"invstd", s.invstd, against.inv, func(c int) float64 {
			return f * statsTolerance * want.invstd[c]
		})
		if track {
			expectNear(t, n+"running_mean", s.runningMean, against.runMean, func(c int) float64 {
				return f * statsTolerance * (math.Abs(want.runningMean[c]) + 1/want.invstd[c])
			})
			expectNear(t, n+"running_var", s.runningVar, against.runVr, func(c int) float64 {
				return f * statsTolerance * want.runningVar[c]
			})
		}
	}

	// Backward. The ReLU mask comes from the split y in both, so that an
	// element whose y rounds to the other side of 0 cannot tell them apart.
	b.y = s.y
	if global {
		copy(b.saveMean, s.mean) // frozen statistics: the same for both
		copy(b.saveInvstd, s.invstd)
	}
	if err := b.backward(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	grads := referenceBackward(g, b.x, b.dy, s.y, b.gamma, s.mean, s.invstd, relu, global)
	expectNear(t, name+"dx vs reference", s.dx, grads.dx, within(outputTolerance*maxAbs(grads.dx)))
	expectNear(t, name+"dx vs Backward", s.dx, float64s(b.dx),
		within(2*outputTolerance*maxAbs(grads.dx)))
	// dgamma and dbeta are the parts' shares: summed, the whole batch's.
	for _, against := range []struct {
		what          string
		dgamma, dbeta []float64
	}{{"reference", grads.dgamma, grads.dbeta}, {"Backward", float64s(b.dgamma), float64s(b.dbeta)}} {
		expectNear(t, name+"dgamma vs "+against.what, float32s(s.dgamma), against.dgamma,
			func(c int) float64 { return 2 * sumTolerance * grads.dgammaScale[c] })
		expectNear(t, name+"dbeta vs "+against.what, float32s(s.dbeta), against.dbeta,
			func(c int) float64 { return 2 * sumTolerance * grads.dbetaScale[c] })
	}
	// And each part's grad sums are its own, with the whole batch's mean.
	for i, p := range parts {
		pg := geometryOf(p.shape(shape), desc.Layout)
		wantSums := gradBlock(pg, p.of(shape, b.x), p.of(shape, b.dy), p.of(shape, s.y), s.mean, relu)
		gotSums := s.gradGathered[i*perChannel*g.c : (i+1)*perChannel*g.c]
		for c := 0; c < g.c; c++ {
			if gotSums[perChannel*c] != wantSums[perChannel*c] {
				t.Errorf("%spart %d channel %d: grad count %g, want %g", name, i, c,
					gotSums[perChannel*c], wantSums[perChannel*c])
			}
		}
	}
}

// A process whose part is a single sample of spatial size 1 has one value per
// channel: its block is (1, x, 0), and it takes part normally.
func TestSplitOneValuePerChannelPart(t *testing.T) {
	desc := bnorm.NewDescriptor(5)
	shape := bnorm.Shape{1, 5}
	b := newBatch(desc, shape, 61)
	stats := make([]float64, perChannel*5)
	if err := bnorm.LocalStats(desc, shape, b.x, stats); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 5; c++ {
		if got := stats[perChannel*c : perChannel*(c+1)]; got[0] != 1 || got[1] != float64(b.x[c]) ||
			got[2] != 0 {
			t.Errorf("channel %d: %v, want [1 %g 0]", c, got, b.x[c])
		}
	}
	// Alone it is too few values for statistics (see the error tests); with
	// another part it merges.
	whole := bnorm.Shape{4, 5}
	wb := newBatch(desc, whole, 62)
	r := runSplit(t, desc, whole, partsOf(1, 3), wb.x, wb.dy, wb.gamma, wb.beta, wb.runningMean,
		wb.runningVar, false)
	want := referenceTraining(geometryOf(whole, bnorm.NCHW), wb.x, wb.gamma, wb.beta,
		wb.runningMean, wb.runningVar, float64(desc.Eps), float64(desc.Momentum), false)
	expectNear(t, "y", r.y, want.y, within(outputTolerance*maxAbs(want.y)))
}

// One process holding the whole batch: MergeStats of its one block gives
// ForwardTraining's mean bit for bit (the same sums), and the rest to float32
// rounding (the variance's last rounding may differ).
func TestSplitOnePartAgreesWithTheFusedCalls(t *testing.T) {
	for _, layout := range []bnorm.Layout{bnorm.NCHW, bnorm.NHWC} {
		desc := bnorm.NewDescriptor(17)
		desc.Layout = layout
		shape := randomShape(rand.New(rand.NewSource(63)), layout, 4, 17)
		b := newBatch(desc, shape, 63)
		initialMean := append([]float32(nil), b.runningMean...)
		initialVar := append([]float32(nil), b.runningVar...)
		if err := b.training(); err != nil {
			t.Fatal(err)
		}
		r := runSplit(t, desc, shape, partsOf(shape[0]), b.x, b.dy, b.gamma, b.beta, initialMean,
			initialVar, false)
		if !equalBits(r.mean, b.saveMean) {
			t.Errorf("%v: one part's mean differs from ForwardTraining's save_mean", layout)
		}
		rounding := func(want []float32) func(int) float64 {
			return func(i int) float64 { return 4 * 0x1p-24 * math.Abs(float64(want[i])) }
		}
		expectNear(t, layout.String()+" invstd", r.invstd, float64s(b.saveInvstd), rounding(b.saveInvstd))
		expectNear(t, layout.String()+" running_var", r.runningVar, float64s(b.runningVar),
			rounding(b.runningVar))
		expectNear(t, layout.String()+" running_mean", r.runningMean, float64s(b.runningMean),
			within(statsTolerance))
		g := geometryOf(shape, layout)
		want := referenceTraining(g, b.x, b.gamma, b.beta, initialMean, initialVar,
			float64(desc.Eps), float64(desc.Momentum), false)
		expectNear(t, layout.String()+" y", r.y, float64s(b.y), within(outputTolerance*maxAbs(want.y)))
	}
}

// Every process merges the blocks it gathered: the same blocks give the same
// bits, every time. A merge of merges (node, then cluster, the first merged in
// place) is the same as one merge, and a block of count 0 (a process with no
// samples this step) changes nothing.
func TestSplitMergeIsDeterministicAndComposes(t *testing.T) {
	const c = 17
	block := perChannel * c
	desc := bnorm.NewDescriptor(c) // TrackRunningStats
	shape := bnorm.Shape{6, c, 4, 4}
	b := newBatch(desc, shape, 64)
	blocks := make([]float64, 3*block)
	for i, p := range partsOf(1, 3, 2) {
		if err := bnorm.LocalStats(desc, p.shape(shape), p.of(shape, b.x),
			blocks[i*block:(i+1)*block]); err != nil {
			t.Fatal(err)
		}
	}

	type merge struct {
		merged                        []float64
		mean, invstd, runMean, runVar []float32
	}
	mergeAll := func(d bnorm.Descriptor, gathered []float64) merge {
		m := merge{merged: make([]float64, block), mean: make([]float32, c),
			invstd: make([]float32, c), runMean: append([]float32(nil), b.runningMean...),
			runVar: append([]float32(nil), b.runningVar...)}
		if err := bnorm.MergeStats(d, gathered, m.merged, m.mean, m.invstd, m.runMean,
			m.runVar); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := mergeAll(desc, blocks)
	for round := 0; round < 20; round++ {
		again := mergeAll(desc, append([]float64(nil), blocks...))
		if !equalBits64(again.merged, first.merged) || !equalBits(again.mean, first.mean) ||
			!equalBits(again.invstd, first.invstd) || !equalBits(again.runMean, first.runMean) ||
			!equalBits(again.runVar, first.runVar) {
			t.Fatalf("round %d: merging the same blocks gave different bits", round)
		}
	}

	// Node: blocks 0 and 1 merged in place into the first block. Cluster: that
	// merge with block 2.
	staged := append([]float64(nil), blocks[:2*block]...)
	noRunning := desc
	noRunning.Flags = 0
	if err := bnorm.MergeStats(noRunning, staged, staged[:block], nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	cluster := append(staged[:block:block], blocks[2*block:]...)
	if staged := mergeAll(desc, cluster); !equalBits64(staged.merged, first.merged) ||
		!equalBits(staged.mean, first.mean) || !equalBits(staged.runVar, first.runVar) {
		t.Error("a merge of merges differs from one merge")
	}

	withEmpty := append(append(append([]float64(nil), blocks[:block]...),
		make([]float64, block)...), blocks[block:]...)
	if skipped := mergeAll(desc, withEmpty); !equalBits64(skipped.merged, first.merged) ||
		!equalBits(skipped.invstd, first.invstd) {
		t.Error("a block of count 0 changed the merge")
	}
}

func equalBits64(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// An allreduce hands every process one block, the sum of all: summed in block
// order, it gives the same dx as the gathered blocks, bit for bit. With
// UseGlobalStats the sums are not read, so nil does as well as any.
func TestSplitSummedGradSumsEqualGatheredBlocks(t *testing.T) {
	for _, flags := range []bnorm.Flags{bnorm.Affine | bnorm.FuseReLU, bnorm.TrackRunningStats,
		bnorm.Affine | bnorm.UseGlobalStats} {
		desc := bnorm.NewDescriptor(17)
		desc.Layout, desc.Flags = bnorm.NHWC, flags
		shape := bnorm.Shape{7, 5, 3, 17}
		b := newBatch(desc, shape, 65)
		b.gamma, b.beta = gammaBeta(b)
		parts := partsOf(1, 4, 2)
		gathered := runSplit(t, desc, shape, parts, b.x, b.dy, b.gamma, b.beta, b.runningMean,
			b.runningVar, false)
		summed := runSplit(t, desc, shape, parts, b.x, b.dy, b.gamma, b.beta, b.runningMean,
			b.runningVar, true)
		if !equalBits(gathered.dx, summed.dx) {
			t.Errorf("%s: dx from summed grad sums differs from dx from the gathered blocks",
				flagsName(flags))
		}
		if flags&bnorm.UseGlobalStats == 0 {
			continue
		}
		p := parts[1]
		dx := make([]float32, p.shape(shape).Elements())
		if err := bnorm.BackwardElementwise(desc, p.shape(shape), p.of(shape, b.x),
			p.of(shape, b.dy), nil, b.gamma, gathered.mean, gathered.invstd, nil, dx); err != nil {
			t.Fatal(err)
		}
		if !equalBits(dx, p.of(shape, gathered.dx)) {
			t.Error("UseGlobalStats: dx without grad sums differs")
		}
	}
}

// In place is passing the same slice twice: x as y in ForwardNormalize, dy as
// dx in BackwardElementwise, and the first block of partial_stats as
// merged_stats in MergeStats. The results are the same bits as out of place.
func TestSplitInPlace(t *testing.T) {
	desc := bnorm.NewDescriptor(3)
	desc.Flags |= bnorm.FuseReLU
	shape := bnorm.Shape{5, 3, 7, 2}
	b := newBatch(desc, shape, 66)
	r := runSplit(t, desc, shape, partsOf(5), b.x, b.dy, b.gamma, b.beta, b.runningMean,
		b.runningVar, false)

	data := append([]float32(nil), b.x...)
	if err := bnorm.ForwardNormalize(desc, shape, data, data, b.gamma, b.beta, r.mean,
		r.invstd); err != nil {
		t.Fatal(err)
	}
	if !equalBits(data, r.y) {
		t.Error("ForwardNormalize in place differs from out of place")
	}

	grads := append([]float32(nil), b.dy...)
	if err := bnorm.BackwardElementwise(desc, shape, b.x, grads, r.y, b.gamma, r.mean, r.invstd,
		r.gradGathered, grads); err != nil {
		t.Fatal(err)
	}
	if !equalBits(grads, r.dx) {
		t.Error("BackwardElementwise in place differs from out of place")
	}

	// Two blocks, merged into the first.
	blocks := make([]float64, 2*len(r.merged))
	for i, p := range partsOf(3, 2) {
		if err := bnorm.LocalStats(desc, p.shape(shape), p.of(shape, b.x),
			blocks[i*len(r.merged):(i+1)*len(r.merged)]); err != nil {
			t.Fatal(err)
		}
	}
	merged := make([]float64, len(r.merged))
	noRunning := desc
	noRunning.Flags &^= bnorm.TrackRunningStats
	if err := bnorm.MergeStats(noRunning, blocks, merged, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := bnorm.MergeStats(noRunning, blocks, blocks[:len(merged)], nil, nil, nil,
		nil); err != nil {
		t.Fatal(err)
	}
	if !equalBits64(blocks[:len(merged)], merged) {
		t.Error("MergeStats in place differs from out of place")
	}
}

// collective is the exchange of a job whose ranks are goroutines, as MPI's
// allgather: every rank contributes a block and gets all blocks in rank
// order. The result is shared, and only read.
type collective struct {
	mu      sync.Mutex
	cond    *sync.Cond
	blocks  [][]float64
	arrived int
	round   int
	result  []float64
}

func newCollective(ranks int) *collective {
	c := &collective{blocks: make([][]float64, ranks)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *collective) allgather(rank int, block []float64) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	round := c.round
	c.blocks[rank] = append([]float64(nil), block...)
	if c.arrived++; c.arrived == len(c.blocks) {
		var all []float64
		for _, b := range c.blocks {
			all = append(all, b...)
		}
		c.result, c.arrived = all, 0
		c.round++
		c.cond.Broadcast()
	}
	for c.round == round {
		c.cond.Wait()
	}
	return c.result
}

// allreduce is allreduce(sum): the gathered blocks added in rank order.
func (c *collective) allreduce(rank int, block []float64) []float64 {
	return sumBlocks(c.allgather(rank, block), len(block))
}

// The ranks of a job as goroutines, each with its own part and buffers,
// exchanging through a collective: every rank gets the statistics of the
// serial run, and its slices of y and dx, bit for bit, round after round.
// Between the phases each rank makes a failing call whose message names its
// own block; read on the wrong OS thread, it would be empty or another rank's.
func TestSplitPhasesOnConcurrentRanks(t *testing.T) {
	const rounds = 25
	desc := bnorm.NewDescriptor(17)
	desc.Layout = bnorm.NHWC
	desc.Flags |= bnorm.FuseReLU
	shape := bnorm.Shape{12, 3, 5, 17}
	parts := partsOf(1, 4, 2, 5)
	b := newBatch(desc, shape, 67)
	want := runSplit(t, desc, shape, parts, b.x, b.dy, b.gamma, b.beta, b.runningMean,
		b.runningVar, true)
	c := int(desc.NumFeatures)
	block := perChannel * c

	comm := newCollective(len(parts))
	var wg sync.WaitGroup
	for rank, p := range parts {
		wg.Add(1)
		go func(rank int, p part) {
			defer wg.Done()
			d := desc
			d.NumThreads = int32(1 + rank%2)
			s := p.shape(shape)
			x, dy := p.of(shape, b.x), p.of(shape, b.dy)
			y, dx := make([]float32, len(x)), make([]float32, len(x))
			stats, grads := make([]float64, block), make([]float64, block)
			mean, invstd := make([]float32, c), make([]float32, c)
			runMean, runVar := make([]float32, c), make([]float32, c)
			bad := make([]float64, len(parts)*block)
			message := fmt.Sprintf("partial_stats block %d, channel %d: count is %d.5; it must be "+
				"a whole number from 0 to 2^53 (is the array laid out as (count, ...) per channel, "+
				"num_features channels per block?)", rank, rank, rank)
			// A failing rank reports once and keeps taking part in the
			// exchanges, so that the others are not left waiting.
			failed := false
			fail := func(err error) {
				if err != nil && !failed {
					t.Errorf("rank %d: %v", rank, err)
					failed = true
				}
			}
			for r := 0; r < rounds; r++ {
				copy(runMean, b.runningMean) // each round is the same training step
				copy(runVar, b.runningVar)
				fail(bnorm.LocalStats(d, s, x, stats))
				gathered := comm.allgather(rank, stats)

				copy(bad, gathered)
				bad[rank*block+perChannel*rank] = float64(rank) + 0.5
				err := bnorm.MergeStats(d, bad, nil, mean, invstd, runMean, runVar)
				if e, ok := err.(*bnorm.Error); !ok || e.Message != message {
					fail(fmt.Errorf("got %v, want the message %q", err, message))
				}

				fail(bnorm.MergeStats(d, gathered, nil, mean, invstd, runMean, runVar))
				fail(bnorm.ForwardNormalize(d, s, x, y, b.gamma, b.beta, mean, invstd))
				fail(bnorm.BackwardReduce(d, s, x, dy, y, mean, invstd, grads, nil, nil))
				sums := comm.allreduce(rank, grads)
				fail(bnorm.BackwardElementwise(d, s, x, dy, y, b.gamma, mean, invstd, sums, dx))
				if !equalBits(mean, want.mean) || !equalBits(invstd, want.invstd) ||
					!equalBits(runVar, want.runningVar) || !equalBits(y, p.of(shape, want.y)) ||
					!equalBits(dx, p.of(shape, want.dx)) {
					fail(fmt.Errorf("round %d: results differ from the serial run", r))
				}
			}
		}(rank, p)
	}
	wg.Wait()
}

// splitCall is one process's buffers for every split phase, each valid: a
// 3-channel layer with the default flags (Affine | TrackRunningStats), this
// process holding 2 samples of a 5-sample NCHW batch (shape 2x3x4, 8 values
// per channel), the other process the other 3. Error tests break one thing.
type splitCall struct {
	desc  bnorm.Descriptor
	shape bnorm.Shape

	x, y, dy, dx                              []float32
	gamma, beta, mean, invstd                 []float32 // inputs; mean, invstd the whole batch's
	outMean, outInvstd, runningMean, runningV []float32 // MergeStats outputs
	dgamma, dbeta                             []float32

	partial, merged, gradSums []float64 // outputs, one block each
	gathered, gradGathered    []float64 // inputs: both processes' blocks
}

func newSplitCall() *splitCall {
	desc := bnorm.NewDescriptor(3)
	whole := bnorm.Shape{5, 3, 4}
	b := newBatch(desc, whole, 71)
	mine, other := partsOf(2, 3)[0], partsOf(2, 3)[1]
	g := geometryOf(whole, desc.Layout)
	stats := referenceTraining(g, b.x, nil, nil, b.runningMean, b.runningVar, 1e-5, 0.1, false)
	s := &splitCall{desc: desc, shape: mine.shape(whole),
		x: mine.of(whole, b.x), y: make([]float32, 24), dy: mine.of(whole, b.dy),
		dx:    make([]float32, 24),
		gamma: b.gamma, beta: b.beta,
		mean: float32s(stats.mean), invstd: float32s(stats.invstd),
		outMean: make([]float32, 3), outInvstd: make([]float32, 3),
		runningMean: b.runningMean, runningV: b.runningVar,
		dgamma: make([]float32, 3), dbeta: make([]float32, 3),
		partial: make([]float64, 9), merged: make([]float64, 9), gradSums: make([]float64, 9),
	}
	for _, p := range []part{mine, other} {
		pg := geometryOf(p.shape(whole), desc.Layout)
		s.gathered = append(s.gathered, statsBlock(pg, p.of(whole, b.x))...)
		s.gradGathered = append(s.gradGathered,
			gradBlock(pg, p.of(whole, b.x), p.of(whole, b.dy), nil, s.mean, false)...)
	}
	return s
}

func (s *splitCall) localStats() error {
	return bnorm.LocalStats(s.desc, s.shape, s.x, s.partial)
}

func (s *splitCall) mergeStats() error {
	return bnorm.MergeStats(s.desc, s.gathered, s.merged, s.outMean, s.outInvstd, s.runningMean,
		s.runningV)
}

func (s *splitCall) forwardNormalize() error {
	return bnorm.ForwardNormalize(s.desc, s.shape, s.x, s.y, s.gamma, s.beta, s.mean, s.invstd)
}

func (s *splitCall) backwardReduce() error {
	return bnorm.BackwardReduce(s.desc, s.shape, s.x, s.dy, s.y, s.mean, s.invstd, s.gradSums,
		s.dgamma, s.dbeta)
}

func (s *splitCall) backwardElementwise() error {
	return bnorm.BackwardElementwise(s.desc, s.shape, s.x, s.dy, s.y, s.gamma, s.mean, s.invstd,
		s.gradGathered, s.dx)
}

func (s *splitCall) buffers() [][]float32 {
	return [][]float32{s.x, s.y, s.dy, s.dx, s.gamma, s.beta, s.mean, s.invstd, s.outMean,
		s.outInvstd, s.runningMean, s.runningV, s.dgamma, s.dbeta}
}

func (s *splitCall) doubles() [][]float64 {
	return [][]float64{s.partial, s.merged, s.gradSums, s.gathered, s.gradGathered}
}

// splitSnapshot is every buffer of a splitCall, float32 and float64.
type splitSnapshot struct {
	floats  [][]float32
	doubles [][]float64
}

func snapshotSplit(s *splitCall) splitSnapshot {
	snap := splitSnapshot{floats: snapshot(s)}
	for _, buf := range s.doubles() {
		snap.doubles = append(snap.doubles, append([]float64(nil), buf...))
	}
	return snap
}

// expectSplitUnchanged fails the test if a buffer differs from the snapshot.
func expectSplitUnchanged(t *testing.T, s *splitCall, before splitSnapshot) {
	t.Helper()
	expectUnchanged(t, s, before.floats)
	for i, buf := range s.doubles() {
		if !equalBits64(buf, before.doubles[i]) {
			t.Errorf("float64 buffer %d was written by a failing call", i)
		}
	}
}

// callBrokenSplit breaks one thing, snapshots every buffer, and makes the call.
func callBrokenSplit(s *splitCall, breakIt func(*splitCall),
	call func(*splitCall) error) (splitSnapshot, error) {
	breakIt(s)
	before := snapshotSplit(s)
	return before, call(s)
}

// shrinkSplitTo gives s a part of the given shape, with tensors to match.
func shrinkSplitTo(s *splitCall, shape bnorm.Shape) {
	s.shape = shape
	n := shape.Elements()
	s.x, s.y, s.dy, s.dx = s.x[:n], s.y[:n], s.dy[:n], s.dx[:n]
}

// setCounts sets every channel's count in block i of an array of 3-channel blocks.
func setCounts(blocks []float64, i int, count float64) {
	for c := 0; c < 3; c++ {
		blocks[i*9+perChannel*c] = count
	}
}

// The valid calls succeed, so each case below fails for its one change.
func TestSplitCallsSucceedUnbroken(t *testing.T) {
	for name, call := range map[string]func(*splitCall) error{
		"LocalStats":          (*splitCall).localStats,
		"MergeStats":          (*splitCall).mergeStats,
		"ForwardNormalize":    (*splitCall).forwardNormalize,
		"BackwardReduce":      (*splitCall).backwardReduce,
		"BackwardElementwise": (*splitCall).backwardElementwise,
	} {
		if err := call(newSplitCall()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// blockLength is the length error for an array of the 3-channel test layer
// that has got values instead of one block (9), or, with multiple, instead
// of a whole number of blocks.
func blockLength(op, arg string, got int, multiple bool) bnorm.LengthError {
	return bnorm.LengthError{Op: op, Arg: arg, Got: got, Want: 9, Of: "3 * num_features",
		Multiple: multiple}
}

// Slices are checked before the library is called, the float64 arrays against
// blocks of 3 * num_features: exactly one where a process writes or reads its
// own, a whole number where the gathered blocks go.
func TestSplitLengthChecks(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(s *splitCall)
		call    func(s *splitCall) error
		want    bnorm.LengthError
		text    string
	}{
		{"LocalStats partial_stats short", func(s *splitCall) { s.partial = s.partial[:8] },
			(*splitCall).localStats, blockLength("LocalStats", "partial_stats", 8, false),
			"bnorm: LocalStats: partial_stats has 8 elements but 3 * num_features is 9"},
		{"LocalStats partial_stats two blocks", func(s *splitCall) { s.partial = make([]float64, 18) },
			(*splitCall).localStats, blockLength("LocalStats", "partial_stats", 18, false), ""},
		{"LocalStats x short", func(s *splitCall) { s.x = s.x[:23] },
			(*splitCall).localStats, tensorLength("LocalStats", "x", 23), ""},

		{"MergeStats partial_stats not whole blocks", func(s *splitCall) { s.gathered = s.gathered[:17] },
			(*splitCall).mergeStats, blockLength("MergeStats", "partial_stats", 17, true),
			"bnorm: MergeStats: partial_stats has 17 elements, not a multiple of 3 * num_features (9)"},
		// Two blocks of a 5-channel layer gathered for this 3-channel one.
		{"MergeStats blocks of a 5-channel layer", func(s *splitCall) { s.gathered = make([]float64, 30) },
			(*splitCall).mergeStats, blockLength("MergeStats", "partial_stats", 30, true), ""},
		{"MergeStats merged_stats two blocks", func(s *splitCall) { s.merged = make([]float64, 18) },
			(*splitCall).mergeStats, blockLength("MergeStats", "merged_stats", 18, false), ""},
		{"MergeStats mean short", func(s *splitCall) { s.outMean = s.outMean[:2] },
			(*splitCall).mergeStats, vectorLength("MergeStats", "mean", 2), ""},
		// Not read without TrackRunningStats, but a vector that is passed must fit.
		{"MergeStats running_var long without TrackRunningStats", func(s *splitCall) {
			s.desc.Flags = 0
			s.runningV = make([]float32, 4)
		}, (*splitCall).mergeStats, vectorLength("MergeStats", "running_var", 4), ""},

		{"ForwardNormalize invstd short", func(s *splitCall) { s.invstd = s.invstd[:1] },
			(*splitCall).forwardNormalize, vectorLength("ForwardNormalize", "invstd", 1), ""},
		{"ForwardNormalize y long", func(s *splitCall) { s.y = make([]float32, 25) },
			(*splitCall).forwardNormalize, tensorLength("ForwardNormalize", "y", 25), ""},

		{"BackwardReduce grad_sums short", func(s *splitCall) { s.gradSums = s.gradSums[:6] },
			(*splitCall).backwardReduce, blockLength("BackwardReduce", "grad_sums", 6, false), ""},
		{"BackwardReduce dbeta long", func(s *splitCall) { s.dbeta = make([]float32, 4) },
			(*splitCall).backwardReduce, vectorLength("BackwardReduce", "dbeta", 4), ""},
		{"BackwardReduce y short without FuseReLU", func(s *splitCall) { s.y = s.y[:1] },
			(*splitCall).backwardReduce, tensorLength("BackwardReduce", "y", 1), ""},

		{"BackwardElementwise grad_sums not whole blocks",
			func(s *splitCall) { s.gradGathered = s.gradGathered[:10] },
			(*splitCall).backwardElementwise, blockLength("BackwardElementwise", "grad_sums", 10, true),
			"bnorm: BackwardElementwise: grad_sums has 10 elements, not a multiple of 3 * " +
				"num_features (9)"},
		{"BackwardElementwise grad_sums not whole blocks with UseGlobalStats", func(s *splitCall) {
			s.desc.Flags |= bnorm.UseGlobalStats
			s.gradGathered = s.gradGathered[:4]
		}, (*splitCall).backwardElementwise,
			blockLength("BackwardElementwise", "grad_sums", 4, true), ""},
		{"BackwardElementwise dx short", func(s *splitCall) { s.dx = s.dx[:20] },
			(*splitCall).backwardElementwise, tensorLength("BackwardElementwise", "dx", 20), ""},
		{"BackwardElementwise gamma long", func(s *splitCall) { s.gamma = make([]float32, 5) },
			(*splitCall).backwardElementwise, vectorLength("BackwardElementwise", "gamma", 5), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSplitCall()
			before, err := callBrokenSplit(s, c.breakIt, c.call)
			expectLengthError(t, err, c.want)
			if c.text != "" {
				expectErrorText(t, err, c.text)
			}
			expectSplitUnchanged(t, s, before)
		})
	}
}

// num_partials is an int32: more blocks than that is a length error, found
// without allocating them.
func TestSplitNumPartialsLimit(t *testing.T) {
	d := bnorm.NewDescriptor(3)
	if k, err := bnorm.NumPartials(d, 9*math.MaxInt32); err != nil || k != math.MaxInt32 {
		t.Errorf("2^31-1 blocks: got %d, %v", k, err)
	}
	if k, err := bnorm.NumPartials(d, 0); err != nil || k != 1 {
		t.Errorf("no blocks (NULL): got %d, %v; want 1 so that the library reports the NULL", k, err)
	}
	_, err := bnorm.NumPartials(d, 9*(math.MaxInt32+1))
	expectLengthError(t, err, bnorm.LengthError{Op: "MergeStats", Arg: "partial_stats",
		Got: 9 * (math.MaxInt32 + 1), Want: 9 * math.MaxInt32,
		Of: "at most 2147483647 blocks (an int32 num_partials) of 3 * num_features"})
}

// The library's own checks, with its messages, naming the numbers involved;
// nothing is written.
func TestSplitLibraryErrors(t *testing.T) {
	const blockHint = "; it must be a whole number from 0 to 2^53 (is the array laid out as (count, ...) " +
		"per channel, num_features channels per block?)"
	cases := []struct {
		name    string
		breakIt func(s *splitCall)
		call    func(s *splitCall) error
		op      string
		want    bnorm.Status
		message string
	}{
		// A part that does not fit the layer, in each call that takes one.
		{"LocalStats 5 channels for a 3-channel layer",
			func(s *splitCall) { s.shape = bnorm.Shape{2, 5, 4}; s.x = make([]float32, 40) },
			(*splitCall).localStats, "LocalStats", bnorm.ErrFeatureMismatch,
			"input channel dimension (dim 1) is 5 but num_features is 3"},
		{"ForwardNormalize 8 channels for a 3-channel layer",
			func(s *splitCall) {
				s.shape = bnorm.Shape{1, 8, 5}
				s.x, s.y = make([]float32, 40), make([]float32, 40)
			},
			(*splitCall).forwardNormalize, "ForwardNormalize", bnorm.ErrFeatureMismatch,
			"input channel dimension (dim 1) is 8 but num_features is 3"},
		{"BackwardReduce NCHW part described as NHWC", func(s *splitCall) { s.desc.Layout = bnorm.NHWC },
			(*splitCall).backwardReduce, "BackwardReduce", bnorm.ErrFeatureMismatch,
			"input channel dimension (dim 2) is 4 but num_features is 3; dim 1 is 3: " +
				"is the tensor channels-first? set layout to BNORM_LAYOUT_NCHW"},
		{"BackwardElementwise 4 channels for a 3-channel layer",
			func(s *splitCall) {
				s.shape = bnorm.Shape{2, 4, 5}
				s.x, s.dy, s.y, s.dx = make([]float32, 40), make([]float32, 40),
					make([]float32, 40), make([]float32, 40)
			},
			(*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrFeatureMismatch,
			"input channel dimension (dim 1) is 4 but num_features is 3"},

		// The blocks MergeStats is given.
		{"MergeStats count not a whole number", func(s *splitCall) { s.gathered[9+2*perChannel] = 2.5 },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrInvalidArgument,
			"partial_stats block 1, channel 2: count is 2.5" + blockHint},
		{"MergeStats negative count", func(s *splitCall) { s.gathered[perChannel] = -8 },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrInvalidArgument,
			"partial_stats block 0, channel 1: count is -8" + blockHint},
		{"MergeStats negative M2", func(s *splitCall) { s.gathered[perChannel+2] = -0.5 },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrInvalidArgument,
			"partial_stats block 0, channel 1: M2 is -0.5; it must be >= 0"},
		{"MergeStats total count 1", func(s *splitCall) {
			setCounts(s.gathered, 0, 1)
			setCounts(s.gathered, 1, 0)
		}, (*splitCall).mergeStats, "MergeStats", bnorm.ErrTooFewValues,
			"merging statistics needs more than 1 value per channel in all, got 1 in channel 0 " +
				"over 2 blocks"},
		{"MergeStats one block of one value per channel", func(s *splitCall) {
			s.gathered = s.gathered[:9]
			setCounts(s.gathered, 0, 1)
		}, (*splitCall).mergeStats, "MergeStats", bnorm.ErrTooFewValues,
			"merging statistics needs more than 1 value per channel in all, got 1 in channel 0 " +
				"over 1 blocks"},
		{"MergeStats partial_stats nil", func(s *splitCall) { s.gathered = nil },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrNullPointer, "partial_stats is NULL"},
		{"MergeStats running_mean nil with TrackRunningStats", func(s *splitCall) { s.runningMean = nil },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrNullPointer,
			"running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"},
		{"MergeStats merged_stats inside partial_stats", func(s *splitCall) { s.merged = s.gathered[3:12] },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrAliasing,
			"merged_stats overlaps partial_stats (in place is allowed only with the same pointer)"},
		{"MergeStats mean is running_mean", func(s *splitCall) { s.outMean = s.runningMean },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrAliasing,
			"mean overlaps running_mean"},
		{"MergeStats momentum 2", func(s *splitCall) { s.desc.Momentum = 2 },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrInvalidArgument,
			"momentum is 2; it must be in [0, 1]"},
		{"MergeStats NewDescriptor(0)", func(s *splitCall) { s.desc = bnorm.NewDescriptor(0) },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrInvalidDescriptor,
			"num_features is 0; it must be > 0"},
		// Blocks of 2^62 channels cannot be addressed: the library says so
		// before reading, and the binding leaves it to say.
		{"MergeStats num_features 2^62", func(s *splitCall) { s.desc.NumFeatures = 1 << 62 },
			(*splitCall).mergeStats, "MergeStats", bnorm.ErrInvalidArgument,
			"num_partials is 1 with num_features 4611686018427387904; it must be >= 1 and the " +
				"partial_stats array's size must not overflow"},

		// The grad sums BackwardElementwise is given.
		{"BackwardElementwise this part's sums only, from another part", func(s *splitCall) {
			s.gradGathered = s.gradGathered[:9]
			setCounts(s.gradGathered, 0, 4) // one sample's 4 values per channel
		}, (*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrInvalidArgument,
			"grad_sums channel 0: the total count is 4 but this part, of shape (2, 3, 4), alone has " +
				"8 values per channel; pass the sums of every process (allreduced, or all blocks " +
				"gathered)"},
		{"BackwardElementwise count not a whole number",
			func(s *splitCall) { s.gradGathered[9] = 12.5 },
			(*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrInvalidArgument,
			"grad_sums block 1, channel 0: count is 12.5" + blockHint},
		{"BackwardElementwise total count 1", func(s *splitCall) {
			shrinkSplitTo(s, bnorm.Shape{1, 3}) // one value per channel
			s.gradGathered = s.gradGathered[:9]
			setCounts(s.gradGathered, 0, 1)
		}, (*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrTooFewValues,
			"training-mode backward needs more than 1 value per channel in all, got 1 in channel 0"},
		{"BackwardElementwise grad_sums nil", func(s *splitCall) { s.gradGathered = nil },
			(*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrNullPointer,
			"grad_sums is NULL"},
		{"BackwardElementwise gamma nil with Affine", func(s *splitCall) { s.gamma = nil },
			(*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrNullPointer,
			"gamma is NULL but BNORM_FLAG_AFFINE is set"},
		{"BackwardElementwise dx one element past dy", func(s *splitCall) {
			buf := make([]float32, len(s.dy)+1)
			copy(buf, s.dy)
			s.dy, s.dx = buf[:len(s.dy)], buf[1:]
		}, (*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrAliasing,
			"dx overlaps dy (in place is allowed only with the same pointer)"},
		{"BackwardElementwise dx is x", func(s *splitCall) { s.dx = s.x },
			(*splitCall).backwardElementwise, "BackwardElementwise", bnorm.ErrAliasing,
			"dx overlaps x"},

		{"LocalStats partial_stats nil", func(s *splitCall) { s.partial = nil },
			(*splitCall).localStats, "LocalStats", bnorm.ErrNullPointer, "partial_stats is NULL"},
		{"LocalStats rank 6", func(s *splitCall) { s.shape = bnorm.Shape{2, 3, 4, 1, 1, 1} },
			(*splitCall).localStats, "LocalStats", bnorm.ErrInvalidShape,
			"rank is 6; it must be 2 to 5"},
		{"LocalStats eps 0", func(s *splitCall) { s.desc.Eps = 0 },
			(*splitCall).localStats, "LocalStats", bnorm.ErrInvalidArgument,
			"eps is 0; it must be finite and > 0"},
		{"ForwardNormalize invstd nil", func(s *splitCall) { s.invstd = nil },
			(*splitCall).forwardNormalize, "ForwardNormalize", bnorm.ErrNullPointer,
			"invstd is NULL"},
		{"ForwardNormalize beta nil with Affine", func(s *splitCall) { s.beta = nil },
			(*splitCall).forwardNormalize, "ForwardNormalize", bnorm.ErrNullPointer,
			"beta is NULL but BNORM_FLAG_AFFINE is set"},
		{"ForwardNormalize y one element past x", func(s *splitCall) {
			buf := make([]float32, len(s.x)+1)
			copy(buf, s.x)
			s.x, s.y = buf[:len(s.x)], buf[1:]
		}, (*splitCall).forwardNormalize, "ForwardNormalize", bnorm.ErrAliasing,
			"y overlaps x (in place is allowed only with the same pointer)"},
		{"BackwardReduce y nil with FuseReLU",
			func(s *splitCall) { s.desc.Flags |= bnorm.FuseReLU; s.y = nil },
			(*splitCall).backwardReduce, "BackwardReduce", bnorm.ErrNullPointer,
			"y is NULL but BNORM_FLAG_FUSE_RELU is set"},
		{"BackwardReduce grad_sums nil", func(s *splitCall) { s.gradSums = nil },
			(*splitCall).backwardReduce, "BackwardReduce", bnorm.ErrNullPointer,
			"grad_sums is NULL"},
		{"BackwardReduce dbeta is dgamma", func(s *splitCall) { s.dbeta = s.dgamma },
			(*splitCall).backwardReduce, "BackwardReduce", bnorm.ErrAliasing,
			"dgamma overlaps dbeta"},
		{"BackwardReduce unknown flag bit", func(s *splitCall) { s.desc.Flags |= 1 << 4 },
			(*splitCall).backwardReduce, "BackwardReduce", bnorm.ErrInvalidArgument,
			"flags 0x13 has unknown bits 0x10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSplitCall()
			before, err := callBrokenSplit(s, c.breakIt, c.call)
			e := expectLibraryError(t, err, c.want, c.message)
			if e.Op != c.op {
				t.Errorf("got Op %s, want %s", e.Op, c.op)
			}
			expectErrorText(t, err, fmt.Sprintf("bnorm: %s: %s: %s", c.op, c.want.Name(), c.message))
			expectSplitUnchanged(t, s, before)
		})
	}
}

// The split phases for a batch of 4 held by two processes, 3 samples and 1
// (here a loop; in a job, one process each). The exchanges marked are the
// only communication: the stats blocks are gathered in rank order
// (MPI_Allgather), the grad sums summed (MPI_Allreduce with MPI_SUM) or
// gathered too.
func Example_splitPhases() {
	desc := bnorm.NewDescriptor(2) // 2 channels; Affine, TrackRunningStats
	block := bnorm.SplitValuesPerChannel * 2
	gamma, beta := []float32{1, 2}, []float32{0, 0.5}
	runningMean, runningVar := []float32{0, 0}, []float32{1, 1} // every rank keeps its own copy
	// (N, C) parts of one batch: rank 0 holds 3 samples, rank 1 one.
	parts := [][]float32{{1, 10, 2, 20, 3, 30}, {6, 60}}
	dys := [][]float32{{0.5, -1, 0, 1, -0.5, 0}, {1, 0.25}}
	shape := func(rank int) bnorm.Shape { return bnorm.Shape{int64(len(parts[rank]) / 2), 2} }

	// Forward, phase 1 on every rank: its part's (count, mean, M2) per channel.
	gathered := make([]float64, len(parts)*block)
	for rank, x := range parts {
		if err := bnorm.LocalStats(desc, shape(rank), x, gathered[rank*block:(rank+1)*block]); err != nil {
			fmt.Println(err)
			return
		}
	}
	// --- allgather: every rank now holds all blocks, in rank order ---
	// Phase 2 on every rank: the same merge, so the same bits everywhere.
	mean, invstd := make([]float32, 2), make([]float32, 2)
	if err := bnorm.MergeStats(desc, gathered, nil, mean, invstd, runningMean, runningVar); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("batch mean %.2f, running_mean %.2f, running_var %.3f\n", mean, runningMean, runningVar)
	// Phase 3 on every rank: its part normalized with the batch's statistics.
	ys := make([][]float32, len(parts))
	for rank, x := range parts {
		ys[rank] = make([]float32, len(x))
		if err := bnorm.ForwardNormalize(desc, shape(rank), x, ys[rank], gamma, beta, mean, invstd); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("rank %d: y %.3f\n", rank, ys[rank])
	}

	// Backward, phase 1 on every rank: its grad sums (count, sum(dy), sum(dy*(x-mean))).
	gradSums := make([][]float64, len(parts))
	for rank, x := range parts {
		gradSums[rank] = make([]float64, block)
		if err := bnorm.BackwardReduce(desc, shape(rank), x, dys[rank], nil, mean, invstd,
			gradSums[rank], nil, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	// --- allreduce(sum): every rank now holds the one summed block ---
	summed := make([]float64, block)
	for _, sums := range gradSums {
		for i, v := range sums {
			summed[i] += v
		}
	}
	// Phase 2 on every rank: its part's dx, as Backward gives it for the whole batch.
	for rank, x := range parts {
		dx := make([]float32, len(x))
		if err := bnorm.BackwardElementwise(desc, shape(rank), x, dys[rank], nil, gamma, mean,
			invstd, summed, dx); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("rank %d: dx %.3f\n", rank, dx)
	}

	// The rank of one sample passing its own grad sums instead of the summed
	// ones: one value per channel in all.
	err := bnorm.BackwardElementwise(desc, shape(1), parts[1], dys[1], nil, gamma, mean, invstd,
		gradSums[1], make([]float32, 2))
	fmt.Println(errors.Is(err, bnorm.ErrTooFewValues), err)
	// Output:
	// batch mean [3.00 30.00], running_mean [0.30 3.00], running_var [1.367 47.567]
	// rank 0: y [-1.069 -1.638 -0.535 -0.569 0.000 0.500]
	// rank 1: y [1.604 3.707]
	// rank 0: dx [0.286 -0.087 -0.057 0.114 -0.401 -0.007]
	// rank 1: dx [0.172 -0.020]
	// true bnorm: BackwardElementwise: BNORM_ERR_TOO_FEW_VALUES: training-mode backward needs more than 1 value per channel in all, got 1 in channel 0
}
