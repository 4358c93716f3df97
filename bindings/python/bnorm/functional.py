"""Stateless batch normalization, shaped like torch.nn.functional.batch_norm.

Every function here is one C call: arrays are checked and passed by address,
results land in the caller's arrays (out=, running statistics, save_*) or in
new ones, and a failing call raises before anything is written.
"""

import ctypes

import numpy as np

from . import _arrays, _lib
from ._arrays import as_tensor, as_vector, as_x, ptr
from .errors import FeatureMismatchError, InvalidArgumentError, InvalidShapeError

_INT32 = (-(2 ** 31), 2 ** 31 - 1)


def _num_features(x, layout_value, vectors):
    """C for the descriptor: the length of the first per-channel vector given,
    as the layer's own statistics or parameters define it, so that an input
    with another channel count is reported by the library. With no vector,
    the input's channel dimension (the layer then fits by construction)."""
    axis = _arrays.channel_axis(layout_value, x.ndim)
    # A rank the library rejects has no channel axis; any value does, as the
    # library checks the shape before the channel count.
    if 0 < axis < x.ndim:
        return _vector_features(vectors, x.shape[axis], "num_features, x's channel dimension")
    return _vector_features(vectors, 1, "num_features")


def _vector_features(vectors, default, default_origin):
    """num_features from the first 1-D per-channel vector given (as in
    _num_features), else ``default``."""
    for name, obj in vectors:
        if obj is not None:
            view = _arrays._view(obj)
            if view is not None and view.ndim == 1:
                return view.shape[0], "num_features, the length of %s" % name
    return default, default_origin


def _check_threads(num_threads):
    if not _INT32[0] <= num_threads <= _INT32[1]:
        raise InvalidArgumentError("num_threads is %d; it must fit in int32" % num_threads)


def _same_shape_as_x(xa, arrays):
    for name, arr in arrays:
        # One shape goes to C for all the tensors; it cannot compare them.
        if arr is not None and (arr.shape != xa.shape or arr.dtype != xa.dtype):
            raise InvalidShapeError("%s has shape %s and dtype %s but x has shape %s and "
                                    "dtype %s" % (name, arr.shape, arr.dtype, xa.shape, xa.dtype))


def _affine_pair(weight, bias, num_features, origin, copy, names=("weight", "bias")):
    """(gamma, beta), or (None, None) without either. PyTorch applies whichever
    of weight and bias is given; the C API takes both, so the other defaults
    to the identity."""
    if weight is None and bias is None:
        return None, None
    gamma = as_vector(weight, names[0], num_features, copy, origin=origin)
    beta = as_vector(bias, names[1], num_features, copy, origin=origin)
    if gamma is None:
        gamma = np.ones(num_features, np.float32)
    if beta is None:
        beta = np.zeros(num_features, np.float32)
    return gamma, beta


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, layout="NCHW", fuse_relu=False, num_threads=0, *,
               residual=None, out=None, save_mean=None, save_invstd=None, copy=False,
               dtype=None):
    """Batch normalization of x (float32 or float16, or bfloat16 bits with
    dtype="bfloat16"; C-contiguous, rank 2 to 5).

    Semantics of torch.nn.functional.batch_norm: training=False normalizes with
    running_mean/running_var; training=True with the batch statistics, and
    updates running_mean/running_var in place (momentum) when they are given.
    weight/bias None means no affine transform. fuse_relu applies ReLU.

    residual: an array of x's shape and dtype added to the batch norm's output
    before the ReLU, y = relu(batch_norm(x) + residual), in the same pass (the
    tail of a ResNet block; needs libbnorm >= 1.2). The statistics are x's.
    None (the default) is plain batch norm, which any 1.x library serves.

    layout: "NCHW" (channels at dim 1) or "NHWC" (channels last); x.shape is
    the memory order either way. out: array to write y into (may be x itself,
    or residual itself).
    save_mean/save_invstd: optional float32[C] arrays a training forward fills
    with the batch mean and 1/sqrt(var + eps), for batch_norm_backward.
    copy=True converts a non-contiguous or other-dtype x/residual/weight/bias
    instead of raising. Returns y (``out`` itself when given).

    dtype: the tensors' (x, residual, out, y) element type. None takes x's,
    float32 or float16; "bfloat16" takes uint16 arrays holding bfloat16 bits
    (NumPy has none), and y is one too. Every tensor of a call has that dtype;
    the per-channel vectors are float32 whatever it is.
    """
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    num_features, origin = _num_features(
        xa, layout_value, (("running_mean", running_mean), ("running_var", running_var),
                           ("weight", weight), ("bias", bias)))
    return _forward(xa, t, num_features, origin, running_mean, running_var, weight, bias,
                    training, momentum, eps, layout_value, fuse_relu, num_threads, out, save_mean,
                    save_invstd, copy, residual)


def _residual_input(residual, xa, t, layout_value, copy):
    """residual as an array of exactly x's shape and dtype: one shape goes to
    C for both, so a residual of another shape would be read past its end."""
    ra = as_tensor(residual, "residual", copy, t)
    if ra.shape != xa.shape and ra.ndim == xa.ndim:
        axis = _arrays.channel_axis(layout_value, xa.ndim)
        others = [i for i in range(xa.ndim) if ra.shape[i] != xa.shape[i]]
        if others == [axis] and 0 < axis < xa.ndim:
            raise FeatureMismatchError(
                "residual has shape %s but x has shape %s: residual's channel dimension "
                "(dim %d) is %d but x's is %d; residual must have x's shape and dtype"
                % (ra.shape, xa.shape, axis, ra.shape[axis], xa.shape[axis]))
    _same_shape_as_x(xa, (("residual", ra),))
    return ra


def _forward(xa, t, num_features, origin, running_mean, running_var, weight, bias, training,
             momentum, eps, layout_value, fuse_relu, num_threads, out, save_mean, save_invstd,
             copy, residual=None):
    """batch_norm once x is an array and num_features is settled (a layer
    passes its own); origin says where it came from, for error messages.
    With a residual, the bnorm_*_residual call of libbnorm 1.2."""
    if momentum is None:
        raise InvalidArgumentError(
            "momentum is None; the cumulative average needs num_batches_tracked: use "
            "bnorm.BatchNorm(momentum=None), or pass momentum=1/num_batches_tracked")
    _check_threads(num_threads)
    shape = _arrays.shape_of(xa)
    ra = _residual_input(residual, xa, t, layout_value, copy) if residual is not None else None
    gamma, beta = _affine_pair(weight, bias, num_features, origin, copy)
    flags = _lib.FLAG_AFFINE if gamma is not None else 0
    if fuse_relu:
        flags |= _lib.FLAG_FUSE_RELU

    if training:
        # Written in place, so never copies.
        mean = as_vector(running_mean, "running_mean", num_features, writable=True,
                         origin=origin)
        var = as_vector(running_var, "running_var", num_features, writable=True, origin=origin)
        if mean is not None or var is not None:
            flags |= _lib.FLAG_TRACK_RUNNING_STATS
        saved_mean = as_vector(save_mean, "save_mean", num_features, writable=True,
                               origin=origin)
        saved_invstd = as_vector(save_invstd, "save_invstd", num_features, writable=True,
                                 origin=origin)
    else:
        if save_mean is not None or save_invstd is not None:
            raise InvalidArgumentError(
                "save_mean/save_invstd are written by a training forward only (training=False "
                "uses the running statistics and computes none)")
        mean = as_vector(running_mean, "running_mean", num_features, copy, origin=origin)
        var = as_vector(running_var, "running_var", num_features, copy, origin=origin)

    y = _arrays.tensor_output(out, "out", xa, t)
    desc = _lib.make_desc(num_features, eps, momentum, flags, layout_value, t.code, num_threads)
    if training and ra is None:
        _lib.call("bnorm_forward_training", ctypes.byref(desc), ctypes.byref(shape), ptr(xa),
                  ptr(y), ptr(gamma), ptr(beta), ptr(mean), ptr(var), ptr(saved_mean),
                  ptr(saved_invstd))
    elif training:
        _lib.call("bnorm_forward_training_residual", ctypes.byref(desc), ctypes.byref(shape),
                  ptr(xa), ptr(ra), ptr(y), ptr(gamma), ptr(beta), ptr(mean), ptr(var),
                  ptr(saved_mean), ptr(saved_invstd))
    elif ra is None:
        _lib.call("bnorm_forward_inference", ctypes.byref(desc), ctypes.byref(shape), ptr(xa),
                  ptr(y), ptr(mean), ptr(var), ptr(gamma), ptr(beta))
    else:
        _lib.call("bnorm_forward_inference_residual", ctypes.byref(desc), ctypes.byref(shape),
                  ptr(xa), ptr(ra), ptr(y), ptr(mean), ptr(var), ptr(gamma), ptr(beta))
    return _arrays.returned(out, y)


def invstd(running_var, eps=1e-5):
    """1 / sqrt(running_var + eps) as float32, the save_invstd of frozen
    statistics (computed in double, rounded once)."""
    var = np.asarray(running_var, dtype=np.float64)
    return (1.0 / np.sqrt(var + eps)).astype(np.float32)


def batch_norm_backward(grad_output, x, weight=None, save_mean=None, save_invstd=None, *,
                        training=True, running_mean=None, running_var=None, eps=1e-5, y=None,
                        fuse_relu=False, layout="NCHW", num_threads=0, out=None,
                        output_mask=(True, True, True), copy=False, dtype=None):
    """Gradients of batch_norm: (dx, dweight, dbias), like PyTorch's
    native_batch_norm_backward.

    training=True: the statistics depended on x; pass the save_mean and
    save_invstd a training forward wrote. training=False: frozen statistics
    (eval mode, dx = dy * weight * invstd); pass running_mean and running_var
    (and the forward's eps), or the frozen mean and invstd as save_mean and
    save_invstd. fuse_relu=True needs y, the forward's output. weight None
    means the forward had no affine transform (gamma = 1); dweight and dbias
    are still returned, as the gradients the parameters would have had.
    out: array for dx (may be grad_output itself). output_mask: which of
    (dx, dweight, dbias) to compute; the others are returned as None.
    dtype: the tensors' element type, as in batch_norm (x's by default).
    """
    want_dx, want_dgamma, want_dbeta = output_mask
    dx, _, dgamma, dbeta = _backward(
        grad_output, x, weight, save_mean, save_invstd, training, running_mean, running_var,
        eps, y, fuse_relu, layout, num_threads, out, None, (want_dx, False, want_dgamma,
                                                            want_dbeta), copy, dtype, False)
    return dx, dgamma, dbeta


def batch_norm_backward_residual(grad_output, x, weight=None, save_mean=None, save_invstd=None,
                                 *, training=True, running_mean=None, running_var=None,
                                 eps=1e-5, y=None, fuse_relu=False, layout="NCHW",
                                 num_threads=0, out=None, out_residual=None,
                                 output_mask=(True, True, True, True), copy=False, dtype=None):
    """Gradients of batch_norm(..., residual=r): (dx, d_residual, dweight,
    dbias), in one pass (needs libbnorm >= 1.2).

    With g = grad_output, zeroed where the forward's output y <= 0 with
    fuse_relu (so fuse_relu needs that y), d_residual = g and dx, dweight,
    dbias are batch_norm_backward's for g. Arguments as in
    batch_norm_backward. out: array for dx, out_residual: array for
    d_residual; either one (not both) may be grad_output itself.
    output_mask: which of (dx, d_residual, dweight, dbias) to return; the
    others are returned as None (the library computes dx and d_residual
    either way, into scratch arrays when not wanted).
    """
    return _backward(grad_output, x, weight, save_mean, save_invstd, training, running_mean,
                     running_var, eps, y, fuse_relu, layout, num_threads, out, out_residual,
                     output_mask, copy, dtype, True)


def _backward(grad_output, x, weight, save_mean, save_invstd, training, running_mean,
              running_var, eps, y, fuse_relu, layout, num_threads, out, out_residual,
              output_mask, copy, dtype, with_residual):
    """batch_norm_backward (with_residual False: bnorm_backward) or
    batch_norm_backward_residual (bnorm_backward_residual); output_mask is
    (dx, d_residual, dgamma, dbeta)."""
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    dy = as_tensor(grad_output, "grad_output", copy, t)
    ya = as_tensor(y, "y", copy, t) if y is not None else None
    _same_shape_as_x(xa, (("grad_output", dy), ("y", ya)))
    _check_threads(num_threads)

    frozen_from_running = not training and (running_mean is not None or running_var is not None)
    if frozen_from_running:
        vectors = (("running_mean", running_mean), ("running_var", running_var),
                   ("weight", weight))
    else:
        vectors = (("save_mean", save_mean), ("save_invstd", save_invstd), ("weight", weight))
    num_features, origin = _num_features(xa, layout_value, vectors)
    shape = _arrays.shape_of(xa)

    gamma = as_vector(weight, "weight", num_features, copy, origin=origin)
    if frozen_from_running:
        mean = as_vector(running_mean, "running_mean", num_features, copy, origin=origin)
        var = as_vector(running_var, "running_var", num_features, copy, origin=origin)
        inv = invstd(var, eps) if var is not None else None
    else:
        mean = as_vector(save_mean, "save_mean", num_features, copy, origin=origin)
        inv = as_vector(save_invstd, "save_invstd", num_features, copy, origin=origin)

    want_dx, want_dres, want_dgamma, want_dbeta = output_mask
    if want_dx:
        dx = _arrays.tensor_output(out, "out", xa, t)
    else:
        # bnorm_backward_residual needs both tensors; bnorm_backward skips a NULL dx.
        dx = np.empty_like(xa) if with_residual else None
    dres = None
    if with_residual:
        dres = (_arrays.tensor_output(out_residual, "out_residual", xa, t) if want_dres
                else np.empty_like(xa))
    dgamma = np.empty(num_features, np.float32) if want_dgamma else None
    dbeta = np.empty(num_features, np.float32) if want_dbeta else None

    flags = _lib.FLAG_AFFINE if gamma is not None else 0
    if fuse_relu:
        flags |= _lib.FLAG_FUSE_RELU
    if not training:
        flags |= _lib.FLAG_USE_GLOBAL_STATS
    desc = _lib.make_desc(num_features, eps, 0.1, flags, layout_value, t.code, num_threads)
    if with_residual:
        _lib.call("bnorm_backward_residual", ctypes.byref(desc), ctypes.byref(shape), ptr(xa),
                  ptr(dy), ptr(ya), ptr(gamma), ptr(mean), ptr(inv), ptr(dx), ptr(dres),
                  ptr(dgamma), ptr(dbeta))
    else:
        _lib.call("bnorm_backward", ctypes.byref(desc), ctypes.byref(shape), ptr(xa), ptr(dy),
                  ptr(ya), ptr(gamma), ptr(mean), ptr(inv), ptr(dx), ptr(dgamma), ptr(dbeta))
    return ((_arrays.returned(out, dx) if want_dx else None),
            (_arrays.returned(out_residual, dres) if with_residual and want_dres else None),
            dgamma, dbeta)


# ------------------------------------------------------------------ folding
# Batch norm in eval mode is y = x * scale + shift per channel, with
#   scale = weight / sqrt(running_var + eps),  shift = bias - running_mean * scale.
# These need libbnorm >= 1.1 (LibraryVersionError on a 1.0 library).


def fold_scale_shift(running_mean, running_var, weight=None, bias=None, eps=1e-5, *,
                     copy=False):
    """(scale, shift), float32[C] each, of batch norm in eval mode:
    scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale
    (computed in double, rounded once). weight/bias None means no affine
    transform (weight 1, bias 0), as in batch_norm. For batch_norm_scale_shift,
    or to fold into another layer. copy=True converts non-float32 inputs.
    """
    num_features, origin = _vector_features(
        (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
         ("bias", bias)), 1, "num_features")
    mean = as_vector(running_mean, "running_mean", num_features, copy, origin=origin)
    var = as_vector(running_var, "running_var", num_features, copy, origin=origin)
    gamma, beta = _affine_pair(weight, bias, num_features, origin, copy)
    flags = _lib.FLAG_AFFINE if gamma is not None else 0
    desc = _lib.make_desc(num_features, eps, 0.1, flags, _lib.LAYOUT_NCHW, _lib.DTYPE_F32, 0)
    scale = np.empty(num_features, np.float32)
    shift = np.empty(num_features, np.float32)
    _lib.call("bnorm_fold_scale_shift", ctypes.byref(desc), ptr(mean), ptr(var), ptr(gamma),
              ptr(beta), ptr(scale), ptr(shift))
    return scale, shift


def batch_norm_scale_shift(x, scale, shift, layout="NCHW", fuse_relu=False, num_threads=0, *,
                           out=None, copy=False, dtype=None):
    """Inference from a precomputed (scale, shift) (see fold_scale_shift):
    y = x * scale[c] + shift[c], then ReLU with fuse_relu. Equals
    batch_norm(x, ..., training=False) to float32 rounding. x, layout, out
    (may be x itself), copy and dtype as in batch_norm; scale and shift are
    float32 whatever x's dtype. Returns y (``out`` itself when given).
    """
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    num_features, origin = _num_features(xa, layout_value,
                                         (("scale", scale), ("shift", shift)))
    _check_threads(num_threads)
    shape = _arrays.shape_of(xa)
    scale_a = as_vector(scale, "scale", num_features, copy, origin=origin)
    shift_a = as_vector(shift, "shift", num_features, copy, origin=origin)
    y = _arrays.tensor_output(out, "out", xa, t)
    flags = _lib.FLAG_FUSE_RELU if fuse_relu else 0
    desc = _lib.make_desc(num_features, 1e-5, 0.1, flags, layout_value, t.code, num_threads)
    _lib.call("bnorm_forward_scale_shift", ctypes.byref(desc), ctypes.byref(shape), ptr(xa),
              ptr(y), ptr(scale_a), ptr(shift_a))
    return _arrays.returned(out, y)


def fold_into_layer(weight, bias, running_mean, running_var, bn_weight=None, bn_bias=None,
                    eps=1e-5, *, out_weight=None, out_bias=None, copy=False):
    """Folds an eval-mode batch norm into the layer before it (convolution or
    linear): returns (folded_weight, folded_bias) such that the layer with
    them computes what the layer followed by the batch norm did, like
    torch.nn.utils.fusion.fuse_conv_bn_weights / fuse_linear_bn_weights.

    weight: the layer's float32 weights, output channel first, rank >= 2:
    convolution (out, in, kH, kW) (OIHW) or (out, kH, kW, in) (OHWI), any
    kernel rank, or linear (out, in); weight.shape[0] must be the batch norm's
    channel count. Every output row is scaled:
      folded_weight[o, ...] = weight[o, ...] * scale[o]
      folded_bias[o] = (bias[o] - running_mean[o]) * scale[o] + bn_bias[o]
    with scale = bn_weight / sqrt(running_var + eps). bias None means the
    layer has none (0); the folded bias is always returned. bn_weight/bn_bias
    None: a batch norm without affine transform.
    out_weight/out_bias: float32 arrays to write into (weight's shape,
    float32[C]); out_weight=weight and out_bias=bias fold in place. copy=True
    converts non-float32 or non-contiguous inputs (never outputs).
    """
    w = _arrays.as_input(weight, "weight", copy, _arrays.WEIGHT_DTYPES, "float32")
    if w.ndim < 2:
        raise InvalidShapeError(
            "weight has shape %s; a layer's weight has rank >= 2, output channel first "
            "((out, in, ...) or (out, ..., in) for a convolution, (out, in) for a linear layer)"
            % (w.shape,))
    # The layer's output channels are the batch norm's channels. When the
    # batch norm's vectors agree among themselves on another count, the
    # weight is the odd one out; otherwise the vector that differs is named.
    num_features = w.shape[0]
    origin = "num_features, weight.shape[0], the layer's output channels"
    lengths = {}
    for name, obj in (("running_mean", running_mean), ("running_var", running_var),
                      ("bn_weight", bn_weight), ("bn_bias", bn_bias)):
        view = _arrays._view(obj) if obj is not None else None
        if view is not None and view.ndim == 1:
            lengths[name] = view.shape[0]
    if len(set(lengths.values())) == 1 and num_features not in lengths.values():
        raise FeatureMismatchError(
            "weight has shape %s, %d output channels (rows), but the batch norm has %d "
            "channels (the length of %s)" % (w.shape, num_features, next(iter(lengths.values())),
                                              ", ".join(lengths)))
    # A weight with a zero dimension has row_length 0, which the library refuses.
    row_length = w.size // num_features if num_features else 0
    b = as_vector(bias, "bias", num_features, copy, origin=origin)
    mean = as_vector(running_mean, "running_mean", num_features, copy, origin=origin)
    var = as_vector(running_var, "running_var", num_features, copy, origin=origin)
    gamma, beta = _affine_pair(bn_weight, bn_bias, num_features, origin, copy,
                               names=("bn_weight", "bn_bias"))
    folded_w = _arrays.tensor_output(out_weight, "out_weight", w, _arrays.FLOAT32, "weight")
    if out_bias is None:
        folded_b = np.empty(num_features, np.float32)
    else:
        folded_b = as_vector(out_bias, "out_bias", num_features, writable=True, origin=origin)
    flags = _lib.FLAG_AFFINE if gamma is not None else 0
    desc = _lib.make_desc(num_features, eps, 0.1, flags, _lib.LAYOUT_NCHW, _lib.DTYPE_F32, 0)
    _lib.call("bnorm_fold_into_layer", ctypes.byref(desc), row_length, ptr(w), ptr(b),
              ptr(mean), ptr(var), ptr(gamma), ptr(beta), ptr(folded_w), ptr(folded_b))
    return _arrays.returned(out_weight, folded_w), _arrays.returned(out_bias, folded_b)


# ------------------------------------------------------------- split phases
# Training batch norm over one batch spread across processes (SyncBatchNorm):
#   forward:  local_stats -> allgather -> merge_stats -> forward_normalize
#   backward: backward_reduce -> allreduce(sum) or allgather -> backward_elementwise
# Every process exchanges one float64 (C, 3) block: stats (count, mean, M2) or
# grad sums (count, sum(g), sum(g * (x - mean))). Gathered, k processes' blocks
# are one (k, C, 3) array in rank order (or a list of k blocks). These need
# libbnorm >= 1.2 (LibraryVersionError on an older library).

_INT32_MAX = _INT32[1]


def _num_partials(blocks, name):
    """num_partials for the C call: k, or 1 for a missing array (NULL then
    gets the library's own report)."""
    if blocks is None:
        return 1
    if blocks.shape[0] > _INT32_MAX:
        raise InvalidArgumentError("%s has %d blocks; bnorm merges at most %d"
                                   % (name, blocks.shape[0], _INT32_MAX))
    return blocks.shape[0]


def local_stats(x, layout="NCHW", num_threads=0, *, out=None, copy=False, dtype=None):
    """This process's part of the batch statistics: a float64 (C, 3) array,
    per channel (count, mean, M2), M2 the sum of squared deviations from that
    mean. x is this process's samples (C-contiguous, rank 2 to 5; layout,
    copy and dtype as in batch_norm); one sample with one value per channel
    is fine.
    out: a float64 (C, 3) array to write into, e.g. this rank's row of an
    allgather buffer (``out=gathered[rank]``). Returns the block (``out``
    itself when given). Gather every process's block (allgather, rank order)
    for merge_stats: statistics are merged, not summed.
    """
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    num_features, origin = _num_features(xa, layout_value, ())
    return _local_stats(xa, t, num_features, origin, layout_value, num_threads, out)


def _local_stats(xa, t, num_features, origin, layout_value, num_threads, out):
    _check_threads(num_threads)
    shape = _arrays.shape_of(xa)
    stats = _arrays.block_output(out, "out", num_features, origin)
    desc = _lib.make_desc(num_features, 1e-5, 0.1, 0, layout_value, t.code, num_threads)
    _lib.call("bnorm_local_stats", ctypes.byref(desc), ctypes.byref(shape), ptr(xa), ptr(stats))
    return _arrays.returned(out, stats)


def merge_stats(partial_stats, running_mean=None, running_var=None, momentum=0.1, eps=1e-5, *,
                mean=None, invstd=None, merged=None, copy=False):
    """The whole batch's statistics from every process's local_stats block:
    returns (mean, invstd), float32[C] each, invstd = 1 / sqrt(var + eps)
    with the biased variance, for forward_normalize and the backward phases.

    partial_stats: the gathered blocks, a float64 (k, C, 3) array in rank
    order (what an allgather of the (C, 3) blocks fills), or a list of k
    (C, 3) blocks (stacked into one new array), or one (C, 3) block. They are
    merged in that order with Chan's formula, so every process passing the
    same blocks gets bit-identical results. Blocks with count 0 are skipped.

    running_mean/running_var: updated in place with momentum, the variance
    unbiased by count / (count - 1), as batch_norm(training=True) does (give
    both or neither). mean/invstd: float32[C] arrays to write into instead of
    new ones. merged: a float64 (C, 3) array for the merged (count, mean, M2)
    block, itself a valid block for a further merge (hierarchical); it may be
    the first block itself (``merged=gathered[0]``). copy=True converts
    non-float64 or non-contiguous blocks.
    """
    if momentum is None:
        raise InvalidArgumentError(
            "momentum is None; the cumulative average needs num_batches_tracked: use "
            "bnorm.SyncBatchNorm(momentum=None), or pass momentum=1/num_batches_tracked")
    num_features, origin = _vector_features(
        (("running_mean", running_mean), ("running_var", running_var)), None, None)
    blocks, num_features, origin = _arrays.as_blocks(partial_stats, "partial_stats",
                                                     num_features, origin, copy)
    return _merge_stats(blocks, num_features, origin, running_mean, running_var, momentum, eps,
                        mean, invstd, merged)


def _merge_stats(blocks, num_features, origin, running_mean, running_var, momentum, eps,
                 mean, invstd, merged):
    num_partials = _num_partials(blocks, "partial_stats")
    # Written in place, so never copies.
    run_mean = as_vector(running_mean, "running_mean", num_features, writable=True,
                         origin=origin)
    run_var = as_vector(running_var, "running_var", num_features, writable=True, origin=origin)
    flags = 0
    if run_mean is not None or run_var is not None:
        flags |= _lib.FLAG_TRACK_RUNNING_STATS
    if mean is None:
        mean_out = np.empty(num_features, np.float32)
    else:
        mean_out = as_vector(mean, "mean", num_features, writable=True, origin=origin)
    if invstd is None:
        invstd_out = np.empty(num_features, np.float32)
    else:
        invstd_out = as_vector(invstd, "invstd", num_features, writable=True, origin=origin)
    merged_out = (_arrays.block_output(merged, "merged", num_features, origin)
                  if merged is not None else None)
    desc = _lib.make_desc(num_features, eps, momentum, flags, _lib.LAYOUT_NCHW, _lib.DTYPE_F32,
                          0)
    _lib.call("bnorm_merge_stats", ctypes.byref(desc), num_partials, ptr(blocks),
              ptr(merged_out), ptr(mean_out), ptr(invstd_out), ptr(run_mean), ptr(run_var))
    return _arrays.returned(mean, mean_out), _arrays.returned(invstd, invstd_out)


def forward_normalize(x, mean, invstd, weight=None, bias=None, layout="NCHW", fuse_relu=False,
                      num_threads=0, *, out=None, copy=False, dtype=None):
    """The elementwise half of a training forward, with the whole batch's
    statistics from merge_stats: y = (x - mean) * invstd * weight + bias, then
    ReLU with fuse_relu. weight/bias None: no affine transform. x, layout, out
    (may be x itself), copy and dtype as in batch_norm. Returns y (``out``
    itself when given).
    """
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    num_features, origin = _num_features(
        xa, layout_value, (("mean", mean), ("invstd", invstd), ("weight", weight),
                           ("bias", bias)))
    return _forward_normalize(xa, t, num_features, origin, mean, invstd, weight, bias,
                              layout_value, fuse_relu, num_threads, out, copy)


def _forward_normalize(xa, t, num_features, origin, mean, invstd, weight, bias, layout_value,
                       fuse_relu, num_threads, out, copy):
    _check_threads(num_threads)
    shape = _arrays.shape_of(xa)
    mean_a = as_vector(mean, "mean", num_features, copy, origin=origin)
    invstd_a = as_vector(invstd, "invstd", num_features, copy, origin=origin)
    gamma, beta = _affine_pair(weight, bias, num_features, origin, copy)
    flags = _lib.FLAG_AFFINE if gamma is not None else 0
    if fuse_relu:
        flags |= _lib.FLAG_FUSE_RELU
    y = _arrays.tensor_output(out, "out", xa, t)
    desc = _lib.make_desc(num_features, 1e-5, 0.1, flags, layout_value, t.code, num_threads)
    _lib.call("bnorm_forward_normalize", ctypes.byref(desc), ctypes.byref(shape), ptr(xa), ptr(y),
              ptr(gamma), ptr(beta), ptr(mean_a), ptr(invstd_a))
    return _arrays.returned(out, y)


def backward_reduce(grad_output, x, mean, invstd, *, y=None, fuse_relu=False, layout="NCHW",
                    num_threads=0, out=None, output_mask=(True, True, True), copy=False,
                    dtype=None):
    """This process's part of the backward sums: (grad_sums, dweight, dbias).

    grad_sums: float64 (C, 3), per channel (count, sum(g), sum(g * (x -
    mean))), g = grad_output (zeroed where y <= 0 with fuse_relu, which needs
    y, the forward's output). Sum it over the processes (allreduce, or gather
    the blocks) for backward_elementwise. mean/invstd: the whole batch's, from
    merge_stats. dweight = sum(g * (x - mean)) * invstd and dbias = sum(g)
    over this process's part only (float32[C]): data-parallel training sums
    them with the other parameter gradients.

    out: a float64 (C, 3) array for grad_sums, e.g. an allreduce buffer.
    output_mask: which of (grad_sums, dweight, dbias) to return; the others
    are returned as None (grad_sums is computed either way). copy and dtype
    as in batch_norm.
    """
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    num_features, origin = _num_features(xa, layout_value,
                                         (("mean", mean), ("invstd", invstd)))
    return _backward_reduce(grad_output, xa, t, num_features, origin, mean, invstd, y, fuse_relu,
                            layout_value, num_threads, out, output_mask, copy)


def _backward_reduce(grad_output, xa, t, num_features, origin, mean, invstd, y, fuse_relu,
                     layout_value, num_threads, out, output_mask, copy):
    dy = as_tensor(grad_output, "grad_output", copy, t)
    ya = as_tensor(y, "y", copy, t) if y is not None else None
    _same_shape_as_x(xa, (("grad_output", dy), ("y", ya)))
    _check_threads(num_threads)
    shape = _arrays.shape_of(xa)
    mean_a = as_vector(mean, "mean", num_features, copy, origin=origin)
    invstd_a = as_vector(invstd, "invstd", num_features, copy, origin=origin)
    want_sums, want_dgamma, want_dbeta = output_mask
    sums = _arrays.block_output(out, "out", num_features, origin)
    dgamma = np.empty(num_features, np.float32) if want_dgamma else None
    dbeta = np.empty(num_features, np.float32) if want_dbeta else None
    flags = _lib.FLAG_FUSE_RELU if fuse_relu else 0
    desc = _lib.make_desc(num_features, 1e-5, 0.1, flags, layout_value, t.code, num_threads)
    _lib.call("bnorm_backward_reduce", ctypes.byref(desc), ctypes.byref(shape), ptr(xa), ptr(dy),
              ptr(ya), ptr(mean_a), ptr(invstd_a), ptr(sums), ptr(dgamma), ptr(dbeta))
    return (_arrays.returned(out, sums) if want_sums else None), dgamma, dbeta


def backward_elementwise(grad_output, x, mean, invstd, grad_sums, weight=None, *, y=None,
                         fuse_relu=False, training=True, layout="NCHW", num_threads=0, out=None,
                         copy=False, dtype=None):
    """dx of this process's part from the whole batch's grad sums: what
    batch_norm_backward gives for the whole batch, restricted to this part.

    grad_sums: the backward_reduce blocks of every process, either summed
    (one (C, 3) block, e.g. after an allreduce) or gathered (a (k, C, 3)
    array or a list of k blocks, added in that order). Each channel's total
    count must be at least this part's values per channel. mean/invstd: the
    whole batch's (merge_stats). weight: the forward's weight (None: no
    affine transform). fuse_relu needs y, the forward's output.
    training=False: frozen statistics, dx = grad_output * weight * invstd, and
    grad_sums is not read (may be None). out: array for dx (may be
    grad_output itself). copy and dtype as in batch_norm. Returns dx
    (``out`` itself when given).
    """
    layout_value = _arrays.layout_code(layout)
    xa, t = as_x(x, copy, dtype)
    num_features, origin = _num_features(
        xa, layout_value, (("mean", mean), ("invstd", invstd), ("weight", weight)))
    return _backward_elementwise(grad_output, xa, t, num_features, origin, mean, invstd,
                                 grad_sums, weight, y, fuse_relu, training, layout_value,
                                 num_threads, out, copy)


def _backward_elementwise(grad_output, xa, t, num_features, origin, mean, invstd, grad_sums,
                          weight, y, fuse_relu, training, layout_value, num_threads, out, copy):
    dy = as_tensor(grad_output, "grad_output", copy, t)
    ya = as_tensor(y, "y", copy, t) if y is not None else None
    _same_shape_as_x(xa, (("grad_output", dy), ("y", ya)))
    _check_threads(num_threads)
    shape = _arrays.shape_of(xa)
    sums, _, _ = _arrays.as_blocks(grad_sums, "grad_sums", num_features, origin, copy)
    num_partials = _num_partials(sums, "grad_sums")
    gamma = as_vector(weight, "weight", num_features, copy, origin=origin)
    mean_a = as_vector(mean, "mean", num_features, copy, origin=origin)
    invstd_a = as_vector(invstd, "invstd", num_features, copy, origin=origin)
    dx = _arrays.tensor_output(out, "out", xa, t)
    flags = _lib.FLAG_AFFINE if gamma is not None else 0
    if fuse_relu:
        flags |= _lib.FLAG_FUSE_RELU
    if not training:
        flags |= _lib.FLAG_USE_GLOBAL_STATS
    desc = _lib.make_desc(num_features, 1e-5, 0.1, flags, layout_value, t.code, num_threads)
    _lib.call("bnorm_backward_elementwise", ctypes.byref(desc), ctypes.byref(shape), ptr(xa),
              ptr(dy), ptr(ya), ptr(gamma), ptr(mean_a), ptr(invstd_a), num_partials, ptr(sums),
              ptr(dx))
    return _arrays.returned(out, dx)
