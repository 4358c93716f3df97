"""The two 2-byte formats as the tests see them, written independently of
bnorm's own conversions so that they can judge them.

A Format turns float32 data into the format's storage (rounded to nearest,
ties to even), back into float32 (exact), and rounds a float64 reference
straight to the format (one rounding, not two through float32).
"""

import numpy as np


class Format:
    name = None       # the dtype argument's spelling
    storage = None    # the NumPy dtype the tensors are held in
    significant_bits = None
    min_exponent = None  # of the smallest subnormal's quantum, a power of 2
    max_finite = None

    def call_kwargs(self):
        """What a bnorm call needs to be told: nothing for float16 (x's
        dtype says it), dtype="bfloat16" for the uint16 bits."""
        raise NotImplementedError

    def encode(self, f32):
        raise NotImplementedError

    def decode(self, stored):
        raise NotImplementedError

    def bits(self, stored):
        return np.ascontiguousarray(stored).view(np.uint16)

    def round_double(self, values):
        """float64 values rounded to nearest-even in this format (as float64):
        the quantum is 2^(e - significant_bits) for |v| in [2^(e-1), 2^e),
        never below the subnormals' quantum; past the largest finite, inf."""
        values = np.asarray(values, np.float64)
        quantum = self.ulp(values)
        rounded = np.rint(values / quantum) * quantum  # rint: ties to even
        return np.where(np.abs(rounded) > self.max_finite, np.copysign(np.inf, values), rounded)

    def ulp(self, values):
        """The spacing of this format's values around |values| (the quantum
        of the binade holding them)."""
        _, exponent = np.frexp(np.asarray(values, np.float64))
        return np.ldexp(1.0, np.maximum(exponent - self.significant_bits, self.min_exponent))

    def __repr__(self):
        return self.name


class BFloat16(Format):
    name = "bfloat16"
    storage = np.dtype(np.uint16)
    significant_bits = 8
    min_exponent = -133
    max_finite = float(np.ldexp(255.0, 120))  # 0x7F7F

    def call_kwargs(self):
        return {"dtype": "bfloat16"}

    def encode(self, f32):
        """Integer round to nearest even of the float32 bits' upper half;
        NaN stays NaN with the quiet bit set."""
        bits = np.ascontiguousarray(f32, np.float32).view(np.uint32).astype(np.int64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        nan = (bits & 0x7FFFFFFF) > 0x7F800000
        return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)

    def decode(self, stored):
        return (np.asarray(stored, np.uint16).astype(np.uint32) << 16).view(np.float32)


class Float16(Format):
    name = "float16"
    storage = np.dtype(np.float16)
    significant_bits = 11
    min_exponent = -24
    max_finite = 65504.0

    def call_kwargs(self):
        return {}

    def encode(self, f32):
        # NumPy's float32 -> float16 cast rounds to nearest even, subnormals too.
        return np.asarray(f32, np.float32).astype(np.float16)

    def decode(self, stored):
        return np.asarray(stored, np.float16).astype(np.float32)


BFLOAT16 = BFloat16()
FLOAT16 = Float16()
FORMATS = (BFLOAT16, FLOAT16)
