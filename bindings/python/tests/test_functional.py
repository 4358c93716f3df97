"""bnorm.batch_norm against torch.nn.functional.batch_norm: both layouts,
ranks 2 to 5, odd channel counts, training and inference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnorm
from conftest import (assert_close, case_id, channel_axis, numpy_from_torch, random_cases,
                      random_input, random_vector, torch_view)

CASES = random_cases(seed=2024)


def layer_vectors(rng, c):
    return dict(weight=random_vector(rng, c, 0.5, 1.5), bias=random_vector(rng, c, -1, 1),
                running_mean=random_vector(rng, c, -1, 1),
                running_var=random_vector(rng, c, 0.5, 2.0))


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("fuse_relu", [False, True], ids=["plain", "relu"])
def test_inference_matches_torch(rng, case, fuse_relu):
    layout, shape = case
    x = random_input(rng, shape, layout)
    v = layer_vectors(rng, shape[channel_axis(layout, len(shape))])

    y = bnorm.batch_norm(x, v["running_mean"], v["running_var"], v["weight"], v["bias"],
                         training=False, layout=layout, fuse_relu=fuse_relu)

    expected = F.batch_norm(torch_view(x, layout), torch.from_numpy(v["running_mean"]),
                            torch.from_numpy(v["running_var"]), torch.from_numpy(v["weight"]),
                            torch.from_numpy(v["bias"]), training=False)
    if fuse_relu:
        expected = F.relu(expected)
    assert y.shape == x.shape and y.dtype == np.float32
    assert_close(y, numpy_from_torch(expected, layout))


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("fuse_relu", [False, True], ids=["plain", "relu"])
def test_training_matches_torch_and_updates_running_stats(rng, case, fuse_relu):
    layout, shape = case
    x = random_input(rng, shape, layout)
    v = layer_vectors(rng, shape[channel_axis(layout, len(shape))])
    c = v["weight"].size
    torch_mean = torch.from_numpy(v["running_mean"].copy())
    torch_var = torch.from_numpy(v["running_var"].copy())
    save_mean = np.empty(c, np.float32)
    save_invstd = np.empty(c, np.float32)

    y = bnorm.batch_norm(x, v["running_mean"], v["running_var"], v["weight"], v["bias"],
                         training=True, momentum=0.3, layout=layout, fuse_relu=fuse_relu,
                         save_mean=save_mean, save_invstd=save_invstd)

    expected, ref_save_mean, ref_save_invstd = torch.native_batch_norm(
        torch_view(x, layout), torch.from_numpy(v["weight"]), torch.from_numpy(v["bias"]),
        torch_mean, torch_var, True, 0.3, 1e-5)
    if fuse_relu:
        expected = F.relu(expected)
    assert_close(y, numpy_from_torch(expected, layout))
    # Updated in place, as torch updates its buffers.
    assert_close(v["running_mean"], torch_mean.numpy())
    assert_close(v["running_var"], torch_var.numpy())
    assert_close(save_mean, ref_save_mean.numpy())
    assert_close(save_invstd, ref_save_invstd.numpy())


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_training_without_running_stats_uses_batch_stats_only(rng, layout):
    # torch: training=True with running stats None normalizes and tracks nothing.
    shape = (4, 5, 6, 17) if layout == "NHWC" else (4, 17, 5, 6)
    x = random_input(rng, shape, layout)

    y = bnorm.batch_norm(x, None, None, training=True, layout=layout)

    expected = F.batch_norm(torch_view(x, layout), None, None, training=True)
    assert_close(y, numpy_from_torch(expected, layout))


def test_weight_or_bias_alone_applies_as_in_torch(rng):
    x = random_input(rng, (6, 3, 4), "NCHW")
    mean, var = random_vector(rng, 3, -1, 1), random_vector(rng, 3, 0.5, 2)
    scale, shift = random_vector(rng, 3, 0.5, 2), random_vector(rng, 3, -1, 1)

    only_weight = bnorm.batch_norm(x, mean, var, weight=scale)
    only_bias = bnorm.batch_norm(x, mean, var, bias=shift)

    t = [torch.from_numpy(a) for a in (x, mean, var, scale, shift)]
    assert_close(only_weight, F.batch_norm(t[0], t[1], t[2], weight=t[3]).numpy())
    assert_close(only_bias, F.batch_norm(t[0], t[1], t[2], bias=t[4]).numpy())


def test_momentum_zero_and_one_keep_or_replace_running_stats(rng):
    x = random_input(rng, (8, 3, 5), "NCHW")
    kept_mean, kept_var = np.zeros(3, np.float32), np.ones(3, np.float32)
    new_mean, new_var = np.zeros(3, np.float32), np.ones(3, np.float32)

    bnorm.batch_norm(x, kept_mean, kept_var, training=True, momentum=0.0)
    bnorm.batch_norm(x, new_mean, new_var, training=True, momentum=1.0)

    assert kept_mean.tolist() == [0, 0, 0] and kept_var.tolist() == [1, 1, 1]
    per_channel = x.transpose(1, 0, 2).reshape(3, -1).astype(np.float64)
    assert_close(new_mean, per_channel.mean(axis=1))
    assert_close(new_var, per_channel.var(axis=1, ddof=1))  # unbiased, as torch


def test_num_threads_does_not_change_results(rng):
    # The library promises bit-identical results for any thread count.
    x = random_input(rng, (16, 7, 9, 9), "NCHW")
    one = bnorm.batch_norm(x, None, None, training=True, num_threads=1)
    two = bnorm.batch_norm(x, None, None, training=True, num_threads=2)
    assert np.array_equal(one, two)
