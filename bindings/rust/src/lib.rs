//! Safe Rust binding of bnorm, batch normalization kernels for CPUs with
//! PyTorch's semantics, behind bnorm's stable C ABI (`bnorm/bnorm.h`).
//!
//! ```
//! use bnorm::{Affine, Descriptor, Shape};
//!
//! // BatchNorm2d(3) on a 2x3x4x4 NCHW tensor, PyTorch's defaults.
//! let layer = Descriptor::new(3)?;
//! let shape = Shape::new(&[2, 3, 4, 4]);
//! let x = vec![1.0f32; 2 * 3 * 4 * 4];
//! let mut y = vec![0.0f32; x.len()];
//! let (gamma, beta) = ([1.0f32; 3], [0.0f32; 3]);
//! let (mean, var) = ([0.5f32; 3], [2.0f32; 3]);
//! bnorm::forward_inference(&layer, &shape, &x, &mut y, &mean, &var,
//!                          Some(Affine { gamma: &gamma, beta: &beta }))?;
//! // (1 - 0.5) / sqrt(2 + 1e-5)
//! assert!(y.iter().all(|&v| (v - 0.353_552).abs() < 1e-5));
//! # Ok::<(), bnorm::Error>(())
//! ```
//!
//! Since bnorm 1.1, eval-mode batch norm can also be folded into a
//! per-channel scale and shift (`fold_scale_shift`, `forward_scale_shift`)
//! or into the convolution or linear layer before it (`fold_into_layer`).
//!
//! Since bnorm 1.2, training batch norm over a batch spread across processes
//! (SyncBatchNorm) splits into phases around the caller's collective:
//! `local_stats`, then `merge_stats` of every process's block,
//! `forward_normalize`; `backward_reduce`, then `backward_elementwise` with
//! the summed or gathered grad sums.
//!
//! Also since 1.2, the tail of a ResNet block, batch norm then the skip
//! connection's add then ReLU, runs in one pass:
//! `forward_inference_residual`, `forward_training_residual` and
//! `backward_residual`, which also gives the residual's gradient.
//!
//! Tensors (x, y, dy, dx, residual, d_residual) are slices of `f32`, `Bf16`
//! or `F16` (the `Element` types); the slices' type sets the descriptor's
//! dtype. The 16-bit forward calls compute as the `f32` ones do on the
//! converted inputs and round each tensor output to nearest even; the
//! backward calls (since 1.4) compute in double, and each dx is within 1 ulp
//! of exact batch norm. Per-channel vectors are `f32` whatever the tensors
//! are.
//!
//! Every call is thread-safe. Errors carry the library's status and its
//! `bnorm_last_error()` text, read on the calling thread.

mod descriptor;
mod element;
mod error;
mod folding;
mod half_float;
mod info;
mod ops;
mod residual;
mod shape;
mod split;
pub mod sys;

pub use descriptor::{Descriptor, Flags, Layout};
pub use element::Element;
pub use error::{Error, Status};
pub use folding::{
    fold_into_layer, fold_into_layer_in_place, fold_scale_shift, forward_scale_shift,
    forward_scale_shift_in_place,
};
pub use half_float::{Bf16, F16};
pub use info::{active_target, set_max_target, targets, version, version_string};
pub use ops::{
    backward, backward_in_place, forward_inference, forward_inference_in_place, forward_training,
    forward_training_in_place, Affine, BackwardInput, ParamGrads, RunningStats, SaveStats,
};
pub use residual::{
    backward_residual, backward_residual_d_residual_in_place, backward_residual_in_place,
    forward_inference_residual, forward_inference_residual_in_place,
    forward_inference_residual_over_residual, forward_training_residual,
    forward_training_residual_in_place, forward_training_residual_over_residual,
};
pub use shape::Shape;
pub use split::{
    backward_elementwise, backward_elementwise_in_place, backward_reduce, forward_normalize,
    forward_normalize_in_place, local_stats, merge_stats, merge_stats_in_place, BatchStats,
    SPLIT_VALUES_PER_CHANNEL,
};
