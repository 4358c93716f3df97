"""Turning caller objects into NumPy views the C library can be handed.

Nothing here copies unless the caller asked for it (copy=True), and outputs are
never copied at all: a copy of an output would be written and thrown away.
"""

import numpy as np

from . import _lib
from .errors import FeatureMismatchError, InvalidArgumentError, InvalidShapeError

LAYOUTS = {"NCHW": _lib.LAYOUT_NCHW, "NHWC": _lib.LAYOUT_NHWC}

# float16 is passed through as BNORM_DTYPE_F16 so the library itself answers
# (BNORM_ERR_UNSUPPORTED in v1.0) and starts working when a build implements it.
_TENSOR_DTYPES = {np.dtype(np.float32): _lib.DTYPE_F32, np.dtype(np.float16): _lib.DTYPE_F16}


def layout_code(layout):
    try:
        return LAYOUTS[layout.upper()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(
            "layout is %r; it must be 'NCHW' (channels first) or 'NHWC' (channels last)"
            % (layout,)) from None


def channel_axis(layout_value, rank):
    return rank - 1 if layout_value == _lib.LAYOUT_NHWC else 1


def _view(obj):
    """A no-copy ndarray view of obj, or None if obj exposes no array memory."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__array_interface__") or hasattr(obj, "__array_struct__"):
        return np.asarray(obj)
    try:
        # Through memoryview so bytes-like objects keep their format and shape
        # (np.asarray(bytes) would make a string scalar instead).
        return np.asarray(memoryview(obj))
    except TypeError:
        return None


def _describe(obj):
    return type(obj).__module__ + "." + type(obj).__qualname__


def as_input(obj, name, copy, dtypes=_TENSOR_DTYPES):
    """A read-only input as an ndarray, C-contiguous and of a bnorm dtype."""
    view = _view(obj)
    if copy:
        source = view if view is not None else np.asarray(obj)
        dtype = source.dtype if source.dtype in dtypes else np.float32
        # Aligned as well: the copy is the chance to fix that too.
        return np.require(source, dtype, ["C", "A"])
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; expected a float32 array (NumPy array, buffer or __array_interface__), "
            "e.g. a CPU torch tensor's .numpy(); pass copy=True to convert"
            % (name, _describe(obj)))
    _check_tensor(view, name, dtypes, "pass copy=True to convert")
    return view


def as_output(obj, name, dtypes=_TENSOR_DTYPES):
    """A caller's output buffer as a writable ndarray view of its memory."""
    view = _view(obj)
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; an output must be a writable float32 array the result can be written "
            "into (NumPy array, buffer or __array_interface__)" % (name, _describe(obj)))
    _check_tensor(view, name, dtypes, "outputs are never copied")
    if not view.flags.writeable:
        raise InvalidArgumentError("%s is read-only; an output must be writable" % name)
    return view


def _check_tensor(view, name, dtypes, remedy):
    if view.dtype not in dtypes:
        raise InvalidArgumentError(
            "%s has dtype %s; bnorm takes float32 (%s)" % (name, view.dtype, remedy))
    if not view.flags.c_contiguous:
        raise InvalidArgumentError(
            "%s is not C-contiguous (shape %s, strides %s); bnorm needs dense memory in the "
            "layout's order (%s)" % (name, view.shape, view.strides, remedy))


def tensor_dtype_code(array):
    return _TENSOR_DTYPES[array.dtype]


_VECTOR_DTYPES = {np.dtype(np.float32): _lib.DTYPE_F32}
# Layer weights (fold_into_layer) are float32 whatever the tensors' dtype.
WEIGHT_DTYPES = _VECTOR_DTYPES


def as_vector(obj, name, num_features, copy=False, writable=False, origin="num_features"):
    """A per-channel vector: float32[num_features], 1-D and contiguous.

    The C library cannot see a vector's length, so this is the only place a
    short vector is caught before the library would read past its end."""
    if obj is None:
        return None
    if writable:
        view = as_output(obj, name, dtypes=_VECTOR_DTYPES)
    else:
        view = as_input(obj, name, copy, dtypes=_VECTOR_DTYPES)
    if view.ndim != 1 or view.shape[0] != num_features:
        raise FeatureMismatchError(
            "%s has shape %s but must be a vector of %d values (%s)"
            % (name, view.shape, num_features, origin))
    return view


def tensor_output(out, name, x, dtypes=_TENSOR_DTYPES, x_name="the input"):
    """``out`` checked against x's shape and dtype, or a new array like x."""
    if out is None:
        return np.empty_like(x)
    view = as_output(out, name, dtypes)
    if view.shape != x.shape or view.dtype != x.dtype:
        raise InvalidShapeError("%s has shape %s and dtype %s but must have %s's shape "
                                "%s and dtype %s" % (name, view.shape, view.dtype, x_name,
                                                     x.shape, x.dtype))
    return view


def shape_of(x):
    """The bnorm_shape of x (dims in memory order = x.shape, as x is
    C-contiguous). Ranks 0..5 fit the struct; the library judges them, so its
    message is the one the caller sees. Above 5 the struct cannot hold it."""
    if x.ndim > _lib.MAX_RANK:
        raise InvalidShapeError("input has rank %d (shape %s); bnorm takes ranks 2 to 5"
                                % (x.ndim, x.shape))
    return _lib.make_shape(x.shape)


def ptr(array):
    """The data address for the C call; None (NULL) for a missing array."""
    return None if array is None else array.ctypes.data


def returned(original, view):
    """What to hand back for an out= argument: the caller's own object when it
    is an ndarray (so ``result is out``), otherwise the view of its memory."""
    return original if isinstance(original, np.ndarray) else view
