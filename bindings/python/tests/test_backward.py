"""bnorm.batch_norm_backward against PyTorch's autograd: training-mode
(batch statistics) and frozen (eval / global statistics) gradients."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnorm
from conftest import (assert_close, case_id, channel_axis, numpy_from_torch, random_cases,
                      random_input, random_vector, torch_view)

CASES = random_cases(seed=7)


def autograd_reference(x, dy, weight, bias, running_mean, running_var, training, fuse_relu,
                       layout):
    """(dx, dweight, dbias) from autograd through F.batch_norm (+ ReLU)."""
    xt = torch_view(x, layout).clone().requires_grad_(True)
    wt = torch.from_numpy(weight).clone().requires_grad_(True)
    bt = torch.from_numpy(bias).clone().requires_grad_(True)
    mean = torch.from_numpy(running_mean.copy())
    var = torch.from_numpy(running_var.copy())
    y = F.batch_norm(xt, mean, var, wt, bt, training=training)
    if fuse_relu:
        y = F.relu(y)
    y.backward(torch_view(dy, layout))
    return numpy_from_torch(xt.grad, layout), wt.grad.numpy(), bt.grad.numpy()


def gradient_tolerance(count):
    # dweight/dbias are sums over `count` float32 products.
    return 1e-5 * max(1.0, np.sqrt(count))


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("fuse_relu", [False, True], ids=["plain", "relu"])
def test_training_backward_matches_autograd(rng, case, fuse_relu):
    layout, shape = case
    c = shape[channel_axis(layout, len(shape))]
    x = random_input(rng, shape, layout)
    dy = rng.standard_normal(shape).astype(np.float32)
    weight, bias = random_vector(rng, c, 0.5, 1.5), random_vector(rng, c, -1, 1)
    save_mean, save_invstd = np.empty(c, np.float32), np.empty(c, np.float32)
    y = bnorm.batch_norm(x, None, None, weight, bias, training=True, fuse_relu=fuse_relu,
                         layout=layout, save_mean=save_mean, save_invstd=save_invstd)

    dx, dweight, dbias = bnorm.batch_norm_backward(
        dy, x, weight, save_mean, save_invstd, y=y, fuse_relu=fuse_relu, layout=layout)

    ref = autograd_reference(x, dy, weight, bias, np.zeros(c, np.float32),
                             np.ones(c, np.float32), True, fuse_relu, layout)
    atol = gradient_tolerance(x.size // c)
    assert_close(dx, ref[0])
    assert_close(dweight, ref[1], atol=atol)
    assert_close(dbias, ref[2], atol=atol)


@pytest.mark.parametrize("case", CASES[::3], ids=case_id)
@pytest.mark.parametrize("fuse_relu", [False, True], ids=["plain", "relu"])
def test_frozen_backward_matches_autograd_in_eval_mode(rng, case, fuse_relu):
    layout, shape = case
    c = shape[channel_axis(layout, len(shape))]
    x = random_input(rng, shape, layout)
    dy = rng.standard_normal(shape).astype(np.float32)
    weight, bias = random_vector(rng, c, 0.5, 1.5), random_vector(rng, c, -1, 1)
    running_mean, running_var = random_vector(rng, c, -1, 1), random_vector(rng, c, 0.5, 2)
    y = bnorm.batch_norm(x, running_mean, running_var, weight, bias, training=False,
                         fuse_relu=fuse_relu, layout=layout)

    dx, dweight, dbias = bnorm.batch_norm_backward(
        dy, x, weight, training=False, running_mean=running_mean, running_var=running_var,
        y=y, fuse_relu=fuse_relu, layout=layout)

    ref = autograd_reference(x, dy, weight, bias, running_mean, running_var, False, fuse_relu,
                             layout)
    atol = gradient_tolerance(x.size // c)
    assert_close(dx, ref[0])
    assert_close(dweight, ref[1], atol=atol)
    assert_close(dbias, ref[2], atol=atol)


def test_frozen_stats_can_be_passed_as_mean_and_invstd(rng):
    # The C API's own form: running mean and 1/sqrt(running_var + eps).
    x = random_input(rng, (4, 3, 5), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)
    mean, var = random_vector(rng, 3, -1, 1), random_vector(rng, 3, 0.5, 2)

    from_running = bnorm.batch_norm_backward(dy, x, training=False, running_mean=mean,
                                             running_var=var)
    from_invstd = bnorm.batch_norm_backward(dy, x, save_mean=mean,
                                            save_invstd=bnorm.invstd(var), training=False)

    for a, b in zip(from_running, from_invstd):
        assert np.array_equal(a, b)
    # Frozen statistics: dx is dy scaled per channel, nothing more.
    assert_close(from_running[0], dy * bnorm.invstd(var)[None, :, None])


def test_output_mask_skips_gradients_and_dx_can_overwrite_dy(rng):
    x = random_input(rng, (6, 4, 3), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)
    save_mean, save_invstd = np.empty(4, np.float32), np.empty(4, np.float32)
    bnorm.batch_norm(x, None, None, training=True, save_mean=save_mean, save_invstd=save_invstd)
    expected_dx, _, _ = bnorm.batch_norm_backward(dy, x, None, save_mean, save_invstd)

    dx, dweight, dbias = bnorm.batch_norm_backward(dy, x, None, save_mean, save_invstd, out=dy,
                                                   output_mask=(True, False, False))

    assert dx is dy and dweight is None and dbias is None
    assert np.array_equal(dy, expected_dx)
