// The C entry points: validate, translate to a Problem, allocate scratch,
// run the driver on the active SIMD target.
#include <stdlib.h>

#include <memory>

#include "bnorm/bnorm.h"
#include "capi/error.h"
#include "capi/validate.h"
#include "src/batch_norm.h"
#include "src/dispatch.h"

namespace bnorm {
namespace {

constexpr const char* kAlways = "";
constexpr const char* kOptional = nullptr;

const char* RequiredIf(bool flag_set, const char* flag_name) {
  return flag_set ? flag_name : kOptional;
}

// Pointers the flags make irrelevant are not read, so they are not checked.
const void* UsedIf(bool used, const void* ptr) { return used ? ptr : nullptr; }

// gamma or beta: read, and required, only with BNORM_FLAG_AFFINE.
DataArg AffineParam(const char* name, bool affine, const float* param) {
  return {name, UsedIf(affine, param), false, false, RequiredIf(affine, "BNORM_FLAG_AFFINE")};
}

// Calls run(T()) with T the tensors' element type, so that one body serves
// float, bf16 and f16.
template <class Run>
void WithElementType(bnorm_dtype dtype, const Run& run) {
  switch (dtype) {
    case BNORM_DTYPE_BF16:
      run(bf16{});
      return;
    case BNORM_DTYPE_F16:
      run(f16{});
      return;
    default:
      run(float{});
      return;
  }
}

struct FreeDeleter {
  void operator()(void* p) const { free(p); }
};
using Scratch = std::unique_ptr<void, FreeDeleter>;

// Allocates before anything is written, so failure leaves outputs untouched.
bnorm_status AllocateScratch(size_t bytes, const char* what, Scratch* scratch) {
  scratch->reset(malloc(bytes == 0 ? 1 : bytes));
  if (*scratch == nullptr) {
    return Fail(BNORM_ERR_OUT_OF_MEMORY, "could not allocate %zu bytes of scratch for %s", bytes,
                what);
  }
  return BNORM_OK;
}

// The calls with and without a residual share one body each. Without one,
// residual (and d_residual) are null and not checked; with one, they are
// required, and y may be in place of either input.
bnorm_status ForwardInferenceCall(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                                  const void* residual, void* y, const float* mean,
                                  const float* var, const float* gamma, const float* beta,
                                  bool with_residual) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = ValidateRequest(desc, shape, PlanKind::kElementwise, &r)) return s;
    const bool affine = r.problem.affine;
    const DataArg args[] = {
        {"x", x, true, false, kAlways},
        {"residual", residual, true, false, with_residual ? kAlways : kOptional},
        {"y", y, true, true, kAlways, "x,residual"},
        {"mean", mean, false, false, kAlways},
        {"var", var, false, false, kAlways},
        AffineParam("gamma", affine, gamma),
        AffineParam("beta", affine, beta),
    };
    if (bnorm_status s = ValidateData(r, args)) return s;
    WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      ForwardInference(r.problem, ActiveKernels().For<T>(), static_cast<const T*>(x),
                       static_cast<const T*>(residual), static_cast<T*>(y), mean, var, gamma, beta);
    });
    return Succeed();
  });
}

bnorm_status ForwardTrainingCall(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                                 const void* residual, void* y, const float* gamma,
                                 const float* beta, float* running_mean, float* running_var,
                                 float* save_mean, float* save_invstd, bool with_residual) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = ValidateRequest(desc, shape, PlanKind::kReduction, &r)) return s;
    const bool affine = r.problem.affine;
    const bool track = r.problem.track_running_stats;
    if (!track) running_mean = running_var = nullptr;
    const DataArg args[] = {
        {"x", x, true, false, kAlways},
        {"residual", residual, true, false, with_residual ? kAlways : kOptional},
        {"y", y, true, true, kAlways, "x,residual"},
        AffineParam("gamma", affine, gamma),
        AffineParam("beta", affine, beta),
        {"running_mean", running_mean, false, true,
         RequiredIf(track, "BNORM_FLAG_TRACK_RUNNING_STATS")},
        {"running_var", running_var, false, true,
         RequiredIf(track, "BNORM_FLAG_TRACK_RUNNING_STATS")},
        {"save_mean", save_mean, false, true, kOptional},
        {"save_invstd", save_invstd, false, true, kOptional},
    };
    if (bnorm_status s = ValidateData(r, args)) return s;
    if (bnorm_status s = ValidateEnoughValues(r, shape, "training")) return s;
    Scratch scratch;
    if (bnorm_status s = AllocateScratch(TrainingScratchBytes(r.problem.plan),
                                         "training statistics", &scratch)) {
      return s;
    }
    WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      ForwardTraining(r.problem, ActiveKernels().For<T>(), scratch.get(), static_cast<const T*>(x),
                      static_cast<const T*>(residual), static_cast<T*>(y), gamma, beta,
                      running_mean, running_var, save_mean, save_invstd);
    });
    return Succeed();
  });
}

bnorm_status BackwardCall(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                          const void* dy, const void* y, const float* gamma, const float* save_mean,
                          const float* save_invstd, void* dx, void* d_residual, float* dgamma,
                          float* dbeta, bool with_residual) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = ValidateRequest(desc, shape, PlanKind::kReduction, &r)) return s;
    const bool affine = r.problem.affine;
    const bool relu = r.problem.relu;
    if (!relu) y = nullptr;
    const char* const required_with_residual = with_residual ? kAlways : kOptional;
    const DataArg args[] = {
        {"x", x, true, false, kAlways},
        {"dy", dy, true, false, kAlways},
        {"y", y, true, false, RequiredIf(relu, "BNORM_FLAG_FUSE_RELU")},
        AffineParam("gamma", affine, gamma),
        {"save_mean", save_mean, false, false, kAlways},
        {"save_invstd", save_invstd, false, false, kAlways},
        {"dx", dx, true, true, required_with_residual, "dy"},
        {"d_residual", d_residual, true, true, required_with_residual, "dy"},
        {"dgamma", dgamma, false, true, kOptional},
        {"dbeta", dbeta, false, true, kOptional},
    };
    if (bnorm_status s = ValidateData(r, args)) return s;
    if (!r.problem.global_stats) {
      if (bnorm_status s = ValidateEnoughValues(r, shape, "training-mode backward")) return s;
    }
    Scratch scratch;
    if (bnorm_status s =
            AllocateScratch(BackwardScratchBytes(r.problem.plan), "backward sums", &scratch)) {
      return s;
    }
    WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      BackwardOutputs<T> out;
      out.dx = static_cast<T*>(dx);
      out.d_residual = static_cast<T*>(d_residual);
      out.dgamma = dgamma;
      out.dbeta = dbeta;
      Backward(r.problem, ActiveKernels().For<T>(), scratch.get(), static_cast<const T*>(x),
               static_cast<const T*>(dy), static_cast<const T*>(y), affine ? gamma : nullptr,
               save_mean, save_invstd, out);
    });
    return Succeed();
  });
}

}  // namespace
}  // namespace bnorm

using bnorm::DataArg;
using bnorm::GuardedCall;
using bnorm::Request;

extern "C" {

bnorm_status bnorm_desc_init(bnorm_desc* d, int64_t num_features) {
  if (d == nullptr) return bnorm::Fail(BNORM_ERR_NULL_POINTER, "desc is NULL");
  d->struct_size = sizeof(bnorm_desc);
  d->num_features = num_features;
  d->eps = 1e-5f;
  d->momentum = 0.1f;
  d->flags = BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS;
  d->layout = BNORM_LAYOUT_NCHW;
  d->dtype = BNORM_DTYPE_F32;
  d->num_threads = 0;
  if (num_features <= 0) {
    return bnorm::Fail(BNORM_ERR_INVALID_DESCRIPTOR, "num_features is %lld; it must be > 0",
                       static_cast<long long>(num_features));
  }
  return bnorm::Succeed();
}

bnorm_status bnorm_forward_inference(const bnorm_desc* desc, const bnorm_shape* shape,
                                     const void* x, void* y, const float* mean, const float* var,
                                     const float* gamma, const float* beta) {
  return bnorm::ForwardInferenceCall(desc, shape, x, nullptr, y, mean, var, gamma, beta, false);
}

bnorm_status bnorm_forward_inference_residual(const bnorm_desc* desc, const bnorm_shape* shape,
                                              const void* x, const void* residual, void* y,
                                              const float* mean, const float* var,
                                              const float* gamma, const float* beta) {
  return bnorm::ForwardInferenceCall(desc, shape, x, residual, y, mean, var, gamma, beta, true);
}

bnorm_status bnorm_forward_scale_shift(const bnorm_desc* desc, const bnorm_shape* shape,
                                       const void* x, void* y, const float* scale,
                                       const float* shift) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateRequest(desc, shape, bnorm::PlanKind::kElementwise, &r))
      return s;
    const DataArg args[] = {
        {"x", x, true, false, bnorm::kAlways},
        {"y", y, true, true, bnorm::kAlways, "x"},
        {"scale", scale, false, false, bnorm::kAlways},
        {"shift", shift, false, false, bnorm::kAlways},
    };
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    bnorm::WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      bnorm::ForwardScaleShift(r.problem, bnorm::ActiveKernels().For<T>(), static_cast<const T*>(x),
                               static_cast<T*>(y), scale, shift);
    });
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_fold_scale_shift(const bnorm_desc* desc, const float* mean, const float* var,
                                    const float* gamma, const float* beta, float* scale,
                                    float* shift) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateLayer(desc, &r)) return s;
    const bool affine = r.problem.affine;
    const DataArg args[] = {
        {"mean", mean, false, false, bnorm::kAlways},
        {"var", var, false, false, bnorm::kAlways},
        bnorm::AffineParam("gamma", affine, gamma),
        bnorm::AffineParam("beta", affine, beta),
        {"scale", scale, false, true, bnorm::kAlways},
        {"shift", shift, false, true, bnorm::kAlways},
    };
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    bnorm::FoldScaleShift(r.desc.num_features, r.problem.eps, mean, var, affine ? gamma : nullptr,
                          affine ? beta : nullptr, scale, shift);
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_fold_into_layer(const bnorm_desc* desc, int64_t row_length, const float* weights,
                                   const float* bias, const float* mean, const float* var,
                                   const float* gamma, const float* beta, float* folded_weights,
                                   float* folded_bias) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateLayer(desc, &r)) return s;
    const int64_t channels = r.desc.num_features;
    int64_t count = 0, bytes = 0;
    if (row_length <= 0 || __builtin_mul_overflow(channels, row_length, &count) ||
        __builtin_mul_overflow(count, static_cast<int64_t>(sizeof(float)), &bytes)) {
      return bnorm::Fail(BNORM_ERR_INVALID_ARGUMENT,
                         "row_length is %lld with num_features %lld; it must be > 0 and the "
                         "weight count must not overflow",
                         static_cast<long long>(row_length), static_cast<long long>(channels));
    }
    const bool affine = r.problem.affine;
    DataArg args[] = {
        {"weights", weights, false, false, bnorm::kAlways},
        {"bias", bias, false, false, bnorm::kOptional},
        {"mean", mean, false, false, bnorm::kAlways},
        {"var", var, false, false, bnorm::kAlways},
        bnorm::AffineParam("gamma", affine, gamma),
        bnorm::AffineParam("beta", affine, beta),
        {"folded_weights", folded_weights, false, true, bnorm::kAlways, "weights"},
        {"folded_bias", folded_bias, false, true, bnorm::kAlways, "bias"},
    };
    args[0].floats = count;
    args[6].floats = count;
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    bnorm::FoldIntoLayer(channels, row_length, r.problem.eps, weights, bias, mean, var,
                         affine ? gamma : nullptr, affine ? beta : nullptr, folded_weights,
                         folded_bias);
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_forward_training(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                                    void* y, const float* gamma, const float* beta,
                                    float* running_mean, float* running_var, float* save_mean,
                                    float* save_invstd) {
  return bnorm::ForwardTrainingCall(desc, shape, x, nullptr, y, gamma, beta, running_mean,
                                    running_var, save_mean, save_invstd, false);
}

bnorm_status bnorm_forward_training_residual(const bnorm_desc* desc, const bnorm_shape* shape,
                                             const void* x, const void* residual, void* y,
                                             const float* gamma, const float* beta,
                                             float* running_mean, float* running_var,
                                             float* save_mean, float* save_invstd) {
  return bnorm::ForwardTrainingCall(desc, shape, x, residual, y, gamma, beta, running_mean,
                                    running_var, save_mean, save_invstd, true);
}

bnorm_status bnorm_backward(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                            const void* dy, const void* y, const float* gamma,
                            const float* save_mean, const float* save_invstd, void* dx,
                            float* dgamma, float* dbeta) {
  return bnorm::BackwardCall(desc, shape, x, dy, y, gamma, save_mean, save_invstd, dx, nullptr,
                             dgamma, dbeta, false);
}

bnorm_status bnorm_backward_residual(const bnorm_desc* desc, const bnorm_shape* shape,
                                     const void* x, const void* dy, const void* y,
                                     const float* gamma, const float* save_mean,
                                     const float* save_invstd, void* dx, void* d_residual,
                                     float* dgamma, float* dbeta) {
  return bnorm::BackwardCall(desc, shape, x, dy, y, gamma, save_mean, save_invstd, dx, d_residual,
                             dgamma, dbeta, true);
}

bnorm_status bnorm_local_stats(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                               double* partial_stats) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateRequest(desc, shape, bnorm::PlanKind::kReduction, &r))
      return s;
    DataArg args[] = {
        {"x", x, true, false, bnorm::kAlways},
        {"partial_stats", partial_stats, false, true, bnorm::kAlways},
    };
    args[1].doubles = bnorm::SplitBlockDoubles(r);
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    bnorm::Scratch scratch;
    if (bnorm_status s = bnorm::AllocateScratch(bnorm::LocalStatsScratchBytes(r.problem.plan),
                                                "local statistics", &scratch)) {
      return s;
    }
    bnorm::WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      bnorm::LocalStats(r.problem, bnorm::ActiveKernels().For<T>(), scratch.get(),
                        static_cast<const T*>(x), partial_stats);
    });
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_merge_stats(const bnorm_desc* desc, int32_t num_partials,
                               const double* partial_stats, double* merged_stats, float* mean,
                               float* invstd, float* running_mean, float* running_var) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateLayer(desc, &r)) return s;
    int64_t doubles = 0;
    if (bnorm_status s = bnorm::ValidatePartialCount(r, num_partials, "partial_stats", &doubles)) {
      return s;
    }
    const bool track = r.problem.track_running_stats;
    if (!track) running_mean = running_var = nullptr;
    DataArg args[] = {
        {"partial_stats", partial_stats, false, false, bnorm::kAlways},
        {"merged_stats", merged_stats, false, true, bnorm::kOptional, "partial_stats"},
        {"mean", mean, false, true, bnorm::kOptional},
        {"invstd", invstd, false, true, bnorm::kOptional},
        {"running_mean", running_mean, false, true,
         bnorm::RequiredIf(track, "BNORM_FLAG_TRACK_RUNNING_STATS")},
        {"running_var", running_var, false, true,
         bnorm::RequiredIf(track, "BNORM_FLAG_TRACK_RUNNING_STATS")},
    };
    args[0].doubles = doubles;
    args[1].doubles = bnorm::SplitBlockDoubles(r);
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    if (bnorm_status s = bnorm::ValidatePartialStats(r, num_partials, partial_stats)) return s;
    bnorm::MergeStats(r.problem, r.desc.num_features, num_partials, partial_stats, merged_stats,
                      mean, invstd, running_mean, running_var);
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_forward_normalize(const bnorm_desc* desc, const bnorm_shape* shape,
                                     const void* x, void* y, const float* gamma, const float* beta,
                                     const float* mean, const float* invstd) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateRequest(desc, shape, bnorm::PlanKind::kElementwise, &r))
      return s;
    const bool affine = r.problem.affine;
    const DataArg args[] = {
        {"x", x, true, false, bnorm::kAlways},
        {"y", y, true, true, bnorm::kAlways, "x"},
        bnorm::AffineParam("gamma", affine, gamma),
        bnorm::AffineParam("beta", affine, beta),
        {"mean", mean, false, false, bnorm::kAlways},
        {"invstd", invstd, false, false, bnorm::kAlways},
    };
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    bnorm::WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      bnorm::ForwardNormalize(r.problem, bnorm::ActiveKernels().For<T>(), static_cast<const T*>(x),
                              static_cast<T*>(y), gamma, beta, mean, invstd);
    });
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_backward_reduce(const bnorm_desc* desc, const bnorm_shape* shape, const void* x,
                                   const void* dy, const void* y, const float* mean,
                                   const float* invstd, double* grad_sums, float* dgamma,
                                   float* dbeta) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateRequest(desc, shape, bnorm::PlanKind::kReduction, &r))
      return s;
    const bool relu = r.problem.relu;
    if (!relu) y = nullptr;
    DataArg args[] = {
        {"x", x, true, false, bnorm::kAlways},
        {"dy", dy, true, false, bnorm::kAlways},
        {"y", y, true, false, bnorm::RequiredIf(relu, "BNORM_FLAG_FUSE_RELU")},
        {"mean", mean, false, false, bnorm::kAlways},
        {"invstd", invstd, false, false, bnorm::kAlways},
        {"grad_sums", grad_sums, false, true, bnorm::kAlways},
        {"dgamma", dgamma, false, true, bnorm::kOptional},
        {"dbeta", dbeta, false, true, bnorm::kOptional},
    };
    args[5].doubles = bnorm::SplitBlockDoubles(r);
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    bnorm::Scratch scratch;
    if (bnorm_status s = bnorm::AllocateScratch(bnorm::BackwardScratchBytes(r.problem.plan),
                                                "backward sums", &scratch)) {
      return s;
    }
    bnorm::WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      bnorm::BackwardOutputs<T> out;
      out.dgamma = dgamma;
      out.dbeta = dbeta;
      out.grad_sums = grad_sums;
      bnorm::Backward(r.problem, bnorm::ActiveKernels().For<T>(), scratch.get(),
                      static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<const T*>(y),
                      nullptr, mean, invstd, out);
    });
    return bnorm::Succeed();
  });
}

bnorm_status bnorm_backward_elementwise(const bnorm_desc* desc, const bnorm_shape* shape,
                                        const void* x, const void* dy, const void* y,
                                        const float* gamma, const float* mean, const float* invstd,
                                        int32_t num_partials, const double* grad_sums, void* dx) {
  return GuardedCall([&]() -> bnorm_status {
    Request r;
    if (bnorm_status s = bnorm::ValidateRequest(desc, shape, bnorm::PlanKind::kElementwise, &r))
      return s;
    const bool affine = r.problem.affine;
    const bool relu = r.problem.relu;
    const bool sums_used = !r.problem.global_stats;
    if (!relu) y = nullptr;
    if (!sums_used) grad_sums = nullptr;
    int64_t doubles = 0;
    if (sums_used) {
      if (bnorm_status s = bnorm::ValidatePartialCount(r, num_partials, "grad_sums", &doubles)) {
        return s;
      }
    }
    DataArg args[] = {
        {"x", x, true, false, bnorm::kAlways},
        {"dy", dy, true, false, bnorm::kAlways},
        {"y", y, true, false, bnorm::RequiredIf(relu, "BNORM_FLAG_FUSE_RELU")},
        bnorm::AffineParam("gamma", affine, gamma),
        {"mean", mean, false, false, bnorm::kAlways},
        {"invstd", invstd, false, false, bnorm::kAlways},
        {"grad_sums", grad_sums, false, false, sums_used ? bnorm::kAlways : bnorm::kOptional},
        {"dx", dx, true, true, bnorm::kAlways, "dy"},
    };
    args[6].doubles = doubles;
    if (bnorm_status s = bnorm::ValidateData(r, args)) return s;
    if (sums_used) {
      if (bnorm_status s = bnorm::ValidateGradSums(r, shape, num_partials, grad_sums)) return s;
    }
    bnorm::Scratch scratch;
    if (bnorm_status s =
            bnorm::AllocateScratch(bnorm::BackwardElementwiseScratchBytes(r.problem.plan),
                                   "backward coefficients", &scratch)) {
      return s;
    }
    bnorm::WithElementType(r.desc.dtype, [&](auto element) {
      using T = decltype(element);
      bnorm::BackwardElementwise(r.problem, bnorm::ActiveKernels().For<T>(), scratch.get(),
                                 static_cast<const T*>(x), static_cast<const T*>(dy),
                                 static_cast<const T*>(y), affine ? gamma : nullptr, mean, invstd,
                                 sums_used ? num_partials : 0, grad_sums, static_cast<T*>(dx));
    });
    return bnorm::Succeed();
  });
}

const char* bnorm_active_target(void) { return bnorm::ActiveKernels().name; }

int32_t bnorm_target_count(void) { return static_cast<int32_t>(bnorm::NumAvailableTargets()); }

const char* bnorm_target_name(int32_t index) {
  return index < 0 ? "" : bnorm::AvailableTargetName(static_cast<size_t>(index));
}

bnorm_status bnorm_set_max_target(const char* name) {
  if (!bnorm::SetMaxTarget(name)) {
    return bnorm::Fail(BNORM_ERR_INVALID_ARGUMENT,
                       "\"%s\" is not a target name (AVX3_DL, AVX3, AVX2, SSE4, SSSE3, SCALAR, or "
                       "BEST for no cap)",
                       name);
  }
  return bnorm::Succeed();
}

}  // extern "C"
