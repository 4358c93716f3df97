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


def as_input(obj, name, copy, dtypes=_TENSOR_DTYPES, wanted="float32"):
    """A read-only input as an ndarray, C-contiguous and of a bnorm dtype
    (``wanted`` names it in messages; a copy converts to the first of dtypes)."""
    view = _view(obj)
    if copy:
        source = view if view is not None else np.asarray(obj)
        dtype = source.dtype if source.dtype in dtypes else next(iter(dtypes))
        # Aligned as well: the copy is the chance to fix that too.
        return np.require(source, dtype, ["C", "A"])
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; expected a %s array (NumPy array, buffer or __array_interface__), "
            "e.g. a CPU torch tensor's .numpy(); pass copy=True to convert"
            % (name, _describe(obj), wanted))
    _check_tensor(view, name, dtypes, "pass copy=True to convert", wanted)
    return view


def as_output(obj, name, dtypes=_TENSOR_DTYPES, wanted="float32"):
    """A caller's output buffer as a writable ndarray view of its memory."""
    view = _view(obj)
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; an output must be a writable %s array the result can be written "
            "into (NumPy array, buffer or __array_interface__)" % (name, _describe(obj), wanted))
    _check_tensor(view, name, dtypes, "outputs are never copied", wanted)
    if not view.flags.writeable:
        raise InvalidArgumentError("%s is read-only; an output must be writable" % name)
    return view


def _check_tensor(view, name, dtypes, remedy, wanted="float32"):
    if view.dtype not in dtypes:
        raise InvalidArgumentError(
            "%s has dtype %s; bnorm takes %s (%s)" % (name, view.dtype, wanted, remedy))
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


# ---------------------------------------------------------------- split phases
# The arrays the split phases exchange between processes: float64, one row of
# SPLIT_VALUES_PER_CHANNEL values per channel, (C, 3) per process and
# (k, C, 3) for k processes' blocks gathered in rank order.

SPLIT_DTYPES = {np.dtype(np.float64): None}
_SPLIT_WANTED = "float64 for the exchanged (C, 3) arrays"
_V = _lib.SPLIT_VALUES_PER_CHANNEL


def as_blocks(obj, name, num_features, origin, copy):
    """(blocks, num_features, origin): obj as a C-contiguous float64
    (k, C, 3) array for a C call taking num_partials blocks.

    obj: one (C, 3) block (k = 1), a (k, C, 3) array (both passed as they
    are, by address), or a list or tuple of k (C, 3) blocks, which are stacked
    into one new array (C needs them back to back; an allgather that returns
    a list has already copied them once). num_features None takes it from
    obj; otherwise obj's C must match it. None stays None (the library then
    reports the NULL pointer); an empty list is 0 blocks (the library's
    num_partials error)."""
    if obj is None:
        return None, num_features if num_features is not None else 1, origin
    if isinstance(obj, (list, tuple)):
        blocks = [_block(b, "%s[%d]" % (name, i), copy) for i, b in enumerate(obj)]
        for i, b in enumerate(blocks[1:], 1):
            if b.shape != blocks[0].shape:
                raise FeatureMismatchError(
                    "%s[%d] has shape %s but %s[0] has shape %s; every process's block must "
                    "have the layer's num_features rows" % (name, i, b.shape, name,
                                                             blocks[0].shape))
        if blocks:
            array = np.stack(blocks)
        else:
            array = np.empty((0, num_features if num_features is not None else 1, _V))
    else:
        array = as_input(obj, name, copy, SPLIT_DTYPES, _SPLIT_WANTED)
        if array.ndim not in (2, 3) or array.shape[-1] != _V:
            raise InvalidShapeError(
                "%s has shape %s; it must be one block of shape (num_features, %d) or k "
                "processes' blocks, (k, num_features, %d) (or a list of k blocks)"
                % (name, array.shape, _V, _V))
        if array.ndim == 2:
            array = array.reshape((1,) + array.shape)  # a view of the same memory
    if num_features is None:
        return array, array.shape[1], "num_features, %s's blocks' rows" % name
    if array.shape[1] != num_features:
        what = ("%d blocks of shape %s" % (len(obj), array.shape[1:])
                if isinstance(obj, (list, tuple)) else "shape %s" % (array.shape,))
        raise FeatureMismatchError(
            "%s has %s, blocks of %d channels, but must have blocks of %d channels (%s)"
            % (name, what, array.shape[1], num_features, origin))
    return array, num_features, origin


def _block(obj, name, copy):
    """One process's (C, 3) block of a list."""
    view = as_input(obj, name, copy, SPLIT_DTYPES, _SPLIT_WANTED)
    if view.ndim != 2 or view.shape[1] != _V:
        raise InvalidShapeError("%s has shape %s; each block must have shape (num_features, %d)"
                                % (name, view.shape, _V))
    return view


def block_output(out, name, num_features, origin):
    """``out`` checked as a writable float64 (num_features, 3) block, or a
    new one."""
    if out is None:
        return np.empty((num_features, _V))
    view = as_output(out, name, SPLIT_DTYPES, _SPLIT_WANTED)
    if view.shape != (num_features, _V):
        cls = (FeatureMismatchError if view.ndim == 2 and view.shape[1] == _V
               else InvalidShapeError)
        raise cls("%s has shape %s but must be (%d, %d) (%s)"
                  % (name, view.shape, num_features, _V, origin))
    return view
