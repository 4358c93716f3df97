//! The element types a tensor slice may have, and the dtype each one tells
//! the library.

use crate::half_float::{Bf16, F16};
use crate::sys;

/// A tensor element type: `f32`, `Bf16` or `F16`. The tensor slices of a
/// call (x, y, dy, dx, residual, d_residual) share one element type, and
/// the binding sets the descriptor's dtype from it, so the two cannot
/// disagree. Per-channel vectors stay `f32` and the split phases' exchanged
/// blocks `f64` whatever the tensors are.
///
/// With a 16-bit type the library converts the inputs to `f32` exactly and
/// rounds each tensor output to nearest, ties to even. Forward calls compute
/// exactly as for `f32`: each tensor output is the `f32` call's rounded, and
/// per-channel outputs are the `f32` call's, bit for bit. Backward calls
/// (since 1.4.0) compute in double: each dx is within 1 ulp of exact batch
/// norm, so dx, dgamma, dbeta and the grad sums are not the `f32` call's
/// (they are closer to exact).
///
/// ```
/// use bnorm::{Bf16, Descriptor, Shape};
///
/// let layer = Descriptor::new(2)?.with_flags(bnorm::Flags::empty());
/// let shape = Shape::new(&[2, 2]);
/// let x: Vec<Bf16> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|&v| Bf16::from_f32(v)).collect();
/// let mut y = vec![Bf16::default(); 4];
/// bnorm::forward_inference(&layer, &shape, &x, &mut y, &[0.0; 2], &[1.0; 2], None)?;
/// assert_eq!(y[3].to_f32(), 4.0); // 4 / sqrt(1 + 1e-5), rounded to bfloat16
/// # Ok::<(), bnorm::Error>(())
/// ```
///
/// Tensors of different element types in one call do not compile:
///
/// ```compile_fail
/// use bnorm::{Bf16, Descriptor, Shape};
///
/// let layer = Descriptor::new(2).unwrap();
/// let x = vec![Bf16::default(); 4];
/// let mut y = vec![0.0f32; 4]; // not Bf16
/// let _ = bnorm::forward_inference(&layer, &Shape::new(&[2, 2]), &x, &mut y,
///                                  &[0.0; 2], &[1.0; 2], None);
/// ```
pub trait Element: Copy + sealed::Sealed {
    /// The `bnorm_dtype` of a tensor of this type.
    const DTYPE: sys::bnorm_dtype;
}

impl Element for f32 {
    const DTYPE: sys::bnorm_dtype = sys::BNORM_DTYPE_F32;
}

impl Element for Bf16 {
    const DTYPE: sys::bnorm_dtype = sys::BNORM_DTYPE_BF16;
}

impl Element for F16 {
    const DTYPE: sys::bnorm_dtype = sys::BNORM_DTYPE_F16;
}

/// Only the types whose layout matches a dtype the library knows may
/// implement `Element`: the C side reads the slices as that dtype.
mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for crate::half_float::Bf16 {}
    impl Sealed for crate::half_float::F16 {}
}
