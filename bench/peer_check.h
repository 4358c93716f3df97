// A one-off correctness check of the benchmark's rows: bnorm (through the same
// wrapper the timed rows use), oneDNN, and the roof kernels, against the naive
// double-accumulating loops, on small shapes in both layouts and all modes;
// likewise the residual block's rows (bnorm_res, bnorm_then_addrelu) against
// the loops plus a reference add and ReLU, and the bf16 / f16 rows (bnorm,
// oneDNN, the 2-byte roof) against the loops on the rounded inputs. oneDNN has
// no residual row to check (see OneDnnResidualStatus), nor f16 in 2.6 (see
// OneDnnMissingReason): those comparisons are reported as skipped.
// It guards the benchmark's own plumbing (argument order, layouts, variance vs
// invstd), not bnorm's numerics, which tests/ covers.
#ifndef BNORM_BENCH_PEER_CHECK_H_
#define BNORM_BENCH_PEER_CHECK_H_

namespace bnorm_bench {

// Prints one line per comparison and "N passed, M failed, K skipped"; returns M.
int RunPeerCheck();

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_PEER_CHECK_H_
