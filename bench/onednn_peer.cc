#include "onednn_peer.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <unordered_map>

namespace bnorm_bench {

using dnnl::memory;
using dnnl::normalization_flags;
using dnnl::prop_kind;

struct OneDnnBatchNorm::State {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  Mode mode;
  dnnl::primitive primitive;
  std::string impl;
  // Memory objects created once without data; Run points them at buffers.
  memory src, dst, diff_dst, diff_src;
  memory mean, var, scale, shift, diff_scale, diff_shift;
  std::unordered_map<int, memory> args;
};

namespace {

memory::data_type DataType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return memory::data_type::f32;
    case DType::kBF16:
      return memory::data_type::bf16;
    case DType::kF16:
      return memory::data_type::f16;
  }
  return memory::data_type::undef;
}

memory::desc DataDesc(const LogicalShape& s, Layout layout, DType dtype) {
  // Rank 2 (N, C) as (N, C, 1, 1) channels last: the same memory as the nc tag,
  // but oneDNN 2.6 runs nc on its generic ncsp kernel, 10-40x slower than the
  // jit kernel it picks for nhwc, which would flatter bnorm.
  if (s.rank == 2) {
    return memory::desc({s.n, s.c, 1, 1}, DataType(dtype), memory::format_tag::nhwc);
  }
  // oneDNN's dims are always logical (N, C, H, W); the tag gives the memory order.
  const auto tag = layout == Layout::kNCHW ? memory::format_tag::nchw : memory::format_tag::nhwc;
  return memory::desc({s.n, s.c, s.h, s.w}, DataType(dtype), tag);
}

// The row's skip message when oneDNN has no primitive for the request.
std::runtime_error NotImplemented(const dnnl::error& e, DType dtype, Layout layout, Mode mode) {
  const std::string status = e.status == dnnl_unimplemented
                                 ? std::string("dnnl_unimplemented")
                                 : "status " + std::to_string(static_cast<int>(e.status));
  return std::runtime_error("oneDNN " + OneDnnVersion() + " has no " + DTypeName(dtype) + " " +
                            ModeName(mode) + " batch normalization (" + LayoutName(layout) +
                            ") on this CPU: primitive descriptor creation failed with " + status +
                            " (" + e.what() + ")");
}

}  // namespace

OneDnnBatchNorm::OneDnnBatchNorm(const LogicalShape& shape, Layout layout, Mode mode, float eps,
                                 DType dtype)
    : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.mode = mode;
  const memory::desc data_md = DataDesc(shape, layout, dtype);
  const memory::desc channel_md({shape.c}, memory::data_type::f32, memory::format_tag::x);
  auto make = [&](const memory::desc& md) { return memory(md, st.engine, DNNL_MEMORY_NONE); };
  const auto scale_shift = normalization_flags::use_scale | normalization_flags::use_shift;

  st.src = make(data_md);
  st.mean = make(channel_md);
  st.var = make(channel_md);
  st.scale = make(channel_md);
  st.shift = make(channel_md);  // backward asks for it too (oneDNN 2.6)
  st.args = {{DNNL_ARG_SRC, st.src},
             {DNNL_ARG_MEAN, st.mean},
             {DNNL_ARG_VARIANCE, st.var},
             {DNNL_ARG_SCALE, st.scale},
             {DNNL_ARG_SHIFT, st.shift}};

  // Creating the primitive descriptor is where oneDNN says whether it has a
  // kernel for the data type on this CPU.
  try {
    if (mode == Mode::kBackward) {
      // The backward primitive needs the forward-training primitive as a hint.
      const dnnl::batch_normalization_forward::primitive_desc hint(
          {prop_kind::forward_training, data_md, eps, scale_shift}, st.engine);
      const dnnl::batch_normalization_backward::primitive_desc pd(
          {prop_kind::backward, data_md, data_md, eps, scale_shift}, st.engine, hint);
      st.primitive = dnnl::batch_normalization_backward(pd);
      st.impl = pd.impl_info_str();
      st.diff_dst = make(data_md);
      st.diff_src = make(data_md);
      st.diff_scale = make(channel_md);
      st.diff_shift = make(channel_md);
      st.args.insert({{DNNL_ARG_DIFF_DST, st.diff_dst},
                      {DNNL_ARG_DIFF_SRC, st.diff_src},
                      {DNNL_ARG_DIFF_SCALE, st.diff_scale},
                      {DNNL_ARG_DIFF_SHIFT, st.diff_shift}});
    } else {
      // Inference: mean and variance are inputs (use_global_stats).
      // Training: oneDNN computes them and writes them to the same arguments.
      const bool inference = mode == Mode::kInference;
      const auto flags =
          inference ? scale_shift | normalization_flags::use_global_stats : scale_shift;
      const dnnl::batch_normalization_forward::primitive_desc pd(
          {inference ? prop_kind::forward_inference : prop_kind::forward_training, data_md, eps,
           flags},
          st.engine);
      st.primitive = dnnl::batch_normalization_forward(pd);
      st.impl = pd.impl_info_str();
      st.dst = make(data_md);
      st.args.insert({DNNL_ARG_DST, st.dst});
    }
  } catch (const dnnl::error& e) {
    throw NotImplemented(e, dtype, layout, mode);
  }
}

OneDnnBatchNorm::~OneDnnBatchNorm() = default;

void OneDnnBatchNorm::Run(TensorSet& t, ChannelVectors& ch, int threads) {
  RunOn(t.x.get(), t.y.get(), t.dy.get(), t.dx.get(), ch, threads);
}

void OneDnnBatchNorm::Run(HalfTensorSet& t, ChannelVectors& ch, int threads) {
  RunOn(t.x.get(), t.y.get(), t.dy.get(), t.dx.get(), ch, threads);
}

void OneDnnBatchNorm::RunOn(const void* x, void* y, const void* dy, void* dx, ChannelVectors& ch,
                            int threads) {
  State& st = *state_;
  // oneDNN takes non-const handles for inputs too; it does not write them.
  st.src.set_data_handle(const_cast<void*>(x));
  st.scale.set_data_handle(ch.gamma.data());
  st.shift.set_data_handle(ch.beta.data());
  switch (st.mode) {
    case Mode::kInference:
      st.dst.set_data_handle(y);
      st.mean.set_data_handle(ch.mean.data());
      st.var.set_data_handle(ch.var.data());
      break;
    case Mode::kTraining:
      st.dst.set_data_handle(y);
      st.mean.set_data_handle(ch.save_mean.data());
      st.var.set_data_handle(ch.save_var.data());
      break;
    case Mode::kBackward:
      st.diff_dst.set_data_handle(const_cast<void*>(dy));
      st.diff_src.set_data_handle(dx);
      st.mean.set_data_handle(ch.save_mean.data());
      st.var.set_data_handle(ch.save_var.data());
      st.diff_scale.set_data_handle(ch.dgamma.data());
      st.diff_shift.set_data_handle(ch.dbeta.data());
      break;
  }
  // Debian's oneDNN runs on OpenMP and sizes its parallel regions by the
  // calling thread's omp_get_max_threads().
  omp_set_num_threads(threads);
  st.primitive.execute(st.stream, st.args);
  st.stream.wait();
}

std::string OneDnnBatchNorm::ImplName() const { return state_->impl; }

std::string OneDnnResidualStatus() {
  // The flag is absent from this API's normalization_flags. Probed, not
  // assumed: no flag bit above those it defines is accepted either, and
  // neither is the other route to a fused add, a binary-add post-op.
  const memory::desc md({2, 16, 4, 4}, memory::data_type::f32, memory::format_tag::nhwc);
  int accepted_bits = 0;
  for (unsigned bit = 2 * static_cast<unsigned>(normalization_flags::use_shift); bit != 0;
       bit <<= 1) {
    dnnl_batch_normalization_desc_t d;
    const auto flags = static_cast<unsigned>(dnnl_use_scale | dnnl_use_shift) | bit;
    if (dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &md.data, 1e-5f,
                                                   flags) == dnnl_success) {
      accepted_bits++;
    }
  }
  std::string status = "no fuse_norm_add_relu in oneDNN " + OneDnnVersion() +
                       " (not among its normalization flags; flag bits above them: " +
                       (accepted_bits == 0 ? std::string("all rejected")
                                           : std::to_string(accepted_bits) + " accepted") +
                       ")";
  try {
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_add, md);
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const auto flags = normalization_flags::use_scale | normalization_flags::use_shift |
                       normalization_flags::use_global_stats;
    const dnnl::batch_normalization_forward::primitive_desc pd(
        {prop_kind::forward_inference, md, 1e-5f, flags}, attr, engine);
    status += "; a binary-add post-op is accepted (" + std::string(pd.impl_info_str()) +
              "), not used here";
  } catch (const dnnl::error& e) {
    status += "; batch norm with a binary-add + ReLU post-op: " +
              std::string(e.status == dnnl_unimplemented
                              ? "unimplemented"
                              : "status " + std::to_string(static_cast<int>(e.status)));
  }
  return status;
}

std::string OneDnnMissingReason(DType dtype) {
  const LogicalShape probe{2, 16, 4, 4, 4};
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    for (Mode mode : {Mode::kInference, Mode::kTraining, Mode::kBackward}) {
      try {
        OneDnnBatchNorm(probe, layout, mode, 1e-5f, dtype);
      } catch (const std::exception& e) {
        return e.what();
      }
    }
  }
  return "";
}

std::string OneDnnDTypeStatus(DType dtype) {
  const std::string missing = OneDnnMissingReason(dtype);
  if (!missing.empty()) return "missing: " + missing;
  const LogicalShape probe{2, 16, 4, 4, 4};
  return OneDnnBatchNorm(probe, Layout::kNCHW, Mode::kTraining, 1e-5f, dtype).ImplName() +
         " (nchw), " +
         OneDnnBatchNorm(probe, Layout::kNHWC, Mode::kTraining, 1e-5f, dtype).ImplName() +
         " (nhwc)";
}

std::string OneDnnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

}  // namespace bnorm_bench
