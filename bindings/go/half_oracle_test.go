package bnorm_test

import (
	"math"
	"math/rand"
	"testing"

	"bnorm"
)

// Rounding to bfloat16 and binary16 computed independently of the binding
// (and of the library): by arithmetic on float64 from each format's precision
// and exponent range, where ToBF16 and ToF16 use bit tricks. Rounding a
// float32 goes through its exact float64; rounding a float64 reference is
// direct, with no double rounding through float32.

// format is a 16-bit float format: sign, exponent bits, mantissa bits.
type format struct {
	name                       string
	exponentBits, mantissaBits int
}

var (
	bf16Format = format{"bf16", 8, 7}
	f16Format  = format{"f16", 5, 10}
)

// half is the binding's 16-bit element types.
type half interface {
	bnorm.BF16 | bnorm.F16
}

func formatOf[T half]() format {
	var zero T
	if _, ok := any(zero).(bnorm.BF16); ok {
		return bf16Format
	}
	return f16Format
}

func (f format) bias() int { return 1<<(f.exponentBits-1) - 1 }

// minExponent is the exponent of the smallest normal value.
func (f format) minExponent() int { return 1 - f.bias() }

func (f format) maxFinite() float64 {
	return (2 - math.Ldexp(1, -f.mantissaBits)) * math.Ldexp(1, f.bias())
}

func (f format) infinity() uint16 { return uint16((1<<f.exponentBits - 1) << f.mantissaBits) }

func (f format) quietBit() uint16 { return 1 << (f.mantissaBits - 1) }

func (f format) isNaN(bits uint16) bool { return bits&0x7fff > f.infinity() }

// value is a bit pattern's value, from the format's definition.
func (f format) value(bits uint16) float64 {
	m := f.mantissaBits
	exponent := int(bits&0x7fff) >> m
	mantissa := float64(int(bits) & (1<<m - 1))
	sign := 1.0
	if bits&0x8000 != 0 {
		sign = -1
	}
	switch {
	case exponent == 1<<f.exponentBits-1 && mantissa == 0:
		return sign * math.Inf(1)
	case exponent == 1<<f.exponentBits-1:
		return math.NaN()
	case exponent == 0:
		return sign * math.Ldexp(mantissa, f.minExponent()-m)
	}
	return sign * (1 + math.Ldexp(mantissa, -m)) * math.Ldexp(1, exponent-f.bias())
}

// exponentOf is floor(log2(|v|)) for a finite v != 0, at least the smallest
// normal's.
func (f format) exponentOf(v float64) int {
	_, e := math.Frexp(v) // v = frac * 2^e, frac in [0.5, 1)
	if e-1 < f.minExponent() {
		return f.minExponent()
	}
	return e - 1
}

// round is the nearest value of the format to v, ties to even; beyond the
// largest finite value by half an ulp or more, an infinity; NaN, the quiet NaN.
func (f format) round(v float64) uint16 {
	if math.IsNaN(v) {
		return f.infinity() | f.quietBit()
	}
	var sign uint16
	if math.Signbit(v) {
		sign = 0x8000
	}
	a := math.Abs(v)
	if a == 0 {
		return sign
	}
	if math.IsInf(a, 0) {
		return sign | f.infinity()
	}
	m := f.mantissaBits
	exponent := f.exponentOf(a)
	quantum := math.Ldexp(1, exponent-m)
	units := math.RoundToEven(a / quantum) // exact scaling by a power of 2
	if units*quantum > f.maxFinite() {
		return sign | f.infinity()
	}
	u := uint16(units)
	if exponent == f.minExponent() && u < 1<<m {
		return sign | u // subnormal
	}
	if u == 1<<(m+1) { // carries into the next binade
		exponent, u = exponent+1, 1<<m
	}
	return sign | uint16(exponent+f.bias())<<m | (u - 1<<m)
}

// ulp is the size of one ulp of the format at magnitude v.
func (f format) ulp(v float64) float64 {
	if v == 0 {
		return math.Ldexp(1, f.minExponent()-f.mantissaBits)
	}
	return math.Ldexp(1, f.exponentOf(math.Abs(v))-f.mantissaBits)
}

// ulpsApart is the number of steps between two non-NaN bit patterns along the
// number line (+0 and -0 are one point).
func ulpsApart(a, b uint16) int {
	key := func(bits uint16) int {
		if bits&0x8000 != 0 {
			return -int(bits & 0x7fff)
		}
		return int(bits)
	}
	d := key(a) - key(b)
	if d < 0 {
		return -d
	}
	return d
}

// probes are float32 values that probe rounding in both formats: every value
// of each, the midpoints between neighbours and the float32 values just either
// side of them, random bit patterns, and the special values.
func probes() []float32 {
	var values []float32
	for bits := 0; bits <= math.MaxUint16; bits++ {
		for _, f := range []format{f16Format, bf16Format} {
			v := f.value(uint16(bits))
			if math.IsInf(v, 0) || math.IsNaN(v) {
				continue
			}
			next := v + math.Copysign(f.ulp(v), v)
			mid := float32((v + next) / 2)
			below := math.Float32frombits(math.Float32bits(mid) - 1)
			above := math.Float32frombits(math.Float32bits(mid) + 1)
			values = append(values, float32(v), mid, below, above)
		}
	}
	rng := rand.New(rand.NewSource(16))
	for i := 0; i < 200000; i++ {
		values = append(values, math.Float32frombits(rng.Uint32()))
	}
	nan := float32(math.NaN())
	return append(values, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)),
		float32(math.Inf(-1)), nan, -nan, math.Float32frombits(0x7f800001), math.MaxFloat32,
		math.SmallestNonzeroFloat32, 0x1p-126, 65504, 65519.99, 65520)
}

func checkConversions[T half](t *testing.T, from func(float32) T, to func(T) float32) {
	t.Helper()
	f := formatOf[T]()
	for bits := 0; bits <= math.MaxUint16; bits++ {
		got, want := to(T(bits)), f.value(uint16(bits))
		if math.IsNaN(want) != math.IsNaN(float64(got)) ||
			!math.IsNaN(want) && float64(got) != want {
			t.Fatalf("%s %#04x: Float32 gives %g, want %g", f.name, bits, got, want)
		}
	}
	for _, v := range probes() {
		got := uint16(from(v))
		if v != v {
			if !f.isNaN(got) || got&f.quietBit() == 0 {
				t.Fatalf("%s from %#08x: %#04x is not a quiet NaN", f.name, math.Float32bits(v), got)
			}
		} else if want := f.round(float64(v)); got != want {
			t.Fatalf("%s from %g (%#08x): %#04x, want %#04x", f.name, v, math.Float32bits(v), got,
				want)
		}
	}
}

func TestHalfConversionsAgreeWithTheFormatsDefinition(t *testing.T) {
	checkConversions(t, bnorm.ToBF16, bnorm.BF16.Float32)
	checkConversions(t, bnorm.ToF16, bnorm.F16.Float32)
}

// The usual integer form of bf16 rounding, as a check on the oracle.
func TestOracleAgreesWithIntegerBF16Rounding(t *testing.T) {
	for _, v := range probes() {
		if v != v {
			continue
		}
		bits := math.Float32bits(v)
		integer := uint16((bits + 0x7fff + (bits>>16)&1) >> 16)
		if got := bf16Format.round(float64(v)); got != integer {
			t.Fatalf("%g: oracle %#04x, integer rounding %#04x", v, got, integer)
		}
	}
}
