//! Batch norm with a residual added before the ReLU (bnorm 1.2), the tail
//! of a ResNet block, in one pass over memory:
//!
//! ```text
//! y = bn(x) + residual, then y = max(y, 0) with Flags::FUSE_RELU
//! ```
//!
//! `residual` is a tensor of x's shape. Each call is validated like the call
//! without a residual and gives its result followed by the add (and the
//! ReLU), to float rounding; the training statistics are x's alone. The
//! backward gives dx, dgamma and dbeta as `backward` does, and the
//! residual's gradient `d_residual = dy`, zeroed where the forward output
//! `y <= 0` with `Flags::FUSE_RELU`.
//!
//! As in `ops`, every slice's length is checked before calling C
//! (`Status::LENGTH_MISMATCH`) and the rest is the library's to check. The
//! in-place pairs the C API allows have their own functions: y over x
//! (`*_in_place`, as `forward_inference_in_place`) or over residual
//! (`*_over_residual`); dx over dy (`backward_residual_in_place`, as
//! `backward_in_place`) or d_residual over dy
//! (`backward_residual_d_residual_in_place`). Any other overlap, including
//! dx and d_residual both over dy, cannot be expressed.

use crate::descriptor::Descriptor;
use crate::element::Element;
use crate::error::Error;
use crate::ops::{
    backward_raw, check_tensor, inference_raw, training_raw, Affine, BackwardInput, ParamGrads,
    RunningStats, SaveStats,
};
use crate::shape::Shape;

/// `forward_inference` plus a residual:
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta + residual`, then ReLU
/// with `Flags::FUSE_RELU`. `residual` has x's length.
#[allow(clippy::too_many_arguments)]
pub fn forward_inference_residual<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    residual: &[T],
    y: &mut [T],
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("residual", shape, residual)?;
    check_tensor("y", shape, y)?;
    inference_raw(
        desc,
        shape,
        x.as_ptr(),
        residual.as_ptr(),
        y.as_mut_ptr(),
        mean,
        var,
        affine,
    )
}

/// `forward_inference_residual` writing y over x.
pub fn forward_inference_residual_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &mut [T],
    residual: &[T],
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("residual", shape, residual)?;
    let xy = x.as_mut_ptr();
    inference_raw(desc, shape, xy, residual.as_ptr(), xy, mean, var, affine)
}

/// `forward_inference_residual` writing y over residual.
pub fn forward_inference_residual_over_residual<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    residual: &mut [T],
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("residual", shape, residual)?;
    let ry = residual.as_mut_ptr();
    inference_raw(desc, shape, x.as_ptr(), ry, ry, mean, var, affine)
}

/// `forward_training` plus a residual: normalizes x with its batch
/// statistics, adds `residual` (x's length), then ReLU with
/// `Flags::FUSE_RELU`. The statistics (running and saved) are x's alone,
/// as `forward_training` computes them.
#[allow(clippy::too_many_arguments)]
pub fn forward_training_residual<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    residual: &[T],
    y: &mut [T],
    affine: Option<Affine<'_>>,
    running: Option<RunningStats<'_>>,
    save: Option<SaveStats<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("residual", shape, residual)?;
    check_tensor("y", shape, y)?;
    training_raw(
        desc,
        shape,
        x.as_ptr(),
        residual.as_ptr(),
        y.as_mut_ptr(),
        affine,
        running,
        save,
    )
}

/// `forward_training_residual` writing y over x.
pub fn forward_training_residual_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &mut [T],
    residual: &[T],
    affine: Option<Affine<'_>>,
    running: Option<RunningStats<'_>>,
    save: Option<SaveStats<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("residual", shape, residual)?;
    let xy = x.as_mut_ptr();
    training_raw(
        desc,
        shape,
        xy,
        residual.as_ptr(),
        xy,
        affine,
        running,
        save,
    )
}

/// `forward_training_residual` writing y over residual.
pub fn forward_training_residual_over_residual<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    residual: &mut [T],
    affine: Option<Affine<'_>>,
    running: Option<RunningStats<'_>>,
    save: Option<SaveStats<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("residual", shape, residual)?;
    let ry = residual.as_mut_ptr();
    training_raw(desc, shape, x.as_ptr(), ry, ry, affine, running, save)
}

/// The backward of the residual calls: with `g = dy`, zeroed where the
/// forward output `input.y <= 0` with `Flags::FUSE_RELU` (NaN passes),
/// `d_residual = g`, and dx, dgamma, dbeta are `backward`'s with g for dy
/// (`backward` with `Flags::FUSE_RELU` and this y gives the same dx). Both
/// dx and d_residual are required; `input` as in `backward` (y, the
/// residual call's output, is required with `Flags::FUSE_RELU`).
pub fn backward_residual<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &[T],
    dx: &mut [T],
    d_residual: &mut [T],
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    check_tensor("dx", shape, dx)?;
    check_tensor("d_residual", shape, d_residual)?;
    backward_raw(
        desc,
        shape,
        input,
        dy.as_ptr(),
        dx.as_mut_ptr(),
        d_residual.as_mut_ptr(),
        grads,
    )
}

/// `backward_residual` writing dx over dy.
pub fn backward_residual_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &mut [T],
    d_residual: &mut [T],
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    check_tensor("d_residual", shape, d_residual)?;
    let dy_dx = dy.as_mut_ptr();
    backward_raw(
        desc,
        shape,
        input,
        dy_dx,
        dy_dx,
        d_residual.as_mut_ptr(),
        grads,
    )
}

/// `backward_residual` writing d_residual over dy.
pub fn backward_residual_d_residual_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &mut [T],
    dx: &mut [T],
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    check_tensor("dx", shape, dx)?;
    let dy_d_residual = dy.as_mut_ptr();
    backward_raw(
        desc,
        shape,
        input,
        dy_d_residual,
        dx.as_mut_ptr(),
        dy_d_residual,
        grads,
    )
}
