// A one-off correctness check of the benchmark's rows: bnorm (through the same
// wrapper the timed rows use), oneDNN, and the roof kernels, against the naive
// double-accumulating loops, on small shapes in both layouts and all modes.
// It guards the benchmark's own plumbing (argument order, layouts, variance vs
// invstd), not bnorm's numerics, which tests/ covers.
#ifndef BNORM_BENCH_PEER_CHECK_H_
#define BNORM_BENCH_PEER_CHECK_H_

namespace bnorm_bench {

// Prints one line per comparison and "N passed, M failed"; returns M.
int RunPeerCheck();

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_PEER_CHECK_H_
