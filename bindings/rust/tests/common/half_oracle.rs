//! Rounding to bfloat16 and binary16 computed independently of the binding
//! (and of the library): by arithmetic on f64 from each format's precision
//! and exponent range, where `bnorm::Bf16` and `bnorm::F16` use bit tricks.
//! Rounding an f32 goes through its exact f64; rounding a float64 reference
//! is direct, with no double rounding through f32.

use std::fmt::Debug;

use bnorm::{Bf16, Element, F16};

/// A 16-bit float format: sign, `EXPONENT_BITS`, `MANTISSA_BITS`.
pub trait Half: Element + Debug {
    const NAME: &'static str;
    const EXPONENT_BITS: i32;
    const MANTISSA_BITS: i32;
    fn from_bits(bits: u16) -> Self;
    fn to_bits(self) -> u16;

    fn bias() -> i32 {
        (1 << (Self::EXPONENT_BITS - 1)) - 1
    }

    /// The exponent of the smallest normal value.
    fn min_exponent() -> i32 {
        1 - Self::bias()
    }

    fn max_finite() -> f64 {
        (2.0 - 2f64.powi(-Self::MANTISSA_BITS)) * 2f64.powi(Self::bias())
    }

    fn infinity_bits() -> u16 {
        (((1 << Self::EXPONENT_BITS) - 1) << Self::MANTISSA_BITS) as u16
    }

    fn quiet_bit() -> u16 {
        1 << (Self::MANTISSA_BITS - 1)
    }
}

impl Half for Bf16 {
    const NAME: &'static str = "bf16";
    const EXPONENT_BITS: i32 = 8;
    const MANTISSA_BITS: i32 = 7;
    fn from_bits(bits: u16) -> Bf16 {
        Bf16::from_bits(bits)
    }
    fn to_bits(self) -> u16 {
        Bf16::to_bits(self)
    }
}

impl Half for F16 {
    const NAME: &'static str = "f16";
    const EXPONENT_BITS: i32 = 5;
    const MANTISSA_BITS: i32 = 10;
    fn from_bits(bits: u16) -> F16 {
        F16::from_bits(bits)
    }
    fn to_bits(self) -> u16 {
        F16::to_bits(self)
    }
}

pub fn is_nan<T: Half>(bits: u16) -> bool {
    bits & 0x7fff > T::infinity_bits()
}

/// The value of a bit pattern, from the format's definition.
pub fn value<T: Half>(bits: u16) -> f64 {
    let m = T::MANTISSA_BITS;
    let exponent = ((bits & 0x7fff) >> m) as i32;
    let mantissa = (bits as i32) & ((1 << m) - 1);
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let magnitude = if exponent == (1 << T::EXPONENT_BITS) - 1 {
        if mantissa == 0 {
            f64::INFINITY
        } else {
            f64::NAN
        }
    } else if exponent == 0 {
        mantissa as f64 * 2f64.powi(T::min_exponent() - m)
    } else {
        (1.0 + mantissa as f64 / (1 << m) as f64) * 2f64.powi(exponent - T::bias())
    };
    sign * magnitude
}

/// q rounded to an integer, ties to even (q >= 0).
fn round_half_even(q: f64) -> f64 {
    let r = q.round(); // ties away from zero
    if r - q == 0.5 && r % 2.0 != 0.0 {
        r - 1.0
    } else {
        r
    }
}

/// The nearest value of the format to `v`, ties to even; beyond the largest
/// finite value by half an ulp or more, an infinity. NaN: the quiet NaN.
pub fn round<T: Half>(v: f64) -> u16 {
    if v.is_nan() {
        return T::infinity_bits() | T::quiet_bit();
    }
    let sign: u16 = if v.is_sign_negative() { 0x8000 } else { 0 };
    let a = v.abs();
    if a == 0.0 {
        return sign;
    }
    if a.is_infinite() {
        return sign | T::infinity_bits();
    }
    let m = T::MANTISSA_BITS;
    // floor(log2(a)) for a normal f64 (every input here is one).
    let exponent = ((a.to_bits() >> 52) as i32 - 1023).max(T::min_exponent());
    let quantum = 2f64.powi(exponent - m);
    let units = round_half_even(a / quantum); // exact scaling by a power of 2
    if units * quantum > T::max_finite() {
        return sign | T::infinity_bits();
    }
    let units = units as u32;
    if exponent == T::min_exponent() && units < (1 << m) {
        return sign | units as u16; // subnormal
    }
    // units in [2^m, 2^(m+1)]; the top end carries into the next binade.
    let (exponent, units) = if units == 1 << (m + 1) {
        (exponent + 1, 1 << m)
    } else {
        (exponent, units)
    };
    sign | ((((exponent + T::bias()) as u32) << m) | (units - (1 << m))) as u16
}

/// Size of one ulp of the format at magnitude `v` (the subnormal spacing
/// below the normals).
pub fn ulp<T: Half>(v: f64) -> f64 {
    let exponent = if v == 0.0 {
        T::min_exponent()
    } else {
        ((v.abs().to_bits() >> 52) as i32 - 1023).max(T::min_exponent())
    };
    2f64.powi(exponent - T::MANTISSA_BITS)
}

/// Steps between two non-NaN bit patterns along the number line (+0 and -0
/// are one point).
pub fn ulps_apart(a: u16, b: u16) -> u32 {
    let key = |bits: u16| {
        let magnitude = (bits & 0x7fff) as i32;
        if bits & 0x8000 != 0 {
            -magnitude
        } else {
            magnitude
        }
    };
    (key(a) - key(b)).unsigned_abs()
}
