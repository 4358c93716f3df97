package bnorm

// #include <bnorm/bnorm.h>
import "C"

import "math"

// BF16 is a bfloat16 value by its bits: the upper 16 bits of the float32 of
// the same value (sign, 8 exponent bits, 7 mantissa bits).
type BF16 uint16

// F16 is an IEEE 754 binary16 value by its bits (sign, 5 exponent bits, 10
// mantissa bits): finite values up to 65504, subnormals down to 2^-24.
type F16 uint16

// Element is a tensor element type. The tensors of a call (x, y, dy, dx,
// residual, dResidual) share one, and the call sets the descriptor's dtype
// from it: BNORM_DTYPE_F32, BNORM_DTYPE_BF16 or BNORM_DTYPE_F16. Per-channel
// vectors are []float32 and the split phases' blocks []float64 whatever it is.
//
// With BF16 or F16 the library converts the inputs to float32 exactly and
// rounds each tensor output to nearest, ties to even. Forward calls compute
// exactly as for float32: their outputs are the float32 call's, rounded, and
// per-channel outputs the float32 call's, bit for bit. Backward calls (since
// bnorm 1.4.0) compute in float64: each dx is within 1 ulp of exact batch
// norm, and dgamma and dbeta are closer to exact than the float32 call's.
type Element interface {
	float32 | BF16 | F16
}

// ToBF16 rounds f to the nearest bfloat16, ties to even, as the library
// rounds its outputs. NaN gives a quiet NaN of the same sign; a value past the
// largest finite bfloat16 (by half an ulp or more) an infinity.
func ToBF16(f float32) BF16 {
	bits := math.Float32bits(f)
	if f != f {
		// Truncating could clear every mantissa bit left (an infinity); the
		// quiet bit keeps it a NaN.
		return BF16(bits>>16 | 0x0040)
	}
	// Adding just under half of the dropped part, plus the kept part's lowest
	// bit, carries exactly when rounding goes up (to even on a tie); a carry
	// out of the mantissa steps the exponent, up to infinity.
	return BF16((bits + 0x7fff + (bits>>16)&1) >> 16)
}

// Float32 is b's value, exactly.
func (b BF16) Float32() float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// ToF16 rounds f to the nearest binary16, ties to even, subnormals included,
// as the library rounds its outputs. NaN gives a quiet NaN of the same sign;
// |f| >= 65520 (halfway past the largest finite, 65504) an infinity.
func ToF16(f float32) F16 {
	bits := math.Float32bits(f)
	sign := F16(bits>>16) & 0x8000
	magnitude := bits & 0x7fffffff
	switch {
	case magnitude > 0x7f800000: // NaN: keep the top of the payload, quiet
		return sign | 0x7e00 | F16(magnitude>>13)&0x03ff
	case magnitude >= 0x477ff000: // 65520 or more, or infinity
		return sign | 0x7c00
	case magnitude >= 0x38800000:
		// Normal (2^-14 and up): rebias the exponent from 127 to 15 and round
		// away 13 mantissa bits as ToBF16 does; the bound above keeps the
		// carry below the infinity.
		rounded := magnitude + 0x0fff + (magnitude>>13)&1
		return sign | F16((rounded-0x38000000)>>13)
	}
	// Subnormal or zero: the value in units of 2^-24, rounded to an integer.
	// A biased f32 exponent e with its 24-bit significand m is m*2^(e-150),
	// that is m >> (126-e) units.
	shift := 126 - magnitude>>23 // >= 14, since magnitude < 2^-14
	if shift > 24 {
		return sign // below half the smallest subnormal
	}
	significand := magnitude&0x007fffff | 0x00800000
	kept := significand >> shift
	dropped := significand & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if dropped > half || dropped == half && kept&1 == 1 {
		kept++ // from the largest subnormal, 0x0400: the smallest normal
	}
	return sign | F16(kept)
}

// Float32 is h's value, exactly; a NaN comes back quiet.
func (h F16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exponent := uint32(h>>10) & 0x1f
	mantissa := uint32(h & 0x03ff)
	var magnitude uint32
	switch {
	case exponent == 0x1f && mantissa == 0:
		magnitude = 0x7f800000
	case exponent == 0x1f:
		magnitude = 0x7fc00000 | mantissa<<13
	case exponent == 0: // subnormal or zero: units of 2^-24, exact in float32
		magnitude = math.Float32bits(float32(mantissa) * (1.0 / 16777216))
	default:
		magnitude = (exponent+112)<<23 | mantissa<<13
	}
	return math.Float32frombits(sign | magnitude)
}

// element is what a call tells the library about its tensors' type.
type element struct {
	dtype C.bnorm_dtype
	size  int // bytes
}

func elementOf[T Element]() element {
	var zero T
	switch any(zero).(type) {
	case BF16:
		return element{C.BNORM_DTYPE_BF16, 2}
	case F16:
		return element{C.BNORM_DTYPE_F16, 2}
	}
	return element{C.BNORM_DTYPE_F32, 4}
}
