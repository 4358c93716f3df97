// oneDNN's batch_normalization primitive as a peer row. Built only when
// oneDNN is found (BNORM_BENCH_HAVE_DNNL).
//
// The primitive is created in the constructor, outside any timed region; Run
// only points its memory objects at the iteration's buffers and executes.
#ifndef BNORM_BENCH_ONEDNN_PEER_H_
#define BNORM_BENCH_ONEDNN_PEER_H_

#include <memory>
#include <string>

#include "buffers.h"
#include "shapes.h"

namespace bnorm_bench {

class OneDnnBatchNorm {
 public:
  // Flags match bnorm's rows: scale and shift on; inference uses the given
  // statistics (use_global_stats); training computes them; backward is
  // prop_kind::backward (dx, dscale, dshift). Memory format nchw / nhwc; rank 2
  // as (N, C, 1, 1) nhwc, the same memory as nc (see DataDesc). dtype is that
  // of src, dst, diff_src and diff_dst (bf16 / f16: data_type::bf16 / f16);
  // statistics, scale and shift are f32 in every dtype, as in bnorm.
  // Throws std::runtime_error saying so when oneDNN has no primitive for the
  // request on this CPU (f16 in oneDNN 2.6), rather than substituting another.
  OneDnnBatchNorm(const LogicalShape& shape, Layout layout, Mode mode, float eps,
                  DType dtype = DType::kF32);
  ~OneDnnBatchNorm();

  // One call with `threads` OpenMP threads. Inputs and outputs as in bnorm's
  // rows: x, y / x, dy, dx; per-channel mean/var, gamma/beta, save_mean/save_var
  // (oneDNN takes variance, not invstd), dgamma/dbeta. TensorSet for f32,
  // HalfTensorSet for bf16 / f16.
  void Run(TensorSet& tensors, ChannelVectors& channels, int threads);
  void Run(HalfTensorSet& tensors, ChannelVectors& channels, int threads);
  // The same on tensors the caller placed (placement_bench); null where the
  // mode does not use a tensor.
  void RunOn(const void* x, void* y, const void* dy, void* dx, ChannelVectors& channels,
             int threads);

  // The implementation oneDNN picked, e.g. "bnorm_tbb_jit:avx2" or "ncsp_bnorm:any".
  std::string ImplName() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// "2.6.3"
std::string OneDnnVersion();

// Whether oneDNN creates batch-norm primitives for `dtype` on this CPU, probed
// for every mode in both layouts on a small shape: "" when it does, otherwise
// the first failure's message (the one that dtype's onednn rows skip with).
std::string OneDnnMissingReason(DType dtype);

// For the benchmark context: "<impl> (nchw), <impl> (nhwc)" of the training
// forward, or "missing: " and OneDnnMissingReason.
std::string OneDnnDTypeStatus(DType dtype);

// Why there is no oneDNN row for the residual block (batch norm + add + ReLU):
// oneDNN's fused form is normalization_flags::fuse_norm_add_relu (residual as
// DNNL_ARG_SRC_1, its gradient as DNNL_ARG_DIFF_SRC_1), which the 2.x API this
// peer is written for does not have. The text also reports, tested at run
// time, whether batch norm takes the add as a binary post-op instead.
std::string OneDnnResidualStatus();

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_ONEDNN_PEER_H_
