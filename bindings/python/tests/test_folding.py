"""Folding batch norm (libbnorm 1.1): fold_scale_shift against the float64
formulas, batch_norm_scale_shift against batch_norm, and fold_into_layer
against torch.nn.utils.fusion (the folded layer computes layer + batch norm)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import fusion

import bnorm
from bnorm import _lib
from conftest import (assert_close, case_id, channel_axis, random_cases, random_input,
                      random_vector)

SENTINEL = np.float32(-12345.0)
CASES = random_cases(seed=1101)


def bn_vectors(rng, c):
    """Non-trivial statistics and parameters: negative and small weights too,
    variances far from 1."""
    return dict(running_mean=random_vector(rng, c, -2, 2),
                running_var=random_vector(rng, c, 0.05, 4.0),
                weight=random_vector(rng, c, -2, 2), bias=random_vector(rng, c, -2, 2))


def expected_scale_shift(v, eps, affine=(True, True)):
    """The header's formulas in float64, with eps as the float the library sees."""
    eps64 = float(np.float32(eps))
    mean, var = v["running_mean"].astype(np.float64), v["running_var"].astype(np.float64)
    gamma = v["weight"].astype(np.float64) if affine[0] else np.ones_like(mean)
    beta = v["bias"].astype(np.float64) if affine[1] else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + eps64)
    return scale, beta - mean * scale


def close_to_rounding(actual, expected):
    """Agreement to float32 rounding, relative to the largest magnitude (a
    result near 0 from cancellation is only as exact as its inputs' scale)."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(float(np.abs(expected).max()), 1e-30)
    assert np.abs(np.asarray(actual, np.float64) - expected).max() <= 1e-6 * scale


def test_library_has_the_folding_functions():
    # The binding's own version (1.4.0) is checked in test_split.py.
    assert bnorm.version() >= (1, 1, 0)
    assert all(_lib._SINCE[name][0] == 10100 for name in
               ("bnorm_fold_scale_shift", "bnorm_forward_scale_shift", "bnorm_fold_into_layer"))


# ------------------------------------------------------------ fold_scale_shift

@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)],
                         ids=["affine", "weight-only", "bias-only", "no-affine"])
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_fold_scale_shift_is_the_float64_formula_rounded_once(rng, affine, eps):
    v = bn_vectors(rng, 37)

    scale, shift = bnorm.fold_scale_shift(v["running_mean"], v["running_var"],
                                          v["weight"] if affine[0] else None,
                                          v["bias"] if affine[1] else None, eps=eps)

    want_scale, want_shift = expected_scale_shift(v, eps, affine)
    assert scale.dtype == shift.dtype == np.float32 and scale.shape == shift.shape == (37,)
    # Computed in double and rounded once: within an ulp of the float64 value.
    np.testing.assert_array_max_ulp(scale, want_scale.astype(np.float32), maxulp=1)
    np.testing.assert_array_max_ulp(shift, want_shift.astype(np.float32), maxulp=1)


def test_fold_scale_shift_copy_converts_float64_inputs(rng):
    v = bn_vectors(rng, 5)
    as64 = {k: a.astype(np.float64) for k, a in v.items()}

    with pytest.raises(bnorm.InvalidArgumentError, match="running_mean has dtype float64"):
        bnorm.fold_scale_shift(as64["running_mean"], as64["running_var"])

    got = bnorm.fold_scale_shift(as64["running_mean"], as64["running_var"], as64["weight"],
                                 as64["bias"], copy=True)
    want = bnorm.fold_scale_shift(v["running_mean"], v["running_var"], v["weight"], v["bias"])
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


# ------------------------------------------------------ batch_norm_scale_shift

@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("fuse_relu", [False, True], ids=["plain", "relu"])
def test_scale_shift_forward_matches_batch_norm_inference(rng, case, fuse_relu):
    layout, shape = case
    x = random_input(rng, shape, layout)
    v = bn_vectors(rng, shape[channel_axis(layout, len(shape))])
    stats = (v["running_mean"], v["running_var"], v["weight"], v["bias"])

    y = bnorm.batch_norm_scale_shift(x, *bnorm.fold_scale_shift(*stats), layout=layout,
                                     fuse_relu=fuse_relu)

    expected = bnorm.batch_norm(x, *stats, training=False, layout=layout, fuse_relu=fuse_relu)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))
    if fuse_relu:
        assert (y >= 0).all()


@pytest.mark.parametrize("layout, shape", [("NCHW", (3, 7, 5, 4)), ("NHWC", (3, 5, 4, 7))])
def test_scale_shift_forward_in_place_and_into_out(rng, layout, shape):
    x = random_input(rng, shape, layout)
    v = bn_vectors(rng, 7)
    scale, shift = bnorm.fold_scale_shift(v["running_mean"], v["running_var"])
    expected = bnorm.batch_norm_scale_shift(x, scale, shift, layout=layout)
    assert_close(expected, bnorm.batch_norm(x, v["running_mean"], v["running_var"],
                                            layout=layout))

    out = np.empty_like(x)
    assert bnorm.batch_norm_scale_shift(x, scale, shift, layout=layout, out=out) is out
    assert np.array_equal(out, expected)

    address = x.ctypes.data
    y = bnorm.batch_norm_scale_shift(x, scale, shift, layout=layout, out=x)
    assert y is x and x.ctypes.data == address
    assert np.array_equal(x, expected)


def test_scale_shift_forward_writes_a_torch_tensor_in_place(rng):
    t = torch.from_numpy(random_input(rng, (2, 3, 4, 4), "NCHW"))
    v = bn_vectors(rng, 3)
    expected = F.batch_norm(t, *(torch.from_numpy(v[k]) for k in
                                 ("running_mean", "running_var", "weight", "bias")),
                            training=False)
    scale, shift = bnorm.fold_scale_shift(v["running_mean"], v["running_var"], v["weight"],
                                          v["bias"])

    bnorm.batch_norm_scale_shift(t.numpy(), scale, shift, out=t.numpy())

    assert_close(t.numpy(), expected.numpy())


# -------------------------------------------- fold_into_layer against PyTorch

def randomize_bn(bn, rng):
    """Non-trivial running statistics (and affine parameters) for a torch BN."""
    c = bn.num_features
    v = bn_vectors(rng, c)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(v["running_mean"]))
        bn.running_var.copy_(torch.from_numpy(v["running_var"]))
        if bn.affine:
            bn.weight.copy_(torch.from_numpy(v["weight"]))
            bn.bias.copy_(torch.from_numpy(v["bias"]))
    return bn.eval()


def numpy_or_none(t):
    return None if t is None else t.detach().numpy()


def fold_torch(layer, bn, weight=None, **kwargs):
    """bnorm.fold_into_layer on a torch layer and BN, as NumPy arrays."""
    return bnorm.fold_into_layer(
        layer.weight.detach().numpy() if weight is None else weight, numpy_or_none(layer.bias),
        bn.running_mean.numpy(), bn.running_var.numpy(), numpy_or_none(bn.weight),
        numpy_or_none(bn.bias), bn.eps, **kwargs)


def with_weights(layer, weight, bias):
    """A copy of a torch layer with the given (NumPy) weight and bias."""
    folded = copy.deepcopy(layer)
    folded.weight = torch.nn.Parameter(torch.from_numpy(np.array(weight)))
    folded.bias = torch.nn.Parameter(torch.from_numpy(np.array(bias)))
    return folded


CONV_CASES = [
    # (conv class, BN class, in_channels, out_channels, kernel, input spatial, bias, eps, affine)
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 3, 8, 3, (9, 9), True, 1e-5, True),
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 3, 8, 3, (9, 9), False, 1e-5, True),
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 1, 1, 1, (5, 6), True, 1e-5, True),
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 5, 7, (3, 2), (8, 7), False, 1e-3, True),
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 7, 33, 5, (11, 10), True, 1e-5, True),
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 4, 17, 3, (6, 6), True, 1e-5, False),
    (torch.nn.Conv2d, torch.nn.BatchNorm2d, 4, 17, 3, (6, 6), False, 1e-5, False),
    (torch.nn.Conv1d, torch.nn.BatchNorm1d, 3, 11, 3, (20,), True, 1e-5, True),
    (torch.nn.Conv3d, torch.nn.BatchNorm3d, 2, 5, 3, (5, 6, 4), False, 1e-5, True),
]


def conv_id(case):
    conv, _, cin, cout, k, _, bias, eps, affine = case
    return "%s-%dto%d-k%s-%s-eps%g%s" % (conv.__name__, cin, cout, k,
                                         "bias" if bias else "nobias", eps,
                                         "" if affine else "-noaffine")


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_id)
def test_folded_convolution_is_conv_then_batch_norm_like_fuse_conv_bn_eval(rng, case):
    conv_cls, bn_cls, cin, cout, kernel, spatial, bias, eps, affine = case
    torch.manual_seed(int(rng.integers(1 << 31)))
    conv = conv_cls(cin, cout, kernel, bias=bias).eval()
    bn = randomize_bn(bn_cls(cout, eps=eps, affine=affine), rng)
    x = torch.from_numpy(random_input(rng, (4, cin) + spatial, "NCHW"))

    weight, bias_folded = fold_torch(conv, bn)

    assert weight.shape == tuple(conv.weight.shape) and bias_folded.shape == (cout,)
    with torch.no_grad():
        expected = bn(conv(x))
        folded_conv = with_weights(conv, weight, bias_folded)
        assert_close(folded_conv(x).numpy(), expected.numpy())
        reference = fusion.fuse_conv_bn_eval(conv, bn)
    close_to_rounding(weight, reference.weight.detach().numpy())
    close_to_rounding(bias_folded, reference.bias.detach().numpy())


@pytest.mark.parametrize("in_features, out_features, bias",
                         [(10, 6, True), (10, 6, False), (1, 1, True), (33, 17, True)])
def test_folded_linear_is_linear_then_batch_norm_like_fuse_linear_bn_eval(
        rng, in_features, out_features, bias):
    torch.manual_seed(int(rng.integers(1 << 31)))
    linear = torch.nn.Linear(in_features, out_features, bias=bias).eval()
    bn = randomize_bn(torch.nn.BatchNorm1d(out_features), rng)
    x = torch.from_numpy(random_input(rng, (8, in_features), "NCHW"))

    weight, bias_folded = fold_torch(linear, bn)

    with torch.no_grad():
        expected = bn(linear(x))
        assert_close(with_weights(linear, weight, bias_folded)(x).numpy(), expected.numpy())
    if hasattr(fusion, "fuse_linear_bn_eval"):  # in torch 1.13; older: the formula below
        reference = fusion.fuse_linear_bn_eval(linear, bn)
        want_w, want_b = reference.weight.detach().numpy(), reference.bias.detach().numpy()
    else:
        v = dict(running_mean=bn.running_mean.numpy(), running_var=bn.running_var.numpy(),
                 weight=bn.weight.detach().numpy(), bias=bn.bias.detach().numpy())
        scale, shift = expected_scale_shift(v, bn.eps)
        b = linear.bias.detach().numpy() if bias else 0.0
        want_w = linear.weight.detach().numpy() * scale[:, None]
        want_b = b * scale + shift
    close_to_rounding(weight, want_w)
    close_to_rounding(bias_folded, want_b)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_ohwi_weights_fold_like_oihw(rng, bias):
    # Channels-last convolution weights (out, kH, kW, in): the rows are still
    # one output channel each, so folding then permuting back gives the OIHW fold.
    torch.manual_seed(int(rng.integers(1 << 31)))
    conv = torch.nn.Conv2d(6, 9, (3, 5), bias=bias).eval()
    bn = randomize_bn(torch.nn.BatchNorm2d(9), rng)
    ohwi = np.ascontiguousarray(conv.weight.detach().numpy().transpose(0, 2, 3, 1))

    weight_ohwi, bias_folded = fold_torch(conv, bn, weight=ohwi)

    assert weight_ohwi.shape == (9, 3, 5, 6)
    weight = np.ascontiguousarray(weight_ohwi.transpose(0, 3, 1, 2))
    reference = fusion.fuse_conv_bn_eval(conv, bn)
    close_to_rounding(weight, reference.weight.detach().numpy())
    close_to_rounding(bias_folded, reference.bias.detach().numpy())
    assert np.array_equal(weight, fold_torch(conv, bn)[0])
    x = torch.from_numpy(random_input(rng, (2, 6, 7, 9), "NCHW"))
    with torch.no_grad():
        assert_close(with_weights(conv, weight, bias_folded)(x).numpy(), bn(conv(x)).numpy())


def test_folding_a_torch_conv_in_place(rng):
    torch.manual_seed(int(rng.integers(1 << 31)))
    conv = torch.nn.Conv2d(3, 5, 3).eval()
    bn = randomize_bn(torch.nn.BatchNorm2d(5), rng)
    x = torch.from_numpy(random_input(rng, (2, 3, 8, 8), "NCHW"))
    with torch.no_grad():
        expected = bn(conv(x))
    weight, bias = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    not_in_place = fold_torch(conv, bn)

    folded = fold_torch(conv, bn, out_weight=weight, out_bias=bias)

    assert folded[0] is weight and folded[1] is bias
    assert folded[0].ctypes.data == conv.weight.data_ptr()
    assert np.array_equal(weight, not_in_place[0]) and np.array_equal(bias, not_in_place[1])
    with torch.no_grad():  # the torch layer itself is now the folded one
        assert_close(conv(x).numpy(), expected.numpy())


def test_fold_into_preallocated_outputs(rng):
    v = bn_vectors(rng, 4)
    weight = rng.standard_normal((4, 3, 2)).astype(np.float32)
    out_weight, out_bias = np.empty_like(weight), np.empty(4, np.float32)

    got = bnorm.fold_into_layer(weight, None, v["running_mean"], v["running_var"], v["weight"],
                                v["bias"], out_weight=out_weight, out_bias=out_bias)

    assert got[0] is out_weight and got[1] is out_bias
    scale, shift = expected_scale_shift(v, 1e-5)
    close_to_rounding(out_weight, weight * scale[:, None, None])
    # No layer bias: folded bias = -mean * scale + beta = shift.
    close_to_rounding(out_bias, shift)


# --------------------------------------------------- the BatchNorm layer class

def test_layer_scale_shift_and_fold_into(rng):
    layer = bnorm.BatchNorm2d(6, eps=1e-3)
    v = bn_vectors(rng, 6)
    for name in ("running_mean", "running_var", "weight", "bias"):
        getattr(layer, name)[:] = v[name]
    x = random_input(rng, (2, 6, 5, 5), "NCHW")

    scale, shift = layer.scale_shift()

    want = bnorm.fold_scale_shift(v["running_mean"], v["running_var"], v["weight"], v["bias"],
                                  eps=1e-3)
    assert np.array_equal(scale, want[0]) and np.array_equal(shift, want[1])
    assert_close(bnorm.batch_norm_scale_shift(x, scale, shift), layer.eval()(x))

    weight = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    folded = layer.fold_into(weight, bias)
    want = bnorm.fold_into_layer(weight, bias, v["running_mean"], v["running_var"], v["weight"],
                                 v["bias"], eps=1e-3)
    assert np.array_equal(folded[0], want[0]) and np.array_equal(folded[1], want[1])


def test_layer_without_affine_folds_to_the_statistics_alone(rng):
    layer = bnorm.BatchNorm1d(3, affine=False)
    layer.running_mean[:] = [1, -2, 0.5]
    layer.running_var[:] = [4, 0.25, 1]

    scale, shift = layer.scale_shift()

    close_to_rounding(scale, 1 / np.sqrt(np.array([4, 0.25, 1]) + float(np.float32(1e-5))))
    close_to_rounding(shift, -np.array([1, -2, 0.5]) * scale.astype(np.float64))


def test_layer_without_running_stats_cannot_be_folded():
    layer = bnorm.BatchNorm2d(3, track_running_stats=False)
    with pytest.raises(bnorm.NullPointerError, match="no running statistics"):
        layer.scale_shift()
    with pytest.raises(bnorm.NullPointerError, match="no running statistics"):
        layer.fold_into(np.ones((3, 2), np.float32))


# ------------------------------------------------------------------- errors

@pytest.fixture
def fold_args(rng):
    v = bn_vectors(rng, 5)
    return dict(weight=rng.standard_normal((5, 3, 3, 3)).astype(np.float32),
                bias=rng.standard_normal(5).astype(np.float32),
                running_mean=v["running_mean"], running_var=v["running_var"],
                bn_weight=v["weight"], bn_bias=v["bias"])


@pytest.fixture
def outs():
    return np.full((5, 3, 3, 3), SENTINEL), np.full(5, SENTINEL)


def failing_fold(cls, args, outs, **changes):
    """fold_into_layer with changed arguments must raise cls and leave the
    outputs and the inputs exactly as they were; returns the error."""
    args = dict(args, **changes)
    before = {k: np.array(a, copy=True) for k, a in args.items() if isinstance(a, np.ndarray)}
    with pytest.raises(cls) as caught:
        bnorm.fold_into_layer(**args, out_weight=outs[0], out_bias=outs[1])
    assert (outs[0] == SENTINEL).all() and (outs[1] == SENTINEL).all()
    for k, a in before.items():
        assert np.array_equal(args[k], a), k
    return caught.value


def test_wrong_length_running_mean_is_caught_before_the_call(fold_args, outs):
    error = failing_fold(bnorm.FeatureMismatchError, fold_args, outs,
                         running_mean=fold_args["running_mean"][:4])
    assert error.status == 4
    assert error.message == ("running_mean has shape (4,) but must be a vector of 5 values "
                             "(num_features, weight.shape[0], the layer's output channels)")
    error = failing_fold(bnorm.FeatureMismatchError, fold_args, outs,
                         bias=np.zeros(6, np.float32))
    assert error.message.startswith("bias has shape (6,) but must be a vector of 5 values")


def test_weight_rows_that_are_not_the_batch_norms_channels(fold_args, outs):
    error = failing_fold(bnorm.FeatureMismatchError, fold_args, outs,
                         weight=np.ones((4, 3, 3, 3), np.float32), bias=None)
    assert error.message == ("weight has shape (4, 3, 3, 3), 4 output channels (rows), but the "
                             "batch norm has 5 channels (the length of running_mean, "
                             "running_var, bn_weight, bn_bias)")


def test_out_weight_of_another_shape_is_refused(fold_args, outs):
    error = failing_fold(bnorm.InvalidShapeError, fold_args,
                         (np.full((5, 27), SENTINEL), outs[1]))
    assert error.message == ("out_weight has shape (5, 27) and dtype float32 but must have "
                             "weight's shape (5, 3, 3, 3) and dtype float32")


def test_weight_of_rank_below_2_is_refused(fold_args, outs):
    error = failing_fold(bnorm.InvalidShapeError, fold_args, outs,
                         weight=np.ones(5, np.float32))
    assert "weight has shape (5,); a layer's weight has rank >= 2" in error.message


def test_non_float32_weight_needs_copy(fold_args, outs):
    weight64 = fold_args["weight"].astype(np.float64)
    error = failing_fold(bnorm.InvalidArgumentError, fold_args, outs, weight=weight64)
    assert error.message == ("weight has dtype float64; bnorm takes float32 "
                             "(pass copy=True to convert)")

    got = bnorm.fold_into_layer(**dict(fold_args, weight=weight64), copy=True)
    want = bnorm.fold_into_layer(**fold_args)
    assert got[0].dtype == np.float32
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    # Outputs are never copied, so a float64 out_weight is refused even with copy.
    with pytest.raises(bnorm.InvalidArgumentError, match="outputs are never copied"):
        bnorm.fold_into_layer(**dict(fold_args, weight=weight64), out_weight=weight64,
                              copy=True)


@pytest.mark.parametrize("eps, text", [(0.0, "eps is 0"), (-1.0, "eps is -1"),
                                       (float("nan"), "eps is nan")])
def test_bad_eps_is_the_librarys_invalid_argument(fold_args, outs, eps, text):
    error = failing_fold(bnorm.InvalidArgumentError, fold_args, outs, eps=eps)
    assert error.status == 5 and error.message == text + "; it must be finite and > 0"
    with pytest.raises(bnorm.InvalidArgumentError, match=text):
        bnorm.fold_scale_shift(fold_args["running_mean"], fold_args["running_var"], eps=eps)


def test_empty_rows_are_the_librarys_invalid_argument(fold_args):
    empty = np.ones((5, 0), np.float32)
    out_bias = np.full(5, SENTINEL)
    with pytest.raises(bnorm.InvalidArgumentError) as caught:
        bnorm.fold_into_layer(**dict(fold_args, weight=empty), out_bias=out_bias)
    assert caught.value.message.startswith("row_length is 0 with num_features 5; it must be > 0")
    assert (out_bias == SENTINEL).all()


def test_overlapping_outputs_are_the_librarys_aliasing_error(fold_args, outs):
    mean = fold_args["running_mean"]
    mean_before = mean.copy()
    with pytest.raises(bnorm.AliasingError) as caught:
        bnorm.fold_into_layer(**fold_args, out_weight=outs[0], out_bias=mean)
    assert caught.value.message == "folded_bias overlaps mean"
    assert np.array_equal(mean, mean_before) and (outs[0] == SENTINEL).all()
    # In place means the same array; one shifted by an element is an overlap.
    storage = np.zeros(fold_args["weight"].size + 1, np.float32)
    storage[:-1] = fold_args["weight"].ravel()
    weight = storage[:-1].reshape(5, 3, 3, 3)
    with pytest.raises(bnorm.AliasingError, match="folded_weights overlaps weights"):
        bnorm.fold_into_layer(**dict(fold_args, weight=weight),
                              out_weight=storage[1:].reshape(5, 3, 3, 3))
    assert np.array_equal(weight, fold_args["weight"])


def test_fold_scale_shift_errors(fold_args):
    mean, var = fold_args["running_mean"], fold_args["running_var"]
    with pytest.raises(bnorm.FeatureMismatchError,
                       match=r"running_var has shape \(4,\) but must be a vector of 5 values"):
        bnorm.fold_scale_shift(mean, var[:4])
    with pytest.raises(bnorm.FeatureMismatchError, match=r"weight has shape \(6,\)"):
        bnorm.fold_scale_shift(mean, var, np.ones(6, np.float32))
    error = pytest.raises(bnorm.NullPointerError, bnorm.fold_scale_shift, None, var).value
    assert error.message == "mean is NULL"


def test_batch_norm_scale_shift_errors(rng):
    x = random_input(rng, (2, 4, 3), "NCHW")
    scale, shift = np.ones(5, np.float32), np.zeros(5, np.float32)
    out = np.full_like(x, SENTINEL)
    # The layer (scale, shift) has 5 channels and x 4: the library's report.
    with pytest.raises(bnorm.FeatureMismatchError,
                       match=r"^BNORM_ERR_FEATURE_MISMATCH: input channel dimension \(dim 1\) "
                             r"is 4 but num_features is 5$"):
        bnorm.batch_norm_scale_shift(x, scale, shift, out=out)
    with pytest.raises(bnorm.FeatureMismatchError,
                       match=r"shift has shape \(3,\) but must be a vector of 4 values"):
        bnorm.batch_norm_scale_shift(x, scale[:4], shift[:3], out=out)
    with pytest.raises(bnorm.NullPointerError, match="shift is NULL"):
        bnorm.batch_norm_scale_shift(x, scale[:4], None, out=out)
    with pytest.raises(bnorm.InvalidArgumentError, match="num_threads is -1"):
        bnorm.batch_norm_scale_shift(x, scale[:4], shift[:4], num_threads=-1, out=out)
    with pytest.raises(bnorm.InvalidArgumentError, match="layout is 'NWHC'"):
        bnorm.batch_norm_scale_shift(x, scale[:4], shift[:4], layout="NWHC", out=out)
    assert (out == SENTINEL).all()


# ------------------------------------------------- an older (1.0) library

class Library10:
    """A 1.0 libbnorm as the binding sees it: reports 1.0.0 and lacks the
    1.1 symbols, everything else from the real library."""

    def __init__(self, real, version=10000, text=b"1.0.0"):
        self._real = real
        # Plain functions, so that declaring prototypes on them works.
        self.bnorm_version = lambda: version
        self.bnorm_version_string = lambda: text

    def __getattr__(self, name):
        if name in _lib._SINCE:
            raise AttributeError("undefined symbol: " + name)
        return getattr(self._real, name)


@pytest.fixture
def library_1_0(monkeypatch):
    fake = Library10(_lib.lib())
    _lib._declare(fake)  # loading declares only 1.0 functions, so a 1.0 library loads
    monkeypatch.setattr(_lib, "_loaded", (fake, "/opt/old/libbnorm.so.1"))
    return fake


def test_a_1_0_library_runs_the_old_functions_and_names_its_version_for_the_new(
        rng, library_1_0):
    x = random_input(rng, (2, 3, 4), "NCHW")
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    assert bnorm.version() == (1, 0, 0)
    assert bnorm.batch_norm(x, mean, var).shape == x.shape

    for call in (lambda: bnorm.fold_scale_shift(mean, var),
                 lambda: bnorm.batch_norm_scale_shift(x, mean, var),
                 lambda: bnorm.fold_into_layer(np.ones((3, 2), np.float32), None, mean, var),
                 lambda: bnorm.BatchNorm1d(3).scale_shift()):
        with pytest.raises(bnorm.LibraryVersionError) as caught:
            call()
        message = str(caught.value)
        assert "needs libbnorm >= 1.1.0" in message
        assert "/opt/old/libbnorm.so.1 reports version 1.0.0" in message


def test_a_library_claiming_1_1_without_the_symbols_is_reported(monkeypatch):
    fake = Library10(_lib.lib(), 10100, b"1.1.0")
    monkeypatch.setattr(_lib, "_loaded", (fake, "/opt/odd/libbnorm.so.1"))
    with pytest.raises(bnorm.LibraryVersionError,
                       match="reports version 1.1.0 but does not export bnorm_fold_scale_shift"):
        bnorm.fold_scale_shift(np.zeros(2, np.float32), np.ones(2, np.float32))
