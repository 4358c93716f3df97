//! Batch norm in eval mode as a per-channel affine map (bnorm 1.1):
//! `y = x * scale[c] + shift[c]` with
//! `scale = gamma / sqrt(var + eps)` and `shift = beta - mean * scale`
//! (gamma 1 and beta 0 without `Flags::AFFINE`), computed in double
//! precision and rounded once.
//!
//! As in `ops`, every slice's length is checked before calling C and the
//! rest is the library's to check. The in-place pairs the C API allows
//! (`y == x`, `folded_weights == weights` with `folded_bias == bias`) have
//! their own `*_in_place` functions; any other overlap cannot be expressed.

use std::os::raw::c_void;
use std::ptr;

use crate::descriptor::Descriptor;
use crate::element::Element;
use crate::error::Error;
use crate::ops::{check_affine, check_channels, check_tensor, length_error, Affine};
use crate::shape::Shape;
use crate::sys;

/// Folds the layer's statistics and parameters into `scale` and `shift`,
/// each `num_features` long, for `forward_scale_shift`. Uses num_features,
/// eps and `Flags::AFFINE` from `desc` (which requires `affine`).
pub fn fold_scale_shift(
    desc: &Descriptor,
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
    scale: &mut [f32],
    shift: &mut [f32],
) -> Result<(), Error> {
    check_channels("mean", desc, mean)?;
    check_channels("var", desc, var)?;
    let (gamma, beta) = check_affine(desc, affine)?;
    check_channels("scale", desc, scale)?;
    check_channels("shift", desc, shift)?;
    // SAFETY: every buffer holds num_features floats; the outputs are
    // exclusive borrows, so they overlap nothing.
    let status = unsafe {
        sys::bnorm_fold_scale_shift(
            desc.as_raw(),
            mean.as_ptr(),
            var.as_ptr(),
            gamma,
            beta,
            scale.as_mut_ptr(),
            shift.as_mut_ptr(),
        )
    };
    Error::check(status)
}

/// Inference with a precomputed scale and shift (from `fold_scale_shift`):
/// `y = x * scale[c] + shift[c]`, then ReLU with `Flags::FUSE_RELU`. Matches
/// `forward_inference` with the statistics to float rounding.
pub fn forward_scale_shift<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    y: &mut [T],
    scale: &[f32],
    shift: &[f32],
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("y", shape, y)?;
    scale_shift(desc, shape, x.as_ptr(), y.as_mut_ptr(), scale, shift)
}

/// `forward_scale_shift` writing y over x.
pub fn forward_scale_shift_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &mut [T],
    scale: &[f32],
    shift: &[f32],
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    let xy = x.as_mut_ptr();
    scale_shift(desc, shape, xy, xy, scale, shift)
}

fn scale_shift<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: *const T,
    y: *mut T,
    scale: &[f32],
    shift: &[f32],
) -> Result<(), Error> {
    check_channels("scale", desc, scale)?;
    check_channels("shift", desc, shift)?;
    // SAFETY: as in `ops::inference`: the buffers hold what the descriptor
    // and shape make the library access, or the shape is one the library
    // rejects before accessing any buffer.
    let status = unsafe {
        sys::bnorm_forward_scale_shift(
            &desc.raw_for::<T>(),
            shape.as_raw(),
            x as *const c_void,
            y as *mut c_void,
            scale.as_ptr(),
            shift.as_ptr(),
        )
    };
    Error::check(status)
}

/// Folds batch norm into the convolution or linear layer before it, whose
/// output channels are the descriptor's num_features:
/// `folded_weights[o * row_length + k] = weights[o * row_length + k] * scale[o]`
/// and `folded_bias[o] = (bias[o] - mean[o]) * scale[o] + beta[o]`.
///
/// `weights` are num_features rows, output channel first (convolution OIHW
/// or OHWI, linear `(out, in)`); `row_length` is `weights.len() /
/// num_features`, and a length that is not a multiple of num_features is
/// `Status::LENGTH_MISMATCH`. `folded_weights` has `weights.len()` elements;
/// `bias` (`None`: the layer has none, taken as 0) and `folded_bias` have
/// num_features. Empty `weights` reach the library, which rejects row_length
/// 0 with `Status::INVALID_ARGUMENT`.
#[allow(clippy::too_many_arguments)]
pub fn fold_into_layer(
    desc: &Descriptor,
    weights: &[f32],
    bias: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
    folded_weights: &mut [f32],
    folded_bias: &mut [f32],
) -> Result<(), Error> {
    let row_length = row_length(desc, weights)?;
    if folded_weights.len() != weights.len() {
        return Err(length_error(format!(
            "folded weights has {} elements but weights has {}",
            folded_weights.len(),
            weights.len()
        )));
    }
    let bias = match bias {
        Some(bias) => {
            check_channels("bias", desc, bias)?;
            bias.as_ptr()
        }
        None => ptr::null(),
    };
    check_channels("folded bias", desc, folded_bias)?;
    into_layer(
        desc,
        row_length,
        weights.as_ptr(),
        bias,
        mean,
        var,
        affine,
        folded_weights.as_mut_ptr(),
        folded_bias.as_mut_ptr(),
    )
}

/// `fold_into_layer` writing the folded weights over `weights` and the folded
/// bias over `bias`. A layer without a bias passes zeros (what `None` means
/// in `fold_into_layer`); `bias` receives the folded bias either way.
pub fn fold_into_layer_in_place(
    desc: &Descriptor,
    weights: &mut [f32],
    bias: &mut [f32],
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    let row_length = row_length(desc, weights)?;
    check_channels("bias", desc, bias)?;
    let (weights, bias) = (weights.as_mut_ptr(), bias.as_mut_ptr());
    into_layer(
        desc, row_length, weights, bias, mean, var, affine, weights, bias,
    )
}

/// `weights.len() / num_features`, if it divides evenly.
fn row_length(desc: &Descriptor, weights: &[f32]) -> Result<i64, Error> {
    // Descriptor::new guarantees num_features > 0.
    let channels = usize::try_from(desc.num_features()).unwrap_or(usize::MAX);
    if weights.len() % channels != 0 {
        return Err(length_error(format!(
            "weights has {} elements, not a multiple of num_features {} \
             (num_features rows of row_length each)",
            weights.len(),
            channels
        )));
    }
    // A slice of f32 holds at most isize::MAX / 4 elements, so this fits.
    Ok(i64::try_from(weights.len() / channels).unwrap_or(i64::MAX))
}

#[allow(clippy::too_many_arguments)]
fn into_layer(
    desc: &Descriptor,
    row_length: i64,
    weights: *const f32,
    bias: *const f32,
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
    folded_weights: *mut f32,
    folded_bias: *mut f32,
) -> Result<(), Error> {
    check_channels("mean", desc, mean)?;
    check_channels("var", desc, var)?;
    let (gamma, beta) = check_affine(desc, affine)?;
    // SAFETY: the weight buffers hold num_features * row_length floats and
    // the per-channel buffers num_features (bias may be NULL), checked by the
    // callers; the outputs are either exclusive borrows or exactly the
    // inputs, the in-place pair the C API allows. row_length 0 (empty
    // weights) is rejected by the library before it accesses any buffer.
    let status = unsafe {
        sys::bnorm_fold_into_layer(
            desc.as_raw(),
            row_length,
            weights,
            bias,
            mean.as_ptr(),
            var.as_ptr(),
            gamma,
            beta,
            folded_weights,
            folded_bias,
        )
    };
    Error::check(status)
}
