// One bnorm call per mode, on the benchmark's buffers; and the residual block
// (batch norm, + residual, ReLU) fused in one bnorm call, or as the plain call
// plus separate passes.
#ifndef BNORM_BENCH_BNORM_CALL_H_
#define BNORM_BENCH_BNORM_CALL_H_

#include <bnorm/bnorm.h>

#include <vector>

#include "add_relu.h"
#include "buffers.h"
#include "shapes.h"

namespace bnorm_bench {

class BnormCall {
 public:
  // Default flags (AFFINE | TRACK_RUNNING_STATS), as a PyTorch BatchNorm layer.
  // dtype is the tensors' (per-channel vectors are float in every dtype).
  BnormCall(const LogicalShape& shape, Layout layout, Mode mode, int threads,
            DType dtype = DType::kF32)
      : shape_(ToBnormShape(shape, layout)), mode_(mode) {
    bnorm_desc_init(&desc_, shape.c);
    desc_.eps = kEps;
    desc_.layout = layout == Layout::kNCHW ? BNORM_LAYOUT_NCHW : BNORM_LAYOUT_NHWC;
    desc_.dtype = ToBnormDType(dtype);
    desc_.num_threads = threads;
    desc_relu_ = desc_;
    desc_relu_.flags |= BNORM_FLAG_FUSE_RELU;
  }

  // Inference from the folded pair: scale and shift computed once (here, not
  // timed), then y = x * scale + shift per call, as a runtime does.
  bnorm_status FoldStatistics(ChannelVectors& ch) {
    scale_.resize(static_cast<size_t>(desc_.num_features));
    shift_.resize(static_cast<size_t>(desc_.num_features));
    return bnorm_fold_scale_shift(&desc_, ch.mean.data(), ch.var.data(), ch.gamma.data(),
                                  ch.beta.data(), scale_.data(), shift_.data());
  }
  bnorm_status RunFolded(TensorSet& t) const {
    return bnorm_forward_scale_shift(&desc_, &shape_, t.x.get(), t.y.get(), scale_.data(),
                                     shift_.data());
  }

  // Inference: x -> y with the given statistics. Training: x -> y, updating
  // the running stats and writing save_mean / save_invstd. Backward: x, dy ->
  // dx, dgamma, dbeta with save_mean / save_invstd. Tensors: a TensorSet for
  // f32, a HalfTensorSet for bf16 / f16 (the constructor's dtype).
  template <class Tensors>
  bnorm_status Run(Tensors& t, ChannelVectors& ch) const {
    return RunOn(t.x.get(), t.y.get(), t.dy.get(), t.dx.get(), ch);
  }

  // The same on tensors the caller placed (placement_bench, call_cost_bench);
  // a mode reads and writes only the tensors it uses.
  bnorm_status RunOn(const void* x, void* y, const void* dy, void* dx, ChannelVectors& ch) const {
    switch (mode_) {
      case Mode::kInference:
        return bnorm_forward_inference(&desc_, &shape_, x, y, ch.mean.data(), ch.var.data(),
                                       ch.gamma.data(), ch.beta.data());
      case Mode::kTraining:
        return bnorm_forward_training(&desc_, &shape_, x, y, ch.gamma.data(), ch.beta.data(),
                                      ch.running_mean.data(), ch.running_var.data(),
                                      ch.save_mean.data(), ch.save_invstd.data());
      case Mode::kBackward:
        return bnorm_backward(&desc_, &shape_, x, dy, /*y=*/nullptr, ch.gamma.data(),
                              ch.save_mean.data(), ch.save_invstd.data(), dx, ch.dgamma.data(),
                              ch.dbeta.data());
    }
    return BNORM_ERR_INTERNAL;
  }

  // The residual block in one call: the *_residual functions with
  // BNORM_FLAG_FUSE_RELU. Forward: y = max(bn(x) + residual, 0) (statistics as
  // Run). Backward: from x, dy and y_relu (the block's output) to dx and
  // d_residual, dgamma, dbeta. Needs BufferRing::AddResidualTensors.
  bnorm_status RunResidual(TensorSet& t, ChannelVectors& ch) const {
    switch (mode_) {
      case Mode::kInference:
        return bnorm_forward_inference_residual(&desc_relu_, &shape_, t.x.get(), t.residual.get(),
                                                t.y.get(), ch.mean.data(), ch.var.data(),
                                                ch.gamma.data(), ch.beta.data());
      case Mode::kTraining:
        return bnorm_forward_training_residual(&desc_relu_, &shape_, t.x.get(), t.residual.get(),
                                               t.y.get(), ch.gamma.data(), ch.beta.data(),
                                               ch.running_mean.data(), ch.running_var.data(),
                                               ch.save_mean.data(), ch.save_invstd.data());
      case Mode::kBackward:
        return bnorm_backward_residual(&desc_relu_, &shape_, t.x.get(), t.dy.get(), t.y_relu.get(),
                                       ch.gamma.data(), ch.save_mean.data(), ch.save_invstd.data(),
                                       t.dx.get(), t.d_residual.get(), ch.dgamma.data(),
                                       ch.dbeta.data());
    }
    return BNORM_ERR_INTERNAL;
  }

  // The same block unfused, as a program without the fused call writes it.
  // Forward: Run (no ReLU), then y = max(y + residual, 0) in a second pass.
  // Backward: d_residual = dy where y_relu > 0 (ReLU's backward), then Run's
  // bnorm_backward with d_residual for dy. Same inputs and outputs as
  // RunResidual.
  bnorm_status RunThenAddRelu(TensorSet& t, ChannelVectors& ch) const {
    const int64_t n = Elements();
    if (mode_ == Mode::kBackward) {
      ReluBackward(t.dy.get(), t.y_relu.get(), t.d_residual.get(), n, desc_.num_threads);
      return bnorm_backward(&desc_, &shape_, t.x.get(), t.d_residual.get(), /*y=*/nullptr,
                            ch.gamma.data(), ch.save_mean.data(), ch.save_invstd.data(), t.dx.get(),
                            ch.dgamma.data(), ch.dbeta.data());
    }
    const bnorm_status s = Run(t, ch);
    if (s == BNORM_OK) AddReluInPlace(t.y.get(), t.residual.get(), n, desc_.num_threads);
    return s;
  }

 private:
  int64_t Elements() const {
    int64_t n = 1;
    for (int32_t i = 0; i < shape_.rank; ++i) n *= shape_.dims[i];
    return n;
  }

  bnorm_desc desc_;
  bnorm_desc desc_relu_;  // desc_ with BNORM_FLAG_FUSE_RELU, for the fused block
  bnorm_shape shape_;
  Mode mode_;
  std::vector<float> scale_, shift_;
};

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_BNORM_CALL_H_
