//! The two 16-bit tensor element types the library takes besides `f32`:
//! `Bf16` (bfloat16, the upper half of an IEEE float32) and `F16` (IEEE
//! binary16).
//!
//! Hand-written rather than taken from the `half` crate so that the binding
//! keeps building offline with no dependency beyond `std`. Each is its bit
//! pattern (`#[repr(transparent)]` over `u16`, so a `&[Bf16]` is exactly the
//! buffer the C API reads), with exact conversion to `f32` and rounding from
//! `f32` to nearest, ties to even, as the library rounds its outputs: NaN
//! stays NaN (quiet), and an `F16` beyond its range becomes an infinity.

use std::fmt;

/// bfloat16: sign, 8 exponent bits, 7 mantissa bits; the upper 16 bits of
/// the `f32` of the same value.
///
/// ```
/// use bnorm::Bf16;
/// assert_eq!(Bf16::from_f32(1.0).to_bits(), 0x3f80);
/// // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the even one wins.
/// assert_eq!(Bf16::from_f32(1.0 + 1.0 / 256.0).to_f32(), 1.0);
/// assert_eq!(Bf16::from_bits(0x4049).to_f32(), 3.140625);
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct Bf16(u16);

/// IEEE 754 binary16: sign, 5 exponent bits, 10 mantissa bits; finite
/// values up to 65504, subnormals down to 2^-24.
///
/// ```
/// use bnorm::F16;
/// assert_eq!(F16::from_f32(1.0).to_bits(), 0x3c00);
/// assert_eq!(F16::from_f32(65520.0).to_f32(), f32::INFINITY); // halfway to 2^16 rounds up
/// assert_eq!(F16::from_bits(0x0001).to_f32(), 2f32.powi(-24)); // smallest subnormal
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct F16(u16);

impl Bf16 {
    pub const fn from_bits(bits: u16) -> Bf16 {
        Bf16(bits)
    }

    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// The nearest bfloat16, ties to even; NaN gives a quiet NaN of the same
    /// sign, and a value past the largest finite one an infinity.
    pub fn from_f32(value: f32) -> Bf16 {
        let bits = value.to_bits();
        if value.is_nan() {
            // Truncating could clear every mantissa bit left (an infinity);
            // the quiet bit keeps it a NaN.
            return Bf16((bits >> 16) as u16 | 0x0040);
        }
        // Adding just under half of the dropped part, plus the kept part's
        // lowest bit, carries exactly when rounding goes up (to even on a
        // tie); a carry out of the mantissa steps the exponent, up to inf.
        let rounding = 0x7fff + ((bits >> 16) & 1);
        Bf16((bits.wrapping_add(rounding) >> 16) as u16)
    }

    /// Exact.
    pub fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }

    pub fn is_nan(self) -> bool {
        self.to_f32().is_nan()
    }
}

impl F16 {
    pub const fn from_bits(bits: u16) -> F16 {
        F16(bits)
    }

    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// The nearest binary16, ties to even, subnormals included; NaN gives a
    /// quiet NaN of the same sign, and `|value| >= 65520` (halfway past the
    /// largest finite 65504) an infinity.
    pub fn from_f32(value: f32) -> F16 {
        let bits = value.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let magnitude = bits & 0x7fff_ffff;
        if magnitude > 0x7f80_0000 {
            // NaN: keep the top of the payload, and the quiet bit set.
            return F16(sign | 0x7e00 | ((magnitude >> 13) & 0x03ff) as u16);
        }
        if magnitude >= 0x477f_f000 {
            return F16(sign | 0x7c00); // 65520 or more, or infinity
        }
        if magnitude >= 0x3880_0000 {
            // Normal (2^-14 and up): rebias the exponent from 127 to 15 and
            // round away 13 mantissa bits, as for Bf16; the bound above keeps
            // the carry below the infinity.
            let rounded = magnitude + 0x0fff + ((magnitude >> 13) & 1);
            return F16(sign | ((rounded - 0x3800_0000) >> 13) as u16);
        }
        // Subnormal or zero: the value in units of 2^-24, rounded to an
        // integer. f32 exponent e (biased) with its 24-bit significand m is
        // m * 2^(e - 150), i.e. m >> (126 - e) units.
        let exponent = magnitude >> 23;
        let shift = 126 - exponent; // >= 14, since magnitude < 2^-14
        if shift > 24 {
            return F16(sign); // below half the smallest subnormal
        }
        let significand = (magnitude & 0x007f_ffff) | 0x0080_0000;
        let kept = significand >> shift;
        let dropped = significand & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let round_up = dropped > half || (dropped == half && kept & 1 == 1);
        // Rounding up from the largest subnormal gives 0x0400, the smallest
        // normal, as it should.
        F16(sign | (kept + round_up as u32) as u16)
    }

    /// Exact; a NaN comes back quiet.
    pub fn to_f32(self) -> f32 {
        let sign = ((self.0 & 0x8000) as u32) << 16;
        let exponent = ((self.0 >> 10) & 0x1f) as u32;
        let mantissa = (self.0 & 0x03ff) as u32;
        let magnitude = match exponent {
            0x1f if mantissa == 0 => 0x7f80_0000,
            0x1f => 0x7fc0_0000 | (mantissa << 13),
            // Subnormal (or zero): mantissa units of 2^-24, exact in f32.
            0 => (mantissa as f32 * (1.0 / 16_777_216.0)).to_bits(),
            _ => ((exponent + 112) << 23) | (mantissa << 13),
        };
        f32::from_bits(sign | magnitude)
    }

    pub fn is_nan(self) -> bool {
        self.0 & 0x7fff > 0x7c00
    }
}

macro_rules! float_like {
    ($t:ident) => {
        impl From<$t> for f32 {
            fn from(value: $t) -> f32 {
                value.to_f32()
            }
        }

        /// Compares values, as floats do: NaN equals nothing, and -0 equals +0.
        impl PartialEq for $t {
            fn eq(&self, other: &$t) -> bool {
                self.to_f32() == other.to_f32()
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &$t) -> Option<std::cmp::Ordering> {
                self.to_f32().partial_cmp(&other.to_f32())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.to_f32(), f)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.to_f32(), f)
            }
        }
    };
}

float_like!(Bf16);
float_like!(F16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_nan_quiet() {
        let round = |bits: u32| Bf16::from_f32(f32::from_bits(bits)).to_bits();
        assert_eq!(round(0x3f80_7fff), 0x3f80); // below half: down
        assert_eq!(round(0x3f80_8000), 0x3f80); // half, even below: down
        assert_eq!(round(0x3f81_8000), 0x3f82); // half, odd below: up
        assert_eq!(round(0x3f80_8001), 0x3f81); // above half: up
        assert_eq!(round(0x7f7f_ffff), 0x7f80); // the largest f32 rounds to inf
        assert_eq!(round(0xff80_0000), 0xff80); // -inf stays

        // A signalling NaN whose payload sits in the dropped half only.
        assert_eq!(round(0x7f80_0001), 0x7fc0);
        assert_eq!(round(0xffc0_0000), 0xffc0);
    }

    #[test]
    fn f16_rounds_normals_subnormals_and_overflow() {
        let round = |value: f32| F16::from_f32(value).to_bits();
        assert_eq!(round(65504.0), 0x7bff);
        assert_eq!(round(65519.996), 0x7bff); // just under the halfway point
        assert_eq!(round(65520.0), 0x7c00);
        assert_eq!(round(-1e9), 0xfc00);
        assert_eq!(round(2f32.powi(-24)), 0x0001);
        assert_eq!(round(2f32.powi(-25)), 0x0000); // a tie: to even, 0
        assert_eq!(round(1.5 * 2f32.powi(-24)), 0x0002); // a tie: to even, 2
        assert_eq!(round(2f32.powi(-14) - 2f32.powi(-26)), 0x0400); // up into the normals
        assert_eq!(round(-0.0), 0x8000);
        assert_eq!(round(1.0 + 2f32.powi(-11)), 0x3c00); // tie: to even
        assert_eq!(round(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02); // tie: to even
        assert!(F16::from_f32(f32::NAN).is_nan());
        assert_eq!(round(f32::from_bits(0x7f80_0001)), 0x7e00);
    }

    #[test]
    fn every_f16_comes_back_from_its_f32() {
        for bits in 0..=u16::MAX {
            let value = F16::from_bits(bits);
            if value.is_nan() {
                assert!(value.to_f32().is_nan());
                assert_eq!(F16::from_f32(value.to_f32()).to_bits(), bits | 0x0200);
            } else {
                assert_eq!(
                    F16::from_f32(value.to_f32()).to_bits(),
                    bits,
                    "{:#06x}",
                    bits
                );
            }
            let value = Bf16::from_bits(bits);
            assert_eq!(value.to_f32().to_bits() >> 16, bits as u32);
        }
    }
}
