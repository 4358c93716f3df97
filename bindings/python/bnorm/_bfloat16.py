"""bfloat16 as NumPy holds it here: uint16 arrays of the bits, the upper half
of a float32 (NumPy has no bfloat16 dtype). Rounding is to nearest, ties to
even, as libbnorm rounds its bfloat16 outputs."""

import numpy as np

from .errors import InvalidArgumentError

_SIGN_CLEARED = np.uint32(0x7FFFFFFF)
_INF_BITS = np.uint32(0x7F800000)
_QUIET_BIT = np.uint16(0x0040)


def to_bfloat16(a):
    """The bfloat16 bits (a new C-contiguous uint16 array) of the float array
    ``a`` rounded to nearest, ties to even: float16 and float32 are rounded
    once; float64 (and anything else, converted to float64 first) is rounded
    directly to bfloat16, not through float32. NaN stays NaN (quiet), values
    beyond bfloat16's range become +-inf."""
    a = np.asarray(a)
    if a.dtype in (np.float16, np.float32):
        bits = np.ascontiguousarray(a, np.float32).view(np.uint32)
    else:
        bits = _float32_rounded_to_odd(np.asarray(a, np.float64))
    # The carry of a tie or more into bit 16 rounds up; (bits >> 16) & 1 makes
    # an exact tie round to even. NaN bits would wrap, so they are set apart.
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    nan = (bits & _SIGN_CLEARED) > _INF_BITS
    return np.where(nan, (bits >> 16).astype(np.uint16) | _QUIET_BIT, rounded)


def _float32_rounded_to_odd(a):
    """float32 bits of float64 ``a`` rounded toward zero, with the lowest bit
    set when that was inexact: float32 keeps 16 bits more than bfloat16, so
    rounding these to nearest even gives a's own bfloat16 rounding (rounding
    a to nearest float32 first could make a tie out of a value just off it)."""
    with np.errstate(over="ignore"):
        nearest = a.astype(np.float32)
    bits = np.ascontiguousarray(nearest).view(np.uint32).copy()
    back = nearest.astype(np.float64)
    inexact = (back != a) & ~np.isnan(a)
    # One step toward zero (sign-magnitude bits, so the magnitude's bits - 1;
    # inf becomes the largest finite float, still past bfloat16's range).
    bits[inexact & (np.abs(back) > np.abs(a))] -= np.uint32(1)
    bits[inexact] |= np.uint32(1)
    return bits


def from_bfloat16(bits):
    """float32 values (a new array) of a uint16 array of bfloat16 bits; exact."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise InvalidArgumentError(
            "bits has dtype %s; bfloat16 values are held as uint16 arrays of their bits"
            % bits.dtype)
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
