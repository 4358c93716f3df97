// One bnorm call per mode, on the benchmark's buffers.
#ifndef BNORM_BENCH_BNORM_CALL_H_
#define BNORM_BENCH_BNORM_CALL_H_

#include <bnorm/bnorm.h>

#include <vector>

#include "buffers.h"
#include "shapes.h"

namespace bnorm_bench {

class BnormCall {
 public:
  // Default flags (AFFINE | TRACK_RUNNING_STATS), as a PyTorch BatchNorm layer.
  BnormCall(const LogicalShape& shape, Layout layout, Mode mode, int threads)
      : shape_(ToBnormShape(shape, layout)), mode_(mode) {
    bnorm_desc_init(&desc_, shape.c);
    desc_.eps = kEps;
    desc_.layout = layout == Layout::kNCHW ? BNORM_LAYOUT_NCHW : BNORM_LAYOUT_NHWC;
    desc_.num_threads = threads;
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
  // dx, dgamma, dbeta with save_mean / save_invstd.
  bnorm_status Run(TensorSet& t, ChannelVectors& ch) const {
    switch (mode_) {
      case Mode::kInference:
        return bnorm_forward_inference(&desc_, &shape_, t.x.get(), t.y.get(), ch.mean.data(),
                                       ch.var.data(), ch.gamma.data(), ch.beta.data());
      case Mode::kTraining:
        return bnorm_forward_training(&desc_, &shape_, t.x.get(), t.y.get(), ch.gamma.data(),
                                      ch.beta.data(), ch.running_mean.data(), ch.running_var.data(),
                                      ch.save_mean.data(), ch.save_invstd.data());
      case Mode::kBackward:
        return bnorm_backward(&desc_, &shape_, t.x.get(), t.dy.get(), /*y=*/nullptr,
                              ch.gamma.data(), ch.save_mean.data(), ch.save_invstd.data(),
                              t.dx.get(), ch.dgamma.data(), ch.dbeta.data());
    }
    return BNORM_ERR_INTERNAL;
  }

 private:
  bnorm_desc desc_;
  bnorm_shape shape_;
  Mode mode_;
  std::vector<float> scale_, shift_;
};

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_BNORM_CALL_H_
