//! Raw declarations of `include/bnorm/bnorm.h`, version 1.4.
//!
//! C enums are plain integers here: the library may hand back a value this
//! binding does not know (a newer minor version, a corrupted descriptor), and
//! turning such a value into a Rust `enum` would be undefined behaviour.
//! GCC and Clang give these enums the type `unsigned int`.

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_uint, c_void};

pub const BNORM_VERSION_MAJOR: u32 = 1;
pub const BNORM_VERSION_MINOR: u32 = 4;
pub const BNORM_VERSION_PATCH: u32 = 0;
/// MAJOR*10000 + MINOR*100 + PATCH of the header these declarations follow.
pub const BNORM_VERSION_NUMBER: u32 = 10400;

pub type bnorm_status = c_uint;
pub const BNORM_OK: bnorm_status = 0;
pub const BNORM_ERR_NULL_POINTER: bnorm_status = 1;
pub const BNORM_ERR_INVALID_DESCRIPTOR: bnorm_status = 2;
pub const BNORM_ERR_INVALID_SHAPE: bnorm_status = 3;
pub const BNORM_ERR_FEATURE_MISMATCH: bnorm_status = 4;
pub const BNORM_ERR_INVALID_ARGUMENT: bnorm_status = 5;
pub const BNORM_ERR_TOO_FEW_VALUES: bnorm_status = 6;
pub const BNORM_ERR_ALIASING: bnorm_status = 7;
pub const BNORM_ERR_UNSUPPORTED: bnorm_status = 8;
pub const BNORM_ERR_OUT_OF_MEMORY: bnorm_status = 9;
pub const BNORM_ERR_INTERNAL: bnorm_status = 10;

pub type bnorm_layout = c_uint;
pub const BNORM_LAYOUT_NCHW: bnorm_layout = 0;
pub const BNORM_LAYOUT_NHWC: bnorm_layout = 1;

pub type bnorm_dtype = c_uint;
pub const BNORM_DTYPE_F32: bnorm_dtype = 0;
pub const BNORM_DTYPE_BF16: bnorm_dtype = 1;
pub const BNORM_DTYPE_F16: bnorm_dtype = 2;

pub const BNORM_FLAG_AFFINE: u32 = 1 << 0;
pub const BNORM_FLAG_TRACK_RUNNING_STATS: u32 = 1 << 1;
pub const BNORM_FLAG_FUSE_RELU: u32 = 1 << 2;
pub const BNORM_FLAG_USE_GLOBAL_STATS: u32 = 1 << 3;

/// Values per channel in the split phases' exchanged `double` arrays: stats
/// `(count, mean, M2)` and grad sums `(count, sum(g), sum(g * (x - mean)))`.
/// Since 1.2.
pub const BNORM_SPLIT_VALUES_PER_CHANNEL: u32 = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bnorm_desc {
    pub struct_size: u32,
    pub num_features: i64,
    pub eps: f32,
    pub momentum: f32,
    pub flags: u32,
    pub layout: bnorm_layout,
    pub dtype: bnorm_dtype,
    pub num_threads: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct bnorm_shape {
    pub rank: i32,
    pub dims: [i64; 5],
}

extern "C" {
    pub fn bnorm_version() -> u32;
    pub fn bnorm_version_string() -> *const c_char;

    pub fn bnorm_status_string(status: bnorm_status) -> *const c_char;
    pub fn bnorm_last_error() -> *const c_char;

    pub fn bnorm_desc_init(d: *mut bnorm_desc, num_features: i64) -> bnorm_status;

    pub fn bnorm_forward_inference(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        y: *mut c_void,
        mean: *const f32,
        var: *const f32,
        gamma: *const f32,
        beta: *const f32,
    ) -> bnorm_status;

    pub fn bnorm_forward_training(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        y: *mut c_void,
        gamma: *const f32,
        beta: *const f32,
        running_mean: *mut f32,
        running_var: *mut f32,
        save_mean: *mut f32,
        save_invstd: *mut f32,
    ) -> bnorm_status;

    pub fn bnorm_backward(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        dy: *const c_void,
        y: *const c_void,
        gamma: *const f32,
        save_mean: *const f32,
        save_invstd: *const f32,
        dx: *mut c_void,
        dgamma: *mut f32,
        dbeta: *mut f32,
    ) -> bnorm_status;

    /// Since 1.1.
    pub fn bnorm_fold_scale_shift(
        desc: *const bnorm_desc,
        mean: *const f32,
        var: *const f32,
        gamma: *const f32,
        beta: *const f32,
        scale: *mut f32,
        shift: *mut f32,
    ) -> bnorm_status;

    /// Since 1.1.
    pub fn bnorm_forward_scale_shift(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        y: *mut c_void,
        scale: *const f32,
        shift: *const f32,
    ) -> bnorm_status;

    /// Since 1.1.
    pub fn bnorm_fold_into_layer(
        desc: *const bnorm_desc,
        row_length: i64,
        weights: *const f32,
        bias: *const f32,
        mean: *const f32,
        var: *const f32,
        gamma: *const f32,
        beta: *const f32,
        folded_weights: *mut f32,
        folded_bias: *mut f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_forward_inference_residual(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        residual: *const c_void,
        y: *mut c_void,
        mean: *const f32,
        var: *const f32,
        gamma: *const f32,
        beta: *const f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_forward_training_residual(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        residual: *const c_void,
        y: *mut c_void,
        gamma: *const f32,
        beta: *const f32,
        running_mean: *mut f32,
        running_var: *mut f32,
        save_mean: *mut f32,
        save_invstd: *mut f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_backward_residual(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        dy: *const c_void,
        y: *const c_void,
        gamma: *const f32,
        save_mean: *const f32,
        save_invstd: *const f32,
        dx: *mut c_void,
        d_residual: *mut c_void,
        dgamma: *mut f32,
        dbeta: *mut f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_local_stats(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        partial_stats: *mut f64,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_merge_stats(
        desc: *const bnorm_desc,
        num_partials: i32,
        partial_stats: *const f64,
        merged_stats: *mut f64,
        mean: *mut f32,
        invstd: *mut f32,
        running_mean: *mut f32,
        running_var: *mut f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_forward_normalize(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        y: *mut c_void,
        gamma: *const f32,
        beta: *const f32,
        mean: *const f32,
        invstd: *const f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_backward_reduce(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        dy: *const c_void,
        y: *const c_void,
        mean: *const f32,
        invstd: *const f32,
        grad_sums: *mut f64,
        dgamma: *mut f32,
        dbeta: *mut f32,
    ) -> bnorm_status;

    /// Since 1.2.
    pub fn bnorm_backward_elementwise(
        desc: *const bnorm_desc,
        shape: *const bnorm_shape,
        x: *const c_void,
        dy: *const c_void,
        y: *const c_void,
        gamma: *const f32,
        mean: *const f32,
        invstd: *const f32,
        num_partials: i32,
        grad_sums: *const f64,
        dx: *mut c_void,
    ) -> bnorm_status;

    pub fn bnorm_active_target() -> *const c_char;
    pub fn bnorm_target_count() -> i32;
    pub fn bnorm_target_name(index: i32) -> *const c_char;
    pub fn bnorm_set_max_target(name: *const c_char) -> bnorm_status;
}
