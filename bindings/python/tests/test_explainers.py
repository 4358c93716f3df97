"""The three C explainer examples (examples/*.c), in Python."""

import numpy as np
import pytest

import bnorm

SENTINEL = np.float32(-12345.0)


def lcg_input(shape, seed):
    """Deterministic data with per-channel centre and spread, as the C
    examples make it."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    center = (np.arange(c) % 7 - 3.0).reshape(1, c, *([1] * (len(shape) - 2)))
    spread = (0.5 + 0.5 * (np.arange(c) % 5)).reshape(center.shape)
    return (center + spread * rng.uniform(-1, 1, shape)).astype(np.float32)


def test_correct_use():
    # correct_use.c: one BatchNorm2d(64) layer, a training step, then inference.
    layer = bnorm.BatchNorm2d(64)
    x = lcg_input((32, 64, 28, 28), seed=12345)

    y = layer(x)

    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    # Normalized per channel: mean 0, variance var / (var + eps), a hair under 1.
    assert np.abs(y.mean(axis=(0, 2, 3), dtype=np.float64)).max() < 1e-3
    assert np.abs(y.var(axis=(0, 2, 3), dtype=np.float64) - 1).max() < 1e-3
    assert np.allclose(layer.save_mean, mean, rtol=1e-5, atol=1e-5)
    assert np.allclose(layer.save_invstd, 1 / np.sqrt(var + 1e-5), rtol=1e-5)
    count = x.size // 64
    assert np.allclose(layer.running_mean, 0.1 * mean, atol=1e-5)
    assert np.allclose(layer.running_var, 0.9 + 0.1 * var * count / (count - 1), atol=1e-5)

    layer.eval()
    y = layer(x)

    expected = ((x64 - layer.running_mean[None, :, None, None])
                / np.sqrt(layer.running_var[None, :, None, None] + 1e-5))
    assert np.abs(y - expected).max() <= 1e-4 * np.abs(expected).max()


def test_feature_mismatch():
    # feature_mismatch.c: a layer built for 128 channels meets a 64-channel
    # input. The library refuses, names both numbers and writes nothing.
    layer = bnorm.BatchNorm2d(128)
    x = (np.arange(32 * 64 * 28 * 28) % 17).astype(np.float32).reshape(32, 64, 28, 28)
    y = np.full_like(x, SENTINEL)
    layer.running_mean[:] = SENTINEL
    layer.running_var[:] = SENTINEL

    with pytest.raises(bnorm.FeatureMismatchError) as caught:
        layer(x, out=y)

    error = caught.value
    assert error.status == 4 and error.status_name == "BNORM_ERR_FEATURE_MISMATCH"
    assert "64" in error.message and "128" in error.message
    # The library's own sentence, as documented in bnorm.h.
    assert "input channel dimension (dim 1) is 64 but num_features is 128" in str(error)
    assert (y == SENTINEL).all()
    assert (layer.running_mean == SENTINEL).all() and (layer.running_var == SENTINEL).all()
    assert layer.num_batches_tracked == 0


def test_feature_mismatch_in_the_functional_form():
    # Here the layer is its running statistics: 128 of them, for 64 channels.
    x = np.ones((2, 64, 3, 3), np.float32)
    with pytest.raises(bnorm.FeatureMismatchError,
                       match=r"is 64 but num_features is 128"):
        bnorm.batch_norm(x, np.zeros(128, np.float32), np.ones(128, np.float32))


SHAPES = [
    ("NCHW", (8, 3, 17, 17)),   # BatchNorm2d
    ("NHWC", (8, 17, 17, 3)),   # the same, channels last
    ("NCHW", (16, 10)),         # BatchNorm1d on features
    ("NCHW", (4, 6, 50)),       # BatchNorm1d on sequences
    ("NHWC", (2, 3, 4, 5, 7)),  # BatchNorm3d, channels last
    ("NCHW", (1, 5, 1, 1)),     # one value per channel
]


@pytest.mark.parametrize("layout, shape", SHAPES, ids=[f"{l}-{s}" for l, s in SHAPES])
def test_runtime_channels(rng, layout, shape):
    # runtime_channels.c: num_features taken from the tensor, so the layer and
    # the data agree by construction, whatever the rank and layout.
    x = (3.0 + 2.0 * (rng.random(shape) - 0.5)).astype(np.float32)
    channels = x.shape[-1 if layout == "NHWC" else 1]
    layer = bnorm.BatchNorm(channels, layout=layout)
    axes = tuple(i for i in range(x.ndim) if i != (x.ndim - 1 if layout == "NHWC" else 1))
    per_channel = x.size // channels

    if per_channel < 2:
        # Batch statistics need two values per channel.
        with pytest.raises(bnorm.TooFewValuesError):
            layer(x)
    else:
        y = layer(x)
        x_var = x.var(axis=axes, dtype=np.float64)
        assert np.abs(y.mean(axis=axes, dtype=np.float64)).max() <= 1e-3
        assert np.abs(y.var(axis=axes, dtype=np.float64) - x_var / (x_var + 1e-5)).max() <= 1e-3

    y = layer.eval()(x)
    bshape = [1] * x.ndim
    bshape[x.ndim - 1 if layout == "NHWC" else 1] = channels
    expected = ((x - layer.running_mean.reshape(bshape).astype(np.float64))
                / np.sqrt(layer.running_var.reshape(bshape).astype(np.float64) + 1e-5))
    assert np.abs(y - expected).max() <= 1e-4 * max(np.abs(expected).max(), 1.0)
