"""Shared helpers: PyTorch as the reference, NumPy arrays for bnorm.

The tests import bnorm from this checkout (test.sh sets PYTHONPATH); the
library comes from $BNORM_LIBRARY or the other places bnorm searches.
"""

import zlib

import numpy as np
import pytest
import torch

# Two cores shared with other jobs: one torch thread is plenty for these sizes.
torch.set_num_threads(1)


def channel_axis(layout, rank):
    return rank - 1 if layout == "NHWC" else 1


def torch_view(a, layout):
    """A torch tensor over the NumPy array's memory, in PyTorch's logical
    (N, C, ...) order: for NHWC this is a channels-last view, the way PyTorch
    holds channels_last data, with no copy."""
    t = torch.from_numpy(a)
    if layout == "NHWC" and a.ndim > 2:
        t = t.permute(0, a.ndim - 1, *range(1, a.ndim - 1))
    return t


def numpy_from_torch(t, layout):
    """Back from PyTorch's (N, C, ...) order to the array layout bnorm used."""
    if layout == "NHWC" and t.dim() > 2:
        t = t.permute(0, *range(2, t.dim()), 1)
    return t.detach().contiguous().numpy()


def random_input(rng, shape, layout):
    """float32 data with a different mean and spread in every channel, so a
    wrong channel mapping or statistic shows up as a large error."""
    c = shape[channel_axis(layout, len(shape))]
    bshape = [1] * len(shape)
    bshape[channel_axis(layout, len(shape))] = c
    center = rng.uniform(-3, 3, c).reshape(bshape)
    spread = rng.uniform(0.5, 2.0, c).reshape(bshape)
    return (center + spread * rng.standard_normal(shape)).astype(np.float32)


def random_vector(rng, c, low, high):
    return rng.uniform(low, high, c).astype(np.float32)


def assert_close(actual, expected, rtol=1e-4, atol=1e-5):
    """float32 agreement; atol scales with the largest expected magnitude, as
    float32 rounding does."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


@pytest.fixture
def rng(request):
    # Seeded per test, so a failure reproduces with the same data.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def random_cases(seed, channel_counts=(1, 3, 17)):
    """(layout, shape) for ranks 2 to 5 in both layouts, with random batch and
    spatial sizes; shape is in memory order, as bnorm takes it."""
    gen = np.random.default_rng(seed)
    cases = []
    for rank in (2, 3, 4, 5):
        for layout in ("NCHW", "NHWC"):
            for c in channel_counts:
                n = int(gen.integers(2, 6))
                spatial = [int(d) for d in gen.integers(1, 8 if rank < 5 else 5, rank - 2)]
                dims = [n, c] + spatial if layout == "NCHW" else [n] + spatial + [c]
                cases.append((layout, tuple(dims)))
    return cases


def case_id(case):
    layout, shape = case
    return "%s-%s" % (layout, "x".join(map(str, shape)))
