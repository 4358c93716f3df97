"""bnorm.BatchNorm layers stepped side by side with torch.nn.BatchNorm*d."""

import numpy as np
import pytest
import torch

import bnorm
from conftest import assert_close, numpy_from_torch, random_input, torch_view

LAYERS = [
    (bnorm.BatchNorm1d, torch.nn.BatchNorm1d, (6, 5)),
    (bnorm.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 7)),
    (bnorm.BatchNorm2d, torch.nn.BatchNorm2d, (3, 17, 4, 5)),
    (bnorm.BatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 3, 4, 2)),
]


def nhwc_shape(shape):
    return (shape[0],) + shape[2:] + (shape[1],)


def assert_same_state(ours, theirs):
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked)
    assert_close(ours.running_mean, theirs.running_mean.numpy())
    assert_close(ours.running_var, theirs.running_var.numpy())


@pytest.mark.parametrize("ours_cls, torch_cls, shape", LAYERS,
                         ids=[str(s) for _, _, s in LAYERS])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum0.1", "cumulative"])
def test_training_steps_then_eval_follow_torch(rng, ours_cls, torch_cls, shape, layout,
                                                momentum):
    c = shape[1]
    ours = ours_cls(c, momentum=momentum, layout=layout)
    theirs = torch_cls(c, momentum=momentum)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    ours.weight[:] = theirs.weight.detach().numpy()
    ours.bias[:] = theirs.bias.detach().numpy()
    data_shape = nhwc_shape(shape) if layout == "NHWC" else shape

    for _ in range(3):
        x = random_input(rng, data_shape, layout)
        y = ours(x)
        expected = theirs(torch_view(x, layout))
        assert_close(y, numpy_from_torch(expected, layout))
        assert_same_state(ours, theirs)

    ours.eval()
    theirs.eval()
    x = random_input(rng, data_shape, layout)
    assert_close(ours(x), numpy_from_torch(theirs(torch_view(x, layout)), layout))
    assert ours.num_batches_tracked == 3  # eval leaves the statistics alone


def test_cumulative_average_is_the_plain_mean_of_batch_means(rng):
    # momentum=None: after k batches the running mean is their average.
    layer = bnorm.BatchNorm2d(3, momentum=None)
    batches = [random_input(rng, (4, 3, 2, 2), "NCHW") for _ in range(4)]
    for x in batches:
        layer(x)
    batch_means = [x.mean(axis=(0, 2, 3), dtype=np.float64) for x in batches]
    assert_close(layer.running_mean, np.mean(batch_means, axis=0))


def test_without_tracking_eval_still_uses_batch_stats(rng):
    layer = bnorm.BatchNorm1d(5, affine=False, track_running_stats=False).eval()
    theirs = torch.nn.BatchNorm1d(5, affine=False, track_running_stats=False).eval()
    x = random_input(rng, (8, 5), "NCHW")

    assert_close(layer(x), theirs(torch.from_numpy(x)).numpy())
    assert layer.running_mean is None and layer.num_batches_tracked is None
    assert layer.save_mean is not None  # batch statistics, kept for backward


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("fuse_relu", [False, True], ids=["plain", "relu"])
def test_backward_uses_the_statistics_of_the_last_forward(rng, training, fuse_relu):
    layer = bnorm.BatchNorm2d(3, fuse_relu=fuse_relu, layout="NHWC").train(training)
    theirs = torch.nn.BatchNorm2d(3).train(training)
    with torch.no_grad():  # eval needs non-trivial running statistics
        theirs.running_mean.uniform_(-1, 1)
        theirs.running_var.uniform_(0.5, 2)
    layer.running_mean[:] = theirs.running_mean.numpy()
    layer.running_var[:] = theirs.running_var.numpy()
    x = random_input(rng, (4, 5, 5, 3), "NHWC")
    dy = rng.standard_normal(x.shape).astype(np.float32)

    y = layer(x)
    dx, dweight, dbias = layer.backward(dy, x, y=y)

    xt = torch_view(x, "NHWC").clone().requires_grad_(True)
    yt = theirs(xt)
    if fuse_relu:
        yt = torch.relu(yt)
    yt.backward(torch_view(dy, "NHWC"))
    assert_close(y, numpy_from_torch(yt, "NHWC"))
    assert_close(dx, numpy_from_torch(xt.grad, "NHWC"))
    assert_close(dweight, theirs.weight.grad.numpy(), atol=1e-4)
    assert_close(dbias, theirs.bias.grad.numpy(), atol=1e-4)


def test_rank_is_checked_per_layer_kind(rng):
    with pytest.raises(bnorm.InvalidShapeError, match="BatchNorm2d expects an input of rank 4"):
        bnorm.BatchNorm2d(3)(random_input(rng, (4, 3, 5), "NCHW"))


def test_failed_forward_changes_no_state(rng):
    layer = bnorm.BatchNorm2d(8)
    with pytest.raises(bnorm.FeatureMismatchError):
        layer(random_input(rng, (2, 4, 3, 3), "NCHW"))
    assert layer.num_batches_tracked == 0 and layer.save_mean is None
    assert (layer.running_mean == 0).all() and (layer.running_var == 1).all()
