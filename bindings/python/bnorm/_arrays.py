"""Turning caller objects into NumPy views the C library can be handed.

Nothing here copies unless the caller asked for it (copy=True), and outputs are
never copied at all: a copy of an output would be written and thrown away.
"""

import collections

import numpy as np

from . import _lib
from ._bfloat16 import to_bfloat16
from .errors import FeatureMismatchError, InvalidArgumentError, InvalidShapeError

LAYOUTS = {"NCHW": _lib.LAYOUT_NCHW, "NHWC": _lib.LAYOUT_NHWC}

# The tensors' element types (x, y, dy, dx, residual, d_residual); everything
# per channel stays float32. NumPy has no bfloat16, so bfloat16 tensors are
# uint16 arrays holding the bits (the upper half of a float32), and only when
# the call says dtype="bfloat16": a uint16 array is never taken for one unasked.
TensorDtype = collections.namedtuple("TensorDtype", "name storage code")
FLOAT32 = TensorDtype("float32", np.dtype(np.float32), _lib.DTYPE_F32)
FLOAT16 = TensorDtype("float16", np.dtype(np.float16), _lib.DTYPE_F16)
BFLOAT16 = TensorDtype("bfloat16", np.dtype(np.uint16), _lib.DTYPE_BF16)
_BY_NAME = {t.name: t for t in (FLOAT32, FLOAT16, BFLOAT16)}
_STORAGE = {FLOAT32.storage, FLOAT16.storage, BFLOAT16.storage}
_BF16_HINT = "a uint16 array of bfloat16 bits needs dtype='bfloat16'"
_TORCH_BF16_HINT = ("for a torch.bfloat16 tensor t, pass t.view(torch.int16).numpy()"
                    ".view(numpy.uint16) with dtype='bfloat16'")


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


def as_input(obj, name, copy, dtypes, wanted):
    """A read-only input as an ndarray, C-contiguous and of one of ``dtypes``
    (``wanted`` names them in messages; a copy converts to the first)."""
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
    _check_dtype(view, name, dtypes, "pass copy=True to convert", wanted)
    _check_contiguous(view, name, "pass copy=True to convert")
    return view


def as_output(obj, name, dtypes, wanted):
    """A caller's output buffer as a writable ndarray view of its memory."""
    view = _view(obj)
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; an output must be a writable %s array the result can be written "
            "into (NumPy array, buffer or __array_interface__)" % (name, _describe(obj), wanted))
    _check_dtype(view, name, dtypes, "outputs are never copied", wanted)
    _check_contiguous(view, name, "outputs are never copied")
    if not view.flags.writeable:
        raise InvalidArgumentError("%s is read-only; an output must be writable" % name)
    return view


def _check_dtype(view, name, dtypes, remedy, wanted):
    if view.dtype not in dtypes:
        raise InvalidArgumentError(
            "%s has dtype %s; bnorm takes %s (%s)" % (name, view.dtype, wanted, remedy))


def _check_contiguous(view, name, remedy):
    if not view.flags.c_contiguous:
        raise InvalidArgumentError(
            "%s is not C-contiguous (shape %s, strides %s); bnorm needs dense memory in the "
            "layout's order (%s)" % (name, view.shape, view.strides, remedy))


# ------------------------------------------------------------------- tensors
# x, y, dy, dx, residual, d_residual: one dtype per call, x's (or the dtype
# argument's), checked here before any C call so that a mix never reaches C.


def tensor_dtype(dtype):
    """The TensorDtype a dtype argument names; None (take x's) stays None."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype.lower() in _BY_NAME:
        return _BY_NAME[dtype.lower()]
    try:
        named = np.dtype(dtype)
    except TypeError:
        named = None
    for t in (FLOAT32, FLOAT16):
        if named == t.storage:
            return t
    raise InvalidArgumentError(
        "dtype is %r; it must be None (x's own: float32 or float16), 'float32', 'float16' "
        "or 'bfloat16' (uint16 arrays holding bfloat16 bits)" % (dtype,))


def as_x(obj, copy, dtype, name="x"):
    """(x as an ndarray, its TensorDtype): the dtype argument's, else x's own
    float32 or float16 (anything else is float32's to refuse or convert)."""
    t = tensor_dtype(dtype)
    if t is None:
        view = _view(obj)
        if view is None and copy:
            # E.g. a torch tensor: its values, with their dtype, to be copied anyway.
            obj = view = _asarray(obj, name, None)
        t = FLOAT16 if view is not None and view.dtype == FLOAT16.storage else FLOAT32
    return as_tensor(obj, name, copy, t, None), t


def as_tensor(obj, name, copy, t, x_name="x"):
    """Another tensor input of the call, of dtype t (x's, named x_name; None
    when obj is x itself); copy=True converts to it."""
    view = _view(obj)
    if copy:
        if view is None:
            view = _asarray(obj, name, t)
        if t is BFLOAT16 and view.dtype != BFLOAT16.storage:
            return to_bfloat16(view)
        return np.require(view, t.storage, ["C", "A"])
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; expected a %s array (NumPy array, buffer or __array_interface__), "
            "e.g. a CPU torch tensor's .numpy(); pass copy=True to convert%s"
            % (name, _describe(obj), _described(t), _torch_hint(obj, t)))
    if view.dtype != t.storage:
        remedy = "pass copy=True to convert"
        if t is BFLOAT16 and view.dtype.kind == "f":
            remedy += ", or bnorm.to_bfloat16(%s) for its bits" % name
        raise InvalidArgumentError(_dtype_mismatch(name, view.dtype, t, x_name, remedy))
    _check_contiguous(view, name, "pass copy=True to convert")
    return view


def tensor_output(out, name, x, t, x_name="x"):
    """``out`` checked against x's shape and dtype t, or a new array like x."""
    if out is None:
        return np.empty_like(x)
    view = _view(out)
    if view is None:
        raise InvalidArgumentError(
            "%s is a %s; an output must be a writable %s array the result can be written "
            "into (NumPy array, buffer or __array_interface__)" % (name, _describe(out),
                                                                    _described(t)))
    if view.dtype != t.storage and view.dtype not in _STORAGE:
        raise InvalidArgumentError(_dtype_mismatch(name, view.dtype, t, None,
                                                   "outputs are never copied"))
    _check_contiguous(view, name, "outputs are never copied")
    if not view.flags.writeable:
        raise InvalidArgumentError("%s is read-only; an output must be writable" % name)
    if view.shape != x.shape:
        raise InvalidShapeError("%s has shape %s and dtype %s but must have %s's shape "
                                "%s and dtype %s" % (name, view.shape, view.dtype, x_name,
                                                     x.shape, x.dtype))
    if view.dtype != t.storage:
        raise InvalidArgumentError(_dtype_mismatch(name, view.dtype, t, x_name,
                                                   "outputs are never copied"))
    return view


def _dtype_mismatch(name, dtype, t, x_name, remedy):
    if x_name is not None and dtype in _STORAGE:
        # Another bnorm dtype: a mix, which one C call cannot take.
        return ("%s has dtype %s but %s is %s; every tensor of a call has %s's dtype (%s)"
                % (name, dtype, x_name, _described(t), x_name, remedy))
    if t is BFLOAT16:
        return ("%s has dtype %s; dtype='bfloat16' takes uint16 arrays of bfloat16 bits (%s)"
                % (name, dtype, remedy))
    text = "%s has dtype %s; bnorm takes %s (%s)" % (name, dtype, t.name, remedy)
    if dtype == BFLOAT16.storage:
        text += "; " + _BF16_HINT
    return text


def _described(t):
    return "bfloat16 (uint16 bits)" if t is BFLOAT16 else t.name


def _asarray(obj, name, t):
    try:
        return np.asarray(obj)
    except TypeError as e:  # e.g. torch.bfloat16, which NumPy cannot hold
        raise InvalidArgumentError("%s is a %s that NumPy cannot convert (%s)%s"
                                   % (name, _describe(obj), e, _torch_hint(obj, t))) from None


def _torch_hint(obj, t):
    if t is BFLOAT16 or str(getattr(obj, "dtype", "")) == "torch.bfloat16":
        return "; " + _TORCH_BF16_HINT
    return ""


_VECTOR_DTYPES = {np.dtype(np.float32): _lib.DTYPE_F32}
# Layer weights (fold_into_layer) are float32 whatever the tensors' dtype.
WEIGHT_DTYPES = _VECTOR_DTYPES


def as_vector(obj, name, num_features, copy=False, writable=False, origin="num_features"):
    """A per-channel vector: float32[num_features], 1-D and contiguous.

    The C library cannot see a vector's length, so this is the only place a
    short vector is caught before the library would read past its end."""
    if obj is None:
        return None
    given = _view(obj)
    if given is not None and given.dtype in (FLOAT16.storage, BFLOAT16.storage) and (
            writable or not copy):
        raise InvalidArgumentError(
            "%s has dtype %s; per-channel vectors are float32 whatever the tensors' dtype (%s)"
            % (name, given.dtype,
               "outputs are never copied" if writable else "pass copy=True to convert"))
    if writable:
        view = as_output(obj, name, _VECTOR_DTYPES, "float32")
    else:
        view = as_input(obj, name, copy, _VECTOR_DTYPES, "float32")
    if view.ndim != 1 or view.shape[0] != num_features:
        raise FeatureMismatchError(
            "%s has shape %s but must be a vector of %d values (%s)"
            % (name, view.shape, num_features, origin))
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
