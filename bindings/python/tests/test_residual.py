"""Residual add (libbnorm 1.2), the tail of a ResNet block:
y = relu(batch_norm(x) + residual), through batch_norm(..., residual=),
batch_norm_backward_residual and BatchNorm.forward(residual=) /
BatchNorm.backward_residual.

The reference is PyTorch in float64: F.batch_norm(x) + residual, then ReLU,
and autograd for dx, d_residual, dweight and dbias. The float32 data is
converted to float64 exactly, so the reference's own rounding (~1e-16) is
negligible and the tolerances below measure bnorm's float32 results alone.
"""

import os
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnorm
from bnorm import _lib
from conftest import channel_axis, numpy_from_torch, random_input, random_vector, torch_view

SENTINEL = -12345.0
MOMENTUM = 0.2
EPS = 1e-5

# Largest error seen per quantity, relative to its scale (see within()).
# Kept for reporting: run pytest.main() in one interpreter and read it.
OBSERVED = {}


def within(name, actual, expected, tol, terms=0.0):
    """max |actual - expected| <= tol * max(1, max |expected|, terms):
    float32 rounding is relative to the magnitudes involved, and values near
    zero (from cancellation) are only as exact as the largest value's scale,
    or that of the terms that cancelled (see dx_terms)."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    assert np.isfinite(actual).all(), name
    scale = max(1.0, float(np.abs(expected).max()), terms)
    err = float(np.abs(actual - expected).max()) / scale
    OBSERVED[name] = max(OBSERVED.get(name, 0.0), err)
    assert err <= tol, "%s: error %.3g (relative to scale %.3g) exceeds %.3g" % (
        name, err, scale, tol)


# Tolerances, relative to max(1, max |reference|). float32 carries 2^-24
# (6e-8) relative rounding per operation; the library sums in float over
# short blocks then in double (worst case 2^-19 of the sum of the terms'
# magnitudes). The C tests (tests/residual_test.cc) hold the library to the
# same 1e-5 / 1e-6 against their own float64 reference.
# y = (x - mean) * invstd * gamma + beta + residual, the add before any
#   rounding to float32: the mean and invstd are off by at most ~2^-19
#   relative, times invstd * |gamma| <= 4 and |x - mean| * invstd <= ~5 for
#   this data, then a few roundings of values up to ~10: a few 1e-6 of the
#   scale at worst. Observed: ~1e-7.
Y_TOL = 1e-5
# Running statistics: (1 - m) * running + m * batch in double, rounded once
#   (6e-8), the batch variance carrying the sums' 2^-19 times m = 0.2
#   (4e-7). save_mean/save_invstd: the batch mean and 1/sqrt(var + eps)
#   rounded to float32, with the same 2^-19 relative error of the sums.
STATS_TOL = 1e-6
# dx: dy * gamma * invstd minus per-channel terms from the double sums,
#   mapped with float32 coefficients: the same error sources as y, relative
#   to the terms |dy| * |gamma| * invstd (dx_terms), not to dx. Training dx
#   cancels: gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)); with two
#   values per channel it is gamma * invstd * (g0 - g1) / 2 * eps / (d^2 +
#   eps) (d half their distance), so |dx| may be 1e-4 of the terms, and the
#   float32 rounding of the saved mean and invstd alone (which PyTorch's
#   float32 kernels also carry) moves it by ~1e-6 of the terms.
DX_TOL = 1e-5


def dx_terms(dy, weight, invstd, layout):
    """max |dy * weight * invstd|, the size of dx's terms (weight None: 1)."""
    bshape = [1] * dy.ndim
    bshape[channel_axis(layout, dy.ndim)] = -1
    w = np.ones_like(invstd) if weight is None else np.asarray(weight, np.float64)
    return float(np.abs(dy * (w * invstd).reshape(bshape)).max())


def grad_tol(count):
    """dweight/dbias: sums of `count` float32 products, off by at most 2^-19
    of the sum of the terms' magnitudes (~count * E|term|), while the sum
    itself is ~sqrt(count) * E|term| for random dy: relative to it 2^-19 *
    sqrt(count), plus the final float32 rounding. At least 1e-5."""
    return max(1e-5, 2.0 ** -19 * np.sqrt(count))


# d_residual is g = dy, zeroed where y <= 0 with fuse_relu: a copy of float32
# values, so it must equal the reference exactly. The data keeps
# |bn(x) + residual| >= SEPARATION (separate_from_zero), far above y's error,
# so bnorm's float32 y and the float64 reference agree on every ReLU mask
# and no element's gradient is decided by rounding.
SEPARATION = 1e-3


def residual_cases(seed, channel_counts=(1, 3, 17, 67)):
    """(layout, shape) for ranks 2 to 5 in both layouts, random batch and
    spatial sizes, shape in memory order; then spatial size 1 at ranks 3 to
    5 (one value per channel per sample)."""
    gen = np.random.default_rng(seed)
    cases = []
    for rank in (2, 3, 4, 5):
        for layout in ("NCHW", "NHWC"):
            for c in channel_counts:
                n = int(gen.integers(2, 7))
                spatial = [int(d) for d in gen.integers(1, 8 if rank < 5 else 5, rank - 2)]
                dims = [n, c] + spatial if layout == "NCHW" else [n] + spatial + [c]
                cases.append((layout, tuple(dims)))
    for rank, c in ((3, 17), (4, 67), (5, 3)):
        for layout in ("NCHW", "NHWC"):
            n = int(gen.integers(2, 7))
            dims = [n, c] + [1] * (rank - 2) if layout == "NCHW" else [n] + [1] * (rank - 2) + [c]
            cases.append((layout, tuple(dims)))
    return cases


def case_id(case):
    layout, shape = case
    return "%s-%s" % (layout, "x".join(map(str, shape)))


CASES = residual_cases(seed=1202)


def channels(layout, shape):
    return shape[channel_axis(layout, len(shape))]


def layer_vectors(rng, c):
    # Weights of both signs, so the ReLU cuts both ends of bn(x).
    return dict(weight=random_vector(rng, c, -2, 2), bias=random_vector(rng, c, -1, 1),
                running_mean=random_vector(rng, c, -1, 1),
                running_var=random_vector(rng, c, 0.5, 2))


def torch_bn64(x, v, affine, training, track, layout, requires_grad=False):
    """Float64 leaves for the reference: (xt, wt, bt, running_mean,
    running_var); weight 1 / bias 0 without affine (the same y, and the
    gradients bnorm reports then)."""
    c = v["weight"].shape[0]
    xt = torch_view(x.astype(np.float64), layout).requires_grad_(requires_grad)
    wt = torch.from_numpy(v["weight"].astype(np.float64) if affine else np.ones(c))
    bt = torch.from_numpy(v["bias"].astype(np.float64) if affine else np.zeros(c))
    wt.requires_grad_(requires_grad)
    bt.requires_grad_(requires_grad)
    uses_running = track or not training
    rm = torch.from_numpy(v["running_mean"].astype(np.float64)) if uses_running else None
    rv = torch.from_numpy(v["running_var"].astype(np.float64)) if uses_running else None
    return xt, wt, bt, rm, rv


def separate_from_zero(x, residual, v, affine, training, layout):
    """residual, moved by 2 * SEPARATION where |bn(x) + residual| <
    SEPARATION (away from zero). The statistics are x's, so this moves
    bn(x) + residual by just that much and changes nothing else."""
    xt, wt, bt, rm, rv = torch_bn64(x, v, affine, training, True, layout)
    with torch.no_grad():
        z = numpy_from_torch(F.batch_norm(xt, rm, rv, wt, bt, training=training,
                                          momentum=0.0, eps=EPS), layout)
    z = z + residual
    near = np.abs(z) < SEPARATION
    step = np.where(z >= 0, 2 * SEPARATION, -2 * SEPARATION)
    return np.where(near, residual + step, residual).astype(np.float32)


def make_data(rng, layout, shape, affine, training):
    """x, residual (kept off the ReLU's edge), dy and the layer's vectors."""
    x = random_input(rng, shape, layout)
    v = layer_vectors(rng, channels(layout, shape))
    residual = (1.5 * rng.standard_normal(shape)).astype(np.float32)
    residual = separate_from_zero(x, residual, v, affine, training, layout)
    dy = rng.standard_normal(shape).astype(np.float32)
    return x, residual, dy, v


def torch_reference(x, residual, dy, v, affine, relu, training, track, layout):
    """F.batch_norm(x) + residual (then ReLU) and autograd, in float64:
    dict of y, z (before the ReLU), running_mean, running_var, dx,
    d_residual, dweight, dbias, arrays in bnorm's memory order."""
    xt, wt, bt, rm, rv = torch_bn64(x, v, affine, training, track, layout, requires_grad=True)
    rt = torch_view(residual.astype(np.float64), layout).requires_grad_(True)
    z = F.batch_norm(xt, rm, rv, wt, bt, training=training, momentum=MOMENTUM, eps=EPS) + rt
    y = F.relu(z) if relu else z
    y.backward(torch_view(dy.astype(np.float64), layout))
    return dict(y=numpy_from_torch(y, layout), z=numpy_from_torch(z, layout),
                running_mean=None if rm is None else rm.numpy(),
                running_var=None if rv is None else rv.numpy(),
                dx=numpy_from_torch(xt.grad, layout), d_residual=numpy_from_torch(rt.grad, layout),
                dweight=wt.grad.numpy(), dbias=bt.grad.numpy())


def batch_stats64(x, layout):
    """The batch mean and 1/sqrt(biased var + eps) per channel, in float64."""
    axis = channel_axis(layout, x.ndim)
    per_channel = np.moveaxis(x.astype(np.float64), axis, 0).reshape(x.shape[axis], -1)
    return per_channel.mean(axis=1), 1.0 / np.sqrt(per_channel.var(axis=1) + EPS)


def check_d_residual(d_residual, ref):
    """d_residual is dy where the forward's output passed the ReLU, else 0:
    exactly the reference's float64 gradient (a copy of float32 values)."""
    assert d_residual.dtype == np.float32
    assert np.array_equal(d_residual.astype(np.float64), ref["d_residual"])
    OBSERVED["d_residual"] = 0.0  # exact, whenever checked


# ------------------------------------------------------ against PyTorch

TRAINING_CONFIGS = [(True, True, True), (False, False, True), (True, False, False),
                    (False, True, False)]


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("affine, relu, track", TRAINING_CONFIGS,
                         ids=["affine-relu", "plain", "affine-untracked", "relu-untracked"])
def test_training_forward_and_backward_match_torch(rng, case, affine, relu, track):
    layout, shape = case
    c = channels(layout, shape)
    x, residual, dy, v = make_data(rng, layout, shape, affine, True)
    weight, bias = (v["weight"], v["bias"]) if affine else (None, None)
    running = ((v["running_mean"].copy(), v["running_var"].copy()) if track else (None, None))
    save_mean, save_invstd = np.full(c, SENTINEL, np.float32), np.full(c, SENTINEL, np.float32)

    y = bnorm.batch_norm(x, *running, weight, bias, training=True, momentum=MOMENTUM,
                         eps=EPS, layout=layout, fuse_relu=relu, residual=residual,
                         save_mean=save_mean, save_invstd=save_invstd)
    dx, d_residual, dweight, dbias = bnorm.batch_norm_backward_residual(
        dy, x, weight, save_mean, save_invstd, y=y, fuse_relu=relu, layout=layout, eps=EPS)

    ref = torch_reference(x, residual, dy, v, affine, relu, True, track, layout)
    assert y.shape == x.shape and y.dtype == np.float32
    within("training y", y, ref["y"], Y_TOL)
    if relu:
        assert (y >= 0).all() and ((y == 0) == (ref["z"] <= 0)).all()
    mean64, invstd64 = batch_stats64(x, layout)
    within("save_mean", save_mean, mean64, STATS_TOL)
    within("save_invstd", save_invstd, invstd64, STATS_TOL)
    if track:
        within("running_mean", running[0], ref["running_mean"], STATS_TOL)
        within("running_var", running[1], ref["running_var"], STATS_TOL)
    within("training dx", dx, ref["dx"], DX_TOL, dx_terms(dy, weight, invstd64, layout))
    check_d_residual(d_residual, ref)
    count = x.size // c
    within("training dweight", dweight, ref["dweight"], grad_tol(count))
    within("training dbias", dbias, ref["dbias"], grad_tol(count))


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("affine, relu", [(True, True), (False, False), (True, False)],
                         ids=["affine-relu", "plain", "affine"])
def test_eval_forward_and_frozen_backward_match_torch(rng, case, affine, relu):
    layout, shape = case
    c = channels(layout, shape)
    x, residual, dy, v = make_data(rng, layout, shape, affine, False)
    weight, bias = (v["weight"], v["bias"]) if affine else (None, None)
    running_mean, running_var = v["running_mean"].copy(), v["running_var"].copy()

    y = bnorm.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=EPS,
                         layout=layout, fuse_relu=relu, residual=residual)
    dx, d_residual, dweight, dbias = bnorm.batch_norm_backward_residual(
        dy, x, weight, training=False, running_mean=running_mean, running_var=running_var,
        eps=EPS, y=y, fuse_relu=relu, layout=layout)

    ref = torch_reference(x, residual, dy, v, affine, relu, False, True, layout)
    within("eval y", y, ref["y"], Y_TOL)
    # Eval reads the running statistics and leaves them alone.
    assert np.array_equal(running_mean, v["running_mean"])
    assert np.array_equal(running_var, v["running_var"])
    within("eval dx", dx, ref["dx"], DX_TOL)
    check_d_residual(d_residual, ref)
    within("eval dweight", dweight, ref["dweight"], grad_tol(x.size // c))
    within("eval dbias", dbias, ref["dbias"], grad_tol(x.size // c))


def test_without_relu_d_residual_is_dy_and_dx_is_batch_norm_backwards(rng):
    # No ReLU: the add passes the gradient through unchanged, and the batch
    # norm's gradients are those of the call without a residual, bit for bit.
    x, residual, dy, v = make_data(rng, "NHWC", (5, 3, 4, 17), True, True)
    save_mean, save_invstd = np.empty(17, np.float32), np.empty(17, np.float32)
    bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True, layout="NHWC",
                     residual=residual, save_mean=save_mean, save_invstd=save_invstd)

    dx, d_residual, dweight, dbias = bnorm.batch_norm_backward_residual(
        dy, x, v["weight"], save_mean, save_invstd, layout="NHWC")
    plain = bnorm.batch_norm_backward(dy, x, v["weight"], save_mean, save_invstd,
                                      layout="NHWC")

    assert np.array_equal(d_residual, dy)
    for a, b in zip((dx, dweight, dbias), plain):
        assert np.array_equal(a, b)


def test_with_relu_dx_equals_batch_norm_backward_given_the_residual_output(rng):
    # The header's promise: bnorm_backward with the fused ReLU and this y
    # gives the same dx, without d_residual.
    x, residual, dy, v = make_data(rng, "NCHW", (4, 17, 3, 5), True, True)
    save_mean, save_invstd = np.empty(17, np.float32), np.empty(17, np.float32)
    y = bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True, fuse_relu=True,
                         residual=residual, save_mean=save_mean, save_invstd=save_invstd)

    dx, d_residual, dweight, dbias = bnorm.batch_norm_backward_residual(
        dy, x, v["weight"], save_mean, save_invstd, y=y, fuse_relu=True)
    plain = bnorm.batch_norm_backward(dy, x, v["weight"], save_mean, save_invstd, y=y,
                                      fuse_relu=True)

    assert np.array_equal(d_residual, np.where(y > 0, dy, 0))
    assert 0 < np.count_nonzero(d_residual) < d_residual.size  # the ReLU cut somewhere
    for a, b in zip((dx, dweight, dbias), plain):
        assert np.array_equal(a, b)


def test_nan_stays_nan_and_its_gradient_passes_as_in_torch(rng):
    # Forward ReLU keeps NaN; backward zeroes dy only where y <= 0, so a NaN
    # output passes its gradient (PyTorch's threshold_backward does too).
    x, residual, dy, v = make_data(rng, "NCHW", (3, 3, 4), True, False)
    residual[1, 2, 3] = np.nan
    y = bnorm.batch_norm(x, v["running_mean"], v["running_var"], v["weight"], v["bias"],
                         fuse_relu=True, residual=residual)
    dx, d_residual, dweight, dbias = bnorm.batch_norm_backward_residual(
        dy, x, v["weight"], training=False, running_mean=v["running_mean"],
        running_var=v["running_var"], y=y, fuse_relu=True)

    ref = torch_reference(x, residual, dy, v, True, True, False, True, "NCHW")
    assert np.isnan(y[1, 2, 3]) and np.isnan(y).sum() == 1
    assert d_residual[1, 2, 3] == dy[1, 2, 3] and ref["d_residual"][1, 2, 3] == dy[1, 2, 3]
    np.testing.assert_array_equal(d_residual, ref["d_residual"])
    np.testing.assert_allclose(y, ref["y"], rtol=0, atol=Y_TOL * np.nanmax(np.abs(ref["y"])))
    within("nan dx", dx, ref["dx"], DX_TOL)
    within("nan dweight", dweight, ref["dweight"], grad_tol(12))
    within("nan dbias", dbias, ref["dbias"], grad_tol(12))


def test_residual_none_is_the_plain_call_bit_for_bit(rng):
    x, _, dy, v = make_data(rng, "NCHW", (4, 3, 5), True, True)
    for training in (True, False):
        plain = bnorm.batch_norm(x, v["running_mean"].copy(), v["running_var"].copy(),
                                 v["weight"], v["bias"], training=training, fuse_relu=True)
        none = bnorm.batch_norm(x, v["running_mean"].copy(), v["running_var"].copy(),
                                v["weight"], v["bias"], training=training, fuse_relu=True,
                                residual=None)
        assert np.array_equal(plain, none)


def test_x_itself_as_the_residual(rng):
    # Read-only inputs may overlap: y = bn(x) + x, also written over x.
    x, _, _, v = make_data(rng, "NCHW", (6, 3, 4), True, True)
    expected = bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True,
                                residual=x.copy())
    separate = bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True,
                                residual=x)
    xt, wt, bt, _, _ = torch_bn64(x, v, True, True, False, "NCHW")
    reference = (F.batch_norm(xt, None, None, wt, bt, training=True) + xt).numpy()
    within("y with residual x", separate, reference, Y_TOL)
    assert np.array_equal(separate, expected)

    same = bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True,
                            residual=x, out=x)
    assert same is x and np.array_equal(x, expected)


def test_num_threads_does_not_change_the_bits(rng):
    x, residual, dy, v = make_data(rng, "NHWC", (8, 5, 5, 17), True, True)
    results = []
    for threads in (1, 2):
        save = np.empty(17, np.float32), np.empty(17, np.float32)
        y = bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True,
                             fuse_relu=True, layout="NHWC", residual=residual,
                             num_threads=threads, save_mean=save[0], save_invstd=save[1])
        grads = bnorm.batch_norm_backward_residual(dy, x, v["weight"], *save, y=y,
                                                   fuse_relu=True, layout="NHWC",
                                                   num_threads=threads)
        results.append((y,) + save + grads)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_one_value_per_channel_is_fine_in_eval_and_too_few_in_training(rng):
    x, residual, dy, v = make_data(rng, "NCHW", (1, 3), True, False)
    y = bnorm.batch_norm(x, v["running_mean"], v["running_var"], v["weight"], v["bias"],
                         residual=residual)
    ref = torch_reference(x, residual, dy, v, True, False, False, True, "NCHW")
    within("eval y, one sample", y, ref["y"], Y_TOL)
    frozen = bnorm.batch_norm_backward_residual(dy, x, v["weight"], training=False,
                                                running_mean=v["running_mean"],
                                                running_var=v["running_var"])
    within("eval dx, one sample", frozen[0], ref["dx"], DX_TOL)

    out = np.full_like(x, SENTINEL)
    running = v["running_mean"].copy(), v["running_var"].copy()
    error = raised(bnorm.TooFewValuesError, lambda: bnorm.batch_norm(
        x, *running, training=True, residual=residual, out=out))
    assert error.message == ("training needs more than 1 value per channel, got input of "
                             "shape (1, 3)")
    assert (out == SENTINEL).all()
    assert np.array_equal(running[0], v["running_mean"])
    assert np.array_equal(running[1], v["running_var"])
    dx_out, dres_out = np.full_like(x, SENTINEL), np.full_like(x, SENTINEL)
    error = raised(bnorm.TooFewValuesError, lambda: bnorm.batch_norm_backward_residual(
        dy, x, None, *running, out=dx_out, out_residual=dres_out))
    assert "training-mode backward needs more than 1 value per channel" in error.message
    assert (dx_out == SENTINEL).all() and (dres_out == SENTINEL).all()


def test_output_mask_drops_results_not_their_values(rng):
    x, residual, dy, v = make_data(rng, "NCHW", (4, 3, 5), True, True)
    save = np.empty(3, np.float32), np.empty(3, np.float32)
    y = bnorm.batch_norm(x, None, None, v["weight"], v["bias"], training=True, fuse_relu=True,
                         residual=residual, save_mean=save[0], save_invstd=save[1])
    full = bnorm.batch_norm_backward_residual(dy, x, v["weight"], *save, y=y, fuse_relu=True)

    only_dres = bnorm.batch_norm_backward_residual(dy, x, v["weight"], *save, y=y,
                                                   fuse_relu=True,
                                                   output_mask=(False, True, False, False))
    only_dx = bnorm.batch_norm_backward_residual(dy, x, v["weight"], *save, y=y,
                                                 fuse_relu=True,
                                                 output_mask=(True, False, True, False))

    assert only_dres[0] is None and only_dres[2] is None and only_dres[3] is None
    assert np.array_equal(only_dres[1], full[1])
    assert only_dx[1] is None and only_dx[3] is None
    assert np.array_equal(only_dx[0], full[0]) and np.array_equal(only_dx[2], full[2])


# -------------------------------------------------------------- in place

IN_PLACE_CASES = [("NCHW", (4, 3, 5)), ("NHWC", (3, 4, 2, 17)), ("NCHW", (2, 67, 1, 1, 1)),
                  ("NHWC", (5, 1))]


@pytest.mark.parametrize("case", IN_PLACE_CASES, ids=case_id)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("over", ["x", "residual"])
def test_forward_in_place_over_x_or_residual_gives_the_same_bits(rng, case, training, over):
    layout, shape = case
    c = channels(layout, shape)
    x, residual, _, v = make_data(rng, layout, shape, True, training)
    common = dict(training=training, layout=layout, fuse_relu=True, momentum=MOMENTUM)

    def run(x_in, residual_in, out):
        running = v["running_mean"].copy(), v["running_var"].copy()
        save = ((np.empty(c, np.float32), np.empty(c, np.float32)) if training
                else (None, None))
        y = bnorm.batch_norm(x_in, *running, v["weight"], v["bias"], residual=residual_in,
                             out=out, save_mean=save[0], save_invstd=save[1], **common)
        return y, running, save

    expected, expected_running, expected_save = run(x, residual, None)
    x_in, residual_in = x.copy(), residual.copy()
    target = x_in if over == "x" else residual_in
    y, running, save = run(x_in, residual_in, target)

    assert y is target
    assert np.array_equal(target, expected)
    # The other input is read only.
    other, original = (residual_in, residual) if over == "x" else (x_in, x)
    assert np.array_equal(other, original)
    for a, b in zip(running + save, expected_running + expected_save):
        assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("case", IN_PLACE_CASES, ids=case_id)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("over", ["out", "out_residual"])
def test_backward_dx_or_d_residual_over_dy_gives_the_same_bits(rng, case, training, relu,
                                                                over):
    layout, shape = case
    c = channels(layout, shape)
    x, residual, dy, v = make_data(rng, layout, shape, True, training)
    save = np.empty(c, np.float32), np.empty(c, np.float32)
    y = bnorm.batch_norm(x, v["running_mean"].copy(), v["running_var"].copy(), v["weight"],
                         v["bias"], training=training, layout=layout, fuse_relu=relu,
                         residual=residual, save_mean=save[0] if training else None,
                         save_invstd=save[1] if training else None)
    stats = (dict(save_mean=save[0], save_invstd=save[1]) if training else
             dict(running_mean=v["running_mean"], running_var=v["running_var"]))
    common = dict(training=training, y=y, fuse_relu=relu, layout=layout, **stats)
    expected = bnorm.batch_norm_backward_residual(dy, x, v["weight"], **common)

    dy_in = dy.copy()
    result = bnorm.batch_norm_backward_residual(dy_in, x, v["weight"], **{over: dy_in},
                                                **common)

    assert result[0 if over == "out" else 1] is dy_in
    for a, b in zip(result, expected):
        assert np.array_equal(a, b)


def test_dx_and_d_residual_cannot_both_overwrite_dy(rng):
    x, residual, dy, v = make_data(rng, "NCHW", (4, 3, 5), True, True)
    save = np.empty(3, np.float32), np.empty(3, np.float32)
    bnorm.batch_norm(x, None, None, training=True, residual=residual, save_mean=save[0],
                     save_invstd=save[1])
    dy_in = dy.copy()

    error = raised(bnorm.AliasingError, lambda: bnorm.batch_norm_backward_residual(
        dy_in, x, None, *save, out=dy_in, out_residual=dy_in))

    assert error.message == "dx overlaps d_residual"
    assert np.array_equal(dy_in, dy)


# ------------------------------------------------------------ the layers

LAYERS = [
    (bnorm.BatchNorm1d, torch.nn.BatchNorm1d, (6, 5)),
    (bnorm.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 7)),
    (bnorm.BatchNorm2d, torch.nn.BatchNorm2d, (3, 17, 4, 5)),
    (bnorm.BatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 3, 4, 2)),
]


def nhwc_shape(shape):
    return (shape[0],) + shape[2:] + (shape[1],)


@pytest.mark.parametrize("ours_cls, torch_cls, shape", LAYERS,
                         ids=[str(s) for _, _, s in LAYERS])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_layer_with_fused_relu_and_residual_follows_torch(rng, ours_cls, torch_cls, shape,
                                                          layout):
    c = shape[1]
    ours = ours_cls(c, momentum=MOMENTUM, layout=layout, fuse_relu=True)
    theirs = torch_cls(c, momentum=MOMENTUM).double()
    with torch.no_grad():
        theirs.weight.uniform_(-2, 2)
        theirs.bias.uniform_(-1, 1)
    ours.weight[:] = theirs.weight.detach().numpy()
    ours.bias[:] = theirs.bias.detach().numpy()
    data_shape = nhwc_shape(shape) if layout == "NHWC" else shape

    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        v = dict(weight=ours.weight, bias=ours.bias, running_mean=ours.running_mean.copy(),
                 running_var=ours.running_var.copy())
        x = random_input(rng, data_shape, layout)
        residual = separate_from_zero(
            x, (1.5 * rng.standard_normal(data_shape)).astype(np.float32), v, True,
            ours.training, layout)
        dy = rng.standard_normal(data_shape).astype(np.float32)

        y = ours(x, residual=residual)
        dx, d_residual, dweight, dbias = ours.backward_residual(dy, x, y=y)

        xt = torch_view(x.astype(np.float64), layout).requires_grad_(True)
        rt = torch_view(residual.astype(np.float64), layout).requires_grad_(True)
        theirs.zero_grad()
        yt = torch.relu(theirs(xt) + rt)
        yt.backward(torch_view(dy.astype(np.float64), layout))
        within("layer y", y, numpy_from_torch(yt, layout), Y_TOL)
        within("layer dx", dx, numpy_from_torch(xt.grad, layout), DX_TOL)
        assert np.array_equal(d_residual, numpy_from_torch(rt.grad, layout))
        count = x.size // c
        within("layer dweight", dweight, theirs.weight.grad.numpy(), grad_tol(count))
        within("layer dbias", dbias, theirs.bias.grad.numpy(), grad_tol(count))
        assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == min(step + 1, 3)
        within("layer running_mean", ours.running_mean, theirs.running_mean.numpy(), STATS_TOL)
        within("layer running_var", ours.running_var, theirs.running_var.numpy(), STATS_TOL)


def test_layer_without_affine_or_tracking_uses_batch_stats_in_eval(rng):
    ours = bnorm.BatchNorm2d(3, affine=False, track_running_stats=False, layout="NHWC").eval()
    theirs = torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False).double().eval()
    x = random_input(rng, (4, 3, 5, 3), "NHWC")
    residual = rng.standard_normal(x.shape).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    y = ours(x, residual=residual)
    dx, d_residual, dweight, dbias = ours.backward_residual(dy, x)

    xt = torch_view(x.astype(np.float64), "NHWC").requires_grad_(True)
    yt = theirs(xt) + torch_view(residual.astype(np.float64), "NHWC")
    yt.backward(torch_view(dy.astype(np.float64), "NHWC"))
    within("layer y, batch stats in eval", y, numpy_from_torch(yt, "NHWC"), Y_TOL)
    within("layer dx, batch stats in eval", dx, numpy_from_torch(xt.grad, "NHWC"), DX_TOL)
    assert np.array_equal(d_residual, dy)
    assert dweight is None and dbias is None and ours.running_mean is None


def test_layer_in_place_over_the_residual_and_copy_of_a_float64_residual(rng):
    layer = bnorm.BatchNorm2d(3, fuse_relu=True)
    twin = bnorm.BatchNorm2d(3, fuse_relu=True)
    x = random_input(rng, (2, 3, 4, 4), "NCHW")
    residual = rng.standard_normal(x.shape).astype(np.float32)
    expected = twin(x, residual=residual)

    with pytest.raises(bnorm.InvalidArgumentError, match="residual has dtype float64"):
        layer(x, residual=residual.astype(np.float64))
    assert layer.num_batches_tracked == 0
    converted = layer(x, residual=residual.astype(np.float64), copy=True)
    assert np.array_equal(converted, expected)

    layer.reset_running_stats()
    y = layer(x, out=residual, residual=residual)
    assert y is residual and np.array_equal(residual, expected)
    assert np.array_equal(layer.running_mean, twin.running_mean)


def test_failed_layer_forward_with_a_residual_changes_no_state(rng):
    layer = bnorm.BatchNorm2d(3)
    x = random_input(rng, (2, 3, 4, 4), "NCHW")
    out = np.full_like(x, SENTINEL)
    with pytest.raises(bnorm.InvalidShapeError, match="residual has shape"):
        layer(x, out=out, residual=np.zeros((2, 3, 4, 5), np.float32))
    # An output partly over the residual reaches the library, which refuses it.
    backing = np.full(x.size + 1, SENTINEL, np.float32)
    with pytest.raises(bnorm.AliasingError, match="y overlaps residual"):
        layer(x, out=backing[1:].reshape(x.shape), residual=backing[:-1].reshape(x.shape))
    assert (out == SENTINEL).all() and (backing == SENTINEL).all()
    assert layer.num_batches_tracked == 0 and layer.save_mean is None
    assert (layer.running_mean == 0).all() and (layer.running_var == 1).all()


def test_sync_batch_norm_fuses_the_residual_in_eval_only(rng):
    calls = []

    def allgather(block):
        calls.append(1)
        return block[None]

    layer = bnorm.SyncBatchNorm(3, allgather=allgather, fuse_relu=True)
    x = random_input(rng, (4, 3, 5), "NCHW")
    residual = rng.standard_normal(x.shape).astype(np.float32)
    out = np.full_like(x, SENTINEL)

    error = raised(bnorm.UnsupportedError, lambda: layer(x, out=out, residual=residual))
    assert "SyncBatchNorm.forward with a residual in training mode" in error.message
    assert (out == SENTINEL).all() and calls == [] and layer.num_batches_tracked == 0
    layer(x)
    error = raised(bnorm.UnsupportedError,
                   lambda: layer.backward_residual(x, x, y=np.ones_like(x)))
    assert "SyncBatchNorm.backward_residual" in error.message

    layer.eval()
    plain = bnorm.BatchNorm1d(3, fuse_relu=True).eval()
    plain.running_mean[:], plain.running_var[:] = layer.running_mean, layer.running_var
    y = layer(x, residual=residual)
    assert np.array_equal(y, plain(x, residual=residual))
    assert np.array_equal(layer.backward_residual(x, x, y=y)[1], np.where(y > 0, x, 0))
    assert calls == [1]  # only the training forward communicated


# ---------------------------------------------------------------- errors

def raised(cls, call):
    with pytest.raises(cls) as caught:
        call()
    return caught.value


@pytest.fixture
def setup(rng):
    """An NCHW (4, 3, 5) problem with sentinel-filled outputs."""
    x = random_input(rng, (4, 3, 5), "NCHW")
    return types.SimpleNamespace(
        x=x, residual=rng.standard_normal(x.shape).astype(np.float32),
        dy=rng.standard_normal(x.shape).astype(np.float32),
        mean=np.zeros(3, np.float32), var=np.ones(3, np.float32),
        out=np.full_like(x, SENTINEL), out_residual=np.full_like(x, SENTINEL),
        running_mean=np.full(3, SENTINEL, np.float32), running_var=np.full(3, 2, np.float32),
        save_mean=np.full(3, SENTINEL, np.float32), save_invstd=np.full(3, SENTINEL, np.float32))


def untouched(s):
    """Every output of the setup as it was."""
    return ((s.out == SENTINEL).all() and (s.out_residual == SENTINEL).all()
            and (s.running_mean == SENTINEL).all() and (s.running_var == 2).all()
            and (s.save_mean == SENTINEL).all() and (s.save_invstd == SENTINEL).all())


def forward_calls(s, residual, **kwargs):
    """The training and the eval forward with this residual, writing into
    the setup's outputs."""
    return {
        "training": lambda: bnorm.batch_norm(
            s.x, s.running_mean, s.running_var, training=True, residual=residual, out=s.out,
            save_mean=s.save_mean, save_invstd=s.save_invstd, **kwargs),
        "eval": lambda: bnorm.batch_norm(s.x, s.mean, s.var, residual=residual, out=s.out,
                                         **kwargs),
    }


@pytest.mark.parametrize("mode", ["training", "eval"])
@pytest.mark.parametrize("shape", [(4, 3, 6), (4, 3), (4, 3, 5, 1), (2, 3, 10)])
def test_residual_of_another_shape_names_both(setup, mode, shape):
    error = raised(bnorm.InvalidShapeError,
                   forward_calls(setup, np.zeros(shape, np.float32))[mode])
    assert error.message == ("residual has shape %s and dtype float32 but x has shape "
                             "(4, 3, 5) and dtype float32" % (shape,))
    assert untouched(setup)


@pytest.mark.parametrize("mode", ["training", "eval"])
@pytest.mark.parametrize("layout, x_shape, residual_shape, dim", [
    ("NCHW", (4, 3, 5), (4, 2, 5), 1), ("NHWC", (4, 5, 3), (4, 5, 7), 2),
    ("NHWC", (4, 3), (4, 2), 1),
])
def test_residual_with_another_channel_count_names_both_counts(rng, mode, layout, x_shape,
                                                               residual_shape, dim):
    s = types.SimpleNamespace(x=random_input(rng, x_shape, layout),
                              mean=np.zeros(3, np.float32), var=np.ones(3, np.float32),
                              running_mean=np.zeros(3, np.float32),
                              running_var=np.ones(3, np.float32), save_mean=None,
                              save_invstd=None, out=None)
    error = raised(bnorm.FeatureMismatchError, forward_calls(
        s, np.zeros(residual_shape, np.float32), layout=layout)[mode])
    assert error.status == 4
    assert error.message == (
        "residual has shape %s but x has shape %s: residual's channel dimension (dim %d) is "
        "%d but x's is 3; residual must have x's shape and dtype"
        % (residual_shape, x_shape, dim, residual_shape[dim]))


@pytest.mark.parametrize("mode", ["training", "eval"])
def test_layer_channel_mismatch_is_the_librarys_naming_both_numbers(setup, mode):
    # x and residual agree, but not with the layer's 4 channels.
    s = setup
    s.mean, s.var = np.zeros(4, np.float32), np.ones(4, np.float32)
    s.running_mean = np.full(4, SENTINEL, np.float32)
    s.running_var = np.full(4, 2, np.float32)
    s.save_mean, s.save_invstd = np.full(4, SENTINEL, np.float32), np.full(4, SENTINEL,
                                                                           np.float32)
    error = raised(bnorm.FeatureMismatchError, forward_calls(s, s.residual)[mode])
    assert error.message == "input channel dimension (dim 1) is 3 but num_features is 4"
    assert untouched(s)

    layer = bnorm.BatchNorm1d(4).train(mode == "training")
    error = raised(bnorm.FeatureMismatchError, lambda: layer(s.x, residual=s.residual))
    assert error.message == "input channel dimension (dim 1) is 3 but num_features is 4"
    assert layer.num_batches_tracked == 0


def test_backward_channel_mismatch_is_the_librarys(setup):
    s = setup
    four = np.ones(4, np.float32)
    error = raised(bnorm.FeatureMismatchError, lambda: bnorm.batch_norm_backward_residual(
        s.dy, s.x, None, four, four, out=s.out, out_residual=s.out_residual))
    assert error.message == "input channel dimension (dim 1) is 3 but num_features is 4"
    assert untouched(s)


@pytest.mark.parametrize("mode", ["training", "eval"])
def test_residual_of_the_wrong_dtype_needs_copy(setup, mode):
    s = setup
    error = raised(bnorm.InvalidArgumentError,
                   forward_calls(s, s.residual.astype(np.float64))[mode])
    assert error.message == ("residual has dtype float64; bnorm takes float32 (pass copy=True "
                             "to convert)")
    # float16 is a bnorm dtype, but not x's: one call takes one dtype.
    error = raised(bnorm.InvalidArgumentError,
                   forward_calls(s, s.residual.astype(np.float16))[mode])
    assert error.message == ("residual has dtype float16 but x is float32; every tensor of a "
                             "call has x's dtype (pass copy=True to convert)")
    assert untouched(s)

    expected = forward_calls(s, s.residual)[mode]().copy()
    converted = forward_calls(s, s.residual.astype(np.float64), copy=True)[mode]()
    assert converted is s.out and np.array_equal(converted, expected)


@pytest.mark.parametrize("mode", ["training", "eval"])
def test_non_contiguous_or_tensor_residual_needs_copy(setup, mode):
    s = setup
    strided = np.repeat(s.residual, 2, axis=2)[:, :, ::2]
    assert np.array_equal(strided, s.residual) and not strided.flags.c_contiguous
    error = raised(bnorm.InvalidArgumentError, forward_calls(s, strided)[mode])
    assert error.message.startswith("residual is not C-contiguous")
    tensor = torch.from_numpy(s.residual)
    error = raised(bnorm.InvalidArgumentError, forward_calls(s, tensor)[mode])
    assert "residual is a torch.Tensor" in error.message and ".numpy()" in error.message
    assert untouched(s)

    expected = forward_calls(s, s.residual)[mode]().copy()
    for converted in (strided, tensor):
        assert np.array_equal(forward_calls(s, converted, copy=True)[mode](), expected)
    assert np.array_equal(forward_calls(s, tensor.numpy())[mode](), expected)


@pytest.mark.parametrize("mode", ["training", "eval"])
def test_output_overlapping_an_input_is_the_librarys_aliasing_error(setup, mode):
    s = setup
    backing = np.full(s.x.size + 1, SENTINEL, np.float32)
    s.out = backing[1:].reshape(s.x.shape)
    # y partly over the residual: not the same pointer, so not in place.
    error = raised(bnorm.AliasingError, forward_calls(s, backing[:-1].reshape(s.x.shape))[mode])
    assert error.message == ("y overlaps residual (in place is allowed only with the same "
                             "pointer)")
    assert untouched(s) and (backing == SENTINEL).all()

    s.x = backing[:-1].reshape(s.x.shape)  # y partly over x now
    error = raised(bnorm.AliasingError, forward_calls(s, s.residual)[mode])
    assert error.message == "y overlaps x (in place is allowed only with the same pointer)"
    assert untouched(s) and (backing == SENTINEL).all()


def test_training_statistics_overlapping_the_residual_are_aliasing(setup):
    s = setup
    s.save_mean = s.residual[0, 0, :3]  # an output inside an input
    error = raised(bnorm.AliasingError, forward_calls(s, s.residual)["training"])
    assert error.message == "save_mean overlaps residual"


@pytest.mark.parametrize("kwargs, message", [
    (dict(out_residual="x"), "d_residual overlaps x"),
    (dict(out_residual="y"), "d_residual overlaps y"),
    (dict(out="out_residual"), "dx overlaps d_residual"),
    (dict(out_residual="shifted dy"),
     "d_residual overlaps dy (in place is allowed only with the same pointer)"),
])
def test_backward_overlaps_are_the_librarys_aliasing_error(setup, kwargs, message):
    s = setup
    y = np.maximum(s.x, 0)
    backing = np.empty(s.x.size + 1, np.float32)
    backing[1:] = s.dy.ravel()
    dy = backing[1:].reshape(s.x.shape)
    named = {"x": s.x, "y": y, "out_residual": s.out_residual,
             "shifted dy": backing[:-1].reshape(s.x.shape)}
    before = (s.x.copy(), y.copy(), dy.copy())
    error = raised(bnorm.AliasingError, lambda: bnorm.batch_norm_backward_residual(
        dy, s.x, None, np.zeros(3, np.float32), np.ones(3, np.float32), y=y, fuse_relu=True,
        **dict(dict(out=s.out, out_residual=s.out_residual),
               **{k: named[v] for k, v in kwargs.items()})))
    assert error.message == message
    assert all(np.array_equal(a, b) for a, b in zip((s.x, y, dy), before))
    assert untouched(s)


def test_misaligned_residual_is_the_librarys_invalid_argument(setup):
    s = setup
    misaligned = np.zeros(s.x.size + 1, np.float32).view(np.uint8)[1:1 + s.x.nbytes]
    misaligned = misaligned.view(np.float32).reshape(s.x.shape)
    assert not misaligned.flags.aligned
    error = raised(bnorm.InvalidArgumentError, forward_calls(s, misaligned)["eval"])
    assert "residual (" in error.message and "is not aligned to 4 bytes" in error.message
    assert untouched(s)


def test_null_pointers_are_the_librarys_report(setup):
    s = setup
    error = raised(bnorm.NullPointerError, lambda: bnorm.batch_norm(
        s.x, None, None, residual=s.residual, out=s.out))
    assert error.message == "mean is NULL"
    error = raised(bnorm.NullPointerError, lambda: bnorm.batch_norm_backward_residual(
        s.dy, s.x, None, s.mean, s.var, fuse_relu=True, out=s.out, out_residual=s.out_residual))
    assert error.message == "y is NULL but BNORM_FLAG_FUSE_RELU is set"
    assert untouched(s)


def test_backward_output_checks(setup):
    s = setup
    call = lambda **kw: bnorm.batch_norm_backward_residual(  # noqa: E731
        s.dy, s.x, None, s.mean, s.var, **kw)
    error = raised(bnorm.InvalidShapeError, lambda: call(out_residual=np.empty((4, 3, 4),
                                                                               np.float32)))
    assert error.message.startswith("out_residual has shape (4, 3, 4)")
    readonly = np.empty_like(s.x)
    readonly.flags.writeable = False
    error = raised(bnorm.InvalidArgumentError, lambda: call(out_residual=readonly))
    assert error.message == "out_residual is read-only; an output must be writable"
    error = raised(bnorm.InvalidShapeError, lambda: call(y=s.x[:, :2].copy(), fuse_relu=True))
    assert error.message.startswith("y has shape (4, 2, 5)")


def test_eval_forward_does_not_take_save_arrays_with_a_residual_either(setup):
    s = setup
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        s.x, s.mean, s.var, residual=s.residual, save_mean=s.save_mean))
    assert "written by a training forward only" in error.message
    assert untouched(s)


# ------------------------------------------------- an older (1.1) library

class OlderLibrary:
    """A libbnorm of an older 1.x as the binding sees it: reports that
    version and lacks the symbols added after it."""

    def __init__(self, real, version, text):
        self._real = real
        self._version = version
        self.bnorm_version = lambda: version
        self.bnorm_version_string = lambda: text

    def __getattr__(self, name):
        since = _lib._SINCE.get(name)
        if since is not None and since[0] > self._version:
            raise AttributeError("undefined symbol: " + name)
        return getattr(self._real, name)


RESIDUAL_CALLS = {
    "bnorm_forward_training_residual": lambda s: bnorm.batch_norm(
        s.x, s.running_mean, s.running_var, training=True, residual=s.residual, out=s.out,
        save_mean=s.save_mean, save_invstd=s.save_invstd),
    "bnorm_forward_inference_residual": lambda s: bnorm.batch_norm(
        s.x, s.mean, s.var, residual=s.residual, out=s.out),
    "bnorm_backward_residual": lambda s: bnorm.batch_norm_backward_residual(
        s.dy, s.x, None, s.mean, s.var, out=s.out, out_residual=s.out_residual),
}


def test_a_1_1_library_serves_everything_else_and_names_its_version(setup, monkeypatch):
    s = setup
    fake = OlderLibrary(_lib.lib(), 10100, b"1.1.0")
    monkeypatch.setattr(_lib, "_loaded", (fake, "/opt/old/libbnorm.so.1"))
    assert bnorm.version() == (1, 1, 0)
    layer = bnorm.BatchNorm1d(3)
    calls = dict(RESIDUAL_CALLS)
    calls["layer forward"] = lambda s: layer(s.x, residual=s.residual, out=s.out)
    calls["layer backward_residual"] = lambda s: layer.backward_residual(
        s.dy, s.x, out=s.out, out_residual=s.out_residual)
    layer.save_mean, layer.save_invstd = s.mean, s.var  # as after a forward

    for name, call in calls.items():
        with pytest.raises(bnorm.LibraryVersionError) as caught:
            call(s)
        fn_name = {"layer forward": "bnorm_forward_training_residual",
                   "layer backward_residual": "bnorm_backward_residual"}.get(name, name)
        assert str(caught.value).startswith(
            fn_name + " needs libbnorm >= 1.2.0, but /opt/old/libbnorm.so.1 reports version "
            "1.1.0 (bnorm_version() = 10100)"), str(caught.value)
        assert untouched(s)
    assert layer.num_batches_tracked == 0 and (layer.running_mean == 0).all()

    # Without a residual the 1.0 calls serve, as before.
    y = bnorm.batch_norm(s.x, s.mean, s.var, residual=None)
    assert y.shape == s.x.shape
    assert bnorm.batch_norm_backward(s.dy, s.x, None, s.mean, s.var)[0].shape == s.x.shape
    layer.save_mean = None
    assert layer(s.x).shape == s.x.shape and layer.num_batches_tracked == 1


def test_a_library_claiming_1_2_without_the_symbols_is_reported(setup, monkeypatch):
    fake = OlderLibrary(_lib.lib(), 10100, b"1.2.0")
    fake.bnorm_version = lambda: 10200
    monkeypatch.setattr(_lib, "_loaded", (fake, "/opt/odd/libbnorm.so.1"))
    for name, call in RESIDUAL_CALLS.items():
        with pytest.raises(bnorm.LibraryVersionError,
                           match="reports version 1.2.0 but does not export " + name):
            call(setup)
        assert untouched(setup)


# ----------------------------------------------------------- the README

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_block(marker):
    """The ```python block following marker in the README."""
    with open(README) as f:
        text = f.read()
    start = text.index("```python\n", text.index(marker)) + len("```python\n")
    return text[start:text.index("```", start)]


def test_readme_residual_example_runs_and_matches_torch():
    program = {"__name__": "readme_residual"}
    exec(compile(readme_block("<!-- residual-example"), README, "exec"), program)
    x, skip, dy = program["x"], program["skip"], program["dy"]
    bn = program["bn"]
    assert bn.num_batches_tracked == 1
    assert np.array_equal(program["d_skip"], np.where(program["y"] > 0, dy, 0))

    theirs = torch.nn.BatchNorm2d(x.shape[1]).double()
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    st = torch.from_numpy(skip.astype(np.float64)).requires_grad_(True)
    yt = torch.relu(theirs(xt) + st)
    yt.backward(torch.from_numpy(dy.astype(np.float64)))
    within("README y", program["y"], yt.detach().numpy(), Y_TOL)
    within("README dx", program["dx"], xt.grad.numpy(), DX_TOL)
    assert np.array_equal(program["d_skip"], st.grad.numpy())
    within("README running_var", bn.running_var, theirs.running_var.numpy(), STATS_TOL)
