//! The three kernels over slices, with their in-place variants.
//!
//! Before calling C, every slice's length is checked against what the library
//! will read or write (the shape's element count for tensors, num_features
//! for per-channel vectors), so a short buffer is an `Error`, never an
//! out-of-bounds access. Everything else, including whether the shape's
//! channel dimension matches num_features, is the library's to check, so its
//! messages reach the caller unchanged.
//!
//! The C API allows exactly two in-place pairs here, `y == x` (forward) and
//! `dx == dy` (backward). Rust cannot lend the same slice as `&[f32]` and
//! `&mut [f32]` at once, so those get their own `*_in_place` functions.
//! Every other overlap, which C rejects as `BNORM_ERR_ALIASING`, cannot be
//! expressed through these signatures.

use std::os::raw::c_void;
use std::ptr;

use crate::descriptor::Descriptor;
use crate::element::Element;
use crate::error::{Error, Status};
use crate::shape::Shape;
use crate::sys;

/// gamma (scale) and beta (shift), each `num_features` long. Used only with
/// `Flags::AFFINE`, which requires them.
#[derive(Clone, Copy, Debug)]
pub struct Affine<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
}

/// The running statistics a training forward updates with
/// `Flags::TRACK_RUNNING_STATS` (which requires them), each `num_features`
/// long.
#[derive(Debug)]
pub struct RunningStats<'a> {
    pub mean: &'a mut [f32],
    pub var: &'a mut [f32],
}

/// Where a training forward writes the batch mean and
/// `1 / sqrt(biased_var + eps)`, each `num_features` long, for `backward`.
#[derive(Debug)]
pub struct SaveStats<'a> {
    pub mean: &'a mut [f32],
    pub invstd: &'a mut [f32],
}

/// What `backward` reads besides dy. x and y are tensors of dy's element
/// type; the rest is per channel, `f32`.
#[derive(Clone, Copy, Debug)]
pub struct BackwardInput<'a, T: Element = f32> {
    /// The forward pass's input.
    pub x: &'a [T],
    /// The forward pass's output; required with `Flags::FUSE_RELU`.
    pub y: Option<&'a [T]>,
    /// Required with `Flags::AFFINE`; taken as 1 without it.
    pub gamma: Option<&'a [f32]>,
    /// The saved batch mean, or with `Flags::USE_GLOBAL_STATS` the running mean.
    pub mean: &'a [f32],
    /// The saved batch 1/std, or with `Flags::USE_GLOBAL_STATS`
    /// `1 / sqrt(running_var + eps)`.
    pub invstd: &'a [f32],
}

/// Gradients of gamma and beta, each `num_features` long; `None` skips one.
#[derive(Debug, Default)]
pub struct ParamGrads<'a> {
    pub dgamma: Option<&'a mut [f32]>,
    pub dbeta: Option<&'a mut [f32]>,
}

/// Inference (eval mode): `y = (x - mean) / sqrt(var + eps) * gamma + beta`,
/// then ReLU with `Flags::FUSE_RELU`.
pub fn forward_inference<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    y: &mut [T],
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("y", shape, y)?;
    inference_raw(
        desc,
        shape,
        x.as_ptr(),
        ptr::null(),
        y.as_mut_ptr(),
        mean,
        var,
        affine,
    )
}

/// `forward_inference` writing y over x.
pub fn forward_inference_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &mut [T],
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    let xy = x.as_mut_ptr();
    inference_raw(desc, shape, xy, ptr::null(), xy, mean, var, affine)
}

/// The one body of `forward_inference*` with and without a residual: a null
/// `residual` calls `bnorm_forward_inference`, any other
/// `bnorm_forward_inference_residual`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn inference_raw<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: *const T,
    residual: *const T,
    y: *mut T,
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_channels("mean", desc, mean)?;
    check_channels("var", desc, var)?;
    let (gamma, beta) = check_affine(desc, affine)?;
    let raw = desc.raw_for::<T>();
    // SAFETY: every buffer was checked to hold what the descriptor and shape
    // make the library access, or the shape is one the library rejects before
    // accessing any buffer; y is an exclusive borrow, or exactly x or exactly
    // residual, the in-place pairs the C API allows.
    let status = unsafe {
        if residual.is_null() {
            sys::bnorm_forward_inference(
                &raw,
                shape.as_raw(),
                x as *const c_void,
                y as *mut c_void,
                mean.as_ptr(),
                var.as_ptr(),
                gamma,
                beta,
            )
        } else {
            sys::bnorm_forward_inference_residual(
                &raw,
                shape.as_raw(),
                x as *const c_void,
                residual as *const c_void,
                y as *mut c_void,
                mean.as_ptr(),
                var.as_ptr(),
                gamma,
                beta,
            )
        }
    };
    Error::check(status)
}

/// Training forward: normalizes with the batch statistics (biased variance),
/// then ReLU with `Flags::FUSE_RELU`. With `Flags::TRACK_RUNNING_STATS` the
/// running statistics are updated with momentum and the unbiased variance;
/// `save` receives what `backward` needs.
pub fn forward_training<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    y: &mut [T],
    affine: Option<Affine<'_>>,
    running: Option<RunningStats<'_>>,
    save: Option<SaveStats<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("y", shape, y)?;
    training_raw(
        desc,
        shape,
        x.as_ptr(),
        ptr::null(),
        y.as_mut_ptr(),
        affine,
        running,
        save,
    )
}

/// `forward_training` writing y over x.
pub fn forward_training_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &mut [T],
    affine: Option<Affine<'_>>,
    running: Option<RunningStats<'_>>,
    save: Option<SaveStats<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    let xy = x.as_mut_ptr();
    training_raw(desc, shape, xy, ptr::null(), xy, affine, running, save)
}

/// The one body of `forward_training*`, as `inference_raw`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn training_raw<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: *const T,
    residual: *const T,
    y: *mut T,
    affine: Option<Affine<'_>>,
    running: Option<RunningStats<'_>>,
    save: Option<SaveStats<'_>>,
) -> Result<(), Error> {
    let (gamma, beta) = check_affine(desc, affine)?;
    let (running_mean, running_var) = match running {
        Some(stats) => {
            check_channels("running mean", desc, stats.mean)?;
            check_channels("running var", desc, stats.var)?;
            (stats.mean.as_mut_ptr(), stats.var.as_mut_ptr())
        }
        None => (ptr::null_mut(), ptr::null_mut()),
    };
    let (save_mean, save_invstd) = match save {
        Some(stats) => {
            check_channels("save mean", desc, stats.mean)?;
            check_channels("save invstd", desc, stats.invstd)?;
            (stats.mean.as_mut_ptr(), stats.invstd.as_mut_ptr())
        }
        None => (ptr::null_mut(), ptr::null_mut()),
    };
    let raw = desc.raw_for::<T>();
    // SAFETY: as in `inference_raw`; the per-channel outputs are exclusive
    // borrows.
    let status = unsafe {
        if residual.is_null() {
            sys::bnorm_forward_training(
                &raw,
                shape.as_raw(),
                x as *const c_void,
                y as *mut c_void,
                gamma,
                beta,
                running_mean,
                running_var,
                save_mean,
                save_invstd,
            )
        } else {
            sys::bnorm_forward_training_residual(
                &raw,
                shape.as_raw(),
                x as *const c_void,
                residual as *const c_void,
                y as *mut c_void,
                gamma,
                beta,
                running_mean,
                running_var,
                save_mean,
                save_invstd,
            )
        }
    };
    Error::check(status)
}

/// Backward, like PyTorch's `native_batch_norm_backward`: dx (if given),
/// `dgamma = sum(dy * (x - mean)) * invstd` and `dbeta = sum(dy)`.
/// Training mode by default; frozen statistics with `Flags::USE_GLOBAL_STATS`.
pub fn backward<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &[T],
    dx: Option<&mut [T]>,
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    let dx = match dx {
        Some(dx) => {
            check_tensor("dx", shape, dx)?;
            dx.as_mut_ptr()
        }
        None => ptr::null_mut(),
    };
    backward_raw(desc, shape, input, dy.as_ptr(), dx, ptr::null_mut(), grads)
}

/// `backward` writing dx over dy.
pub fn backward_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &mut [T],
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    let dy_dx = dy.as_mut_ptr();
    backward_raw(desc, shape, input, dy_dx, dy_dx, ptr::null_mut(), grads)
}

/// The one body of `backward*` and `backward_residual*`: a null `d_residual`
/// calls `bnorm_backward`, any other `bnorm_backward_residual`.
pub(crate) fn backward_raw<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: *const T,
    dx: *mut T,
    d_residual: *mut T,
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("x", shape, input.x)?;
    let y = match input.y {
        Some(y) => {
            check_tensor("y", shape, y)?;
            y.as_ptr()
        }
        None => ptr::null(),
    };
    let gamma = match input.gamma {
        Some(gamma) => {
            check_channels("gamma", desc, gamma)?;
            gamma.as_ptr()
        }
        None => ptr::null(),
    };
    check_channels("mean", desc, input.mean)?;
    check_channels("invstd", desc, input.invstd)?;
    let dgamma = optional_channels_mut("dgamma", desc, grads.dgamma)?;
    let dbeta = optional_channels_mut("dbeta", desc, grads.dbeta)?;
    let raw = desc.raw_for::<T>();
    // SAFETY: as in `inference_raw`; dx and d_residual are exclusive borrows
    // apart from each other, or one of them is exactly dy, the in-place pairs
    // the C API allows.
    let status = unsafe {
        if d_residual.is_null() {
            sys::bnorm_backward(
                &raw,
                shape.as_raw(),
                input.x.as_ptr() as *const c_void,
                dy as *const c_void,
                y as *const c_void,
                gamma,
                input.mean.as_ptr(),
                input.invstd.as_ptr(),
                dx as *mut c_void,
                dgamma,
                dbeta,
            )
        } else {
            sys::bnorm_backward_residual(
                &raw,
                shape.as_raw(),
                input.x.as_ptr() as *const c_void,
                dy as *const c_void,
                y as *const c_void,
                gamma,
                input.mean.as_ptr(),
                input.invstd.as_ptr(),
                dx as *mut c_void,
                d_residual as *mut c_void,
                dgamma,
                dbeta,
            )
        }
    };
    Error::check(status)
}

/// A tensor must hold exactly the shape's element count. A shape without one
/// (bad rank, a dimension <= 0, an overflowing count) is left to the library,
/// which rejects it before accessing any buffer and names the bad value.
pub(crate) fn check_tensor<T>(name: &str, shape: &Shape, data: &[T]) -> Result<(), Error> {
    match shape.element_count() {
        Some(count) if count != data.len() => Err(length_error(format!(
            "{} has {} elements but shape {:?} has {}",
            name,
            data.len(),
            shape.dims(),
            count
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn check_channels(name: &str, desc: &Descriptor, data: &[f32]) -> Result<(), Error> {
    // Descriptor::new guarantees num_features > 0.
    let expected = usize::try_from(desc.num_features()).unwrap_or(usize::MAX);
    if data.len() == expected {
        Ok(())
    } else {
        Err(length_error(format!(
            "{} has {} elements but num_features is {}",
            name,
            data.len(),
            expected
        )))
    }
}

pub(crate) fn check_affine(
    desc: &Descriptor,
    affine: Option<Affine<'_>>,
) -> Result<(*const f32, *const f32), Error> {
    match affine {
        Some(affine) => {
            check_channels("gamma", desc, affine.gamma)?;
            check_channels("beta", desc, affine.beta)?;
            Ok((affine.gamma.as_ptr(), affine.beta.as_ptr()))
        }
        None => Ok((ptr::null(), ptr::null())),
    }
}

pub(crate) fn optional_channels_mut(
    name: &str,
    desc: &Descriptor,
    data: Option<&mut [f32]>,
) -> Result<*mut f32, Error> {
    match data {
        Some(data) => {
            check_channels(name, desc, data)?;
            Ok(data.as_mut_ptr())
        }
        None => Ok(ptr::null_mut()),
    }
}

pub(crate) fn length_error(message: String) -> Error {
    Error::new(Status::LENGTH_MISMATCH, message)
}
