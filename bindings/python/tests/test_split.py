"""Split phases (libbnorm 1.2), the building blocks of SyncBatchNorm.

One batch is split into unequal parts along N, as data-parallel processes
would hold it (one part is always a single sample, which for 2-D input is one
value per channel). Every part runs local_stats -> merge_stats ->
forward_normalize and backward_reduce -> backward_elementwise; the allgather
is simulated by stacking the parts' (C, 3) blocks in rank order. The results
are compared with PyTorch on the whole batch, in float64 so that the
reference's own rounding is negligible and the tolerances below measure
bnorm's float32 results alone.
"""

import os
import subprocess
import sys
import textwrap
import threading
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnorm
from bnorm import _lib
from conftest import channel_axis, numpy_from_torch, random_input, random_vector, torch_view

SENTINEL = -12345.0

# Largest error seen per quantity, relative to the quantity's scale (see
# within()); kept for reporting, e.g. after pytest.main() in one interpreter.
OBSERVED = {}


def within(name, actual, expected, tol):
    """max |actual - expected| <= tol * max(1, max |expected|): float32
    rounding is relative to the magnitudes involved, and values near zero
    (from cancellation) are only as exact as the largest value's scale."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    err = float(np.abs(actual - expected).max()) / scale if expected.size else 0.0
    OBSERVED[name] = max(OBSERVED.get(name, 0.0), err)
    assert err <= tol, "%s: error %.3g (relative to scale %.3g) exceeds %.3g" % (
        name, err, scale, tol)


# Tolerances, relative to max(1, max |reference|), the reference in float64.
# The library's sums are float over blocks of at most 16 terms, then double
# (SUM_BOUND below: worst case 2^-19 of the sum of the terms' magnitudes);
# results are rounded to float32 (2^-24). Observed errors are 10x to 100x
# below these worst-case bounds (about 2e-7 for y, 4e-7 for dx, 6e-7 for
# dweight; OBSERVED collects them).
# y = (x - mean) * invstd * gamma + beta in float32. Worst case: mean off by
#   2^-18 max|x| and invstd by 2^-20 relative, times invstd * |gamma| <= 4
#   and |x - mean| * invstd <= ~5 for this data, against |y| up to ~10: a few
#   1e-6 of the scale, plus a few float32 roundings. 1e-5 covers it.
Y_TOL = 1e-5
# Running statistics: (1 - m) * running + m * batch in double, rounded once
#   to float32 (6e-8); the batch variance carries the sums' 2^-19 relative
#   error times m <= 0.2 (4e-7). 1e-6 covers both.
RUNNING_TOL = 1e-6
# dx: dy, x and y mapped per channel with float32 coefficients from the
#   double grad sums and the float32 mean/invstd: the same error sources as
#   y, on terms |dy| * |gamma| * invstd up to ~10 against |dx| of that scale.
DX_TOL = 1e-5


def grad_tol(count):
    """dweight/dbias: each part's sum (of `count` values in all) is off by at
    most 2^-19 of the sum of its terms' magnitudes, about count * E|term|,
    while the total is about sqrt(count) * E|term| for random dy: relative
    to it, 2^-19 * sqrt(count); the float32 rounding of each part's value and
    of their sum over <= 4 parts adds a few 1e-7. At least 1e-5."""
    return max(1e-5, 2.0 ** -19 * np.sqrt(count))


def split_cases(seed, channel_counts=(1, 3, 17, 67)):
    """(layout, shape, sizes) for ranks 2 to 5, both layouts: shape in
    memory order, sizes the parts' batch sizes, unequal, in shuffled order,
    one of them a single sample."""
    gen = np.random.default_rng(seed)
    cases = []
    for rank in (2, 3, 4, 5):
        for layout in ("NCHW", "NHWC"):
            for c in channel_counts:
                n = int(gen.integers(6, 12))
                # 2, 3 or 4 parts of unequal sizes, one a single sample.
                sizes = [[1, n - 1], [1, 2, n - 3], [1, 2, 3, n - 6]][int(gen.integers(3))]
                if len(sizes) == 4 and n < 10:
                    sizes = [1, 2, n - 3]
                sizes = [int(s) for s in gen.permutation(sizes)]
                spatial = [int(d) for d in gen.integers(1, 6 if rank < 5 else 4, rank - 2)]
                dims = [n, c] + spatial if layout == "NCHW" else [n] + spatial + [c]
                cases.append((layout, tuple(dims), tuple(sizes)))
    # Spatial size 1: the single sample has one value per channel at rank 4
    # too, and another part two.
    cases.append(("NCHW", (6, 5, 1, 1), (2, 1, 3)))
    cases.append(("NHWC", (6, 1, 1, 5), (3, 1, 2)))
    return cases


def case_id(case):
    layout, shape, sizes = case
    return "%s-%s-parts%s" % (layout, "x".join(map(str, shape)), "+".join(map(str, sizes)))


CASES = split_cases(seed=1201)


def parts_of(a, sizes):
    """Views of a's samples, part after part (each C-contiguous)."""
    return np.split(a, np.cumsum(sizes)[:-1])


def layer_vectors(rng, c):
    return dict(weight=random_vector(rng, c, -2, 2), bias=random_vector(rng, c, -1, 1),
                running_mean=random_vector(rng, c, -1, 1),
                running_var=random_vector(rng, c, 0.5, 2))


def torch_reference(x, dy, v, affine, relu, track, layout, momentum, eps):
    """Whole-batch F.batch_norm(training=True) (+ ReLU) and autograd, in
    float64: (y, running_mean, running_var, dx, dweight, dbias), arrays in
    bnorm's memory order. Without affine, weight 1 and bias 0 compute the
    same y, and their gradients are the ones bnorm reports then."""
    c = v["weight"].shape[0]
    xt = torch_view(x.astype(np.float64), layout).requires_grad_(True)
    wt = torch.from_numpy(v["weight"].astype(np.float64) if affine else np.ones(c))
    bt = torch.from_numpy(v["bias"].astype(np.float64) if affine else np.zeros(c))
    wt.requires_grad_(True)
    bt.requires_grad_(True)
    rm = torch.from_numpy(v["running_mean"].astype(np.float64)) if track else None
    rv = torch.from_numpy(v["running_var"].astype(np.float64)) if track else None
    y = F.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=momentum, eps=eps)
    if relu:
        y = F.relu(y)
    y.backward(torch_view(dy.astype(np.float64), layout))
    return (numpy_from_torch(y, layout), None if rm is None else rm.numpy(),
            None if rv is None else rv.numpy(), numpy_from_torch(xt.grad, layout),
            wt.grad.numpy(), bt.grad.numpy())


class Split:
    """Runs the split phases over parts, each part as one process would,
    with the exchanges simulated by stacking the blocks in rank order."""

    def __init__(self, layout, affine, relu, v, track, momentum=0.1, eps=1e-5):
        self.layout, self.relu, self.momentum, self.eps = layout, relu, momentum, eps
        self.weight = v["weight"] if affine else None
        self.bias = v["bias"] if affine else None
        # Every process merges the same blocks into bit-identical running
        # statistics (test_merging_the_same_blocks_twice_...), so one merge
        # stands for all of them.
        self.running = ((v["running_mean"].copy(), v["running_var"].copy()) if track
                        else (None, None))

    def forward(self, parts, outs=None):
        self.stats = [bnorm.local_stats(p, self.layout) for p in parts]
        self.gathered = np.stack(self.stats)  # what an allgather fills: (k, C, 3)
        self.mean, self.invstd = bnorm.merge_stats(self.gathered, *self.running,
                                                   momentum=self.momentum, eps=self.eps)
        outs = outs or [None] * len(parts)
        return [bnorm.forward_normalize(p, self.mean, self.invstd, self.weight, self.bias,
                                        self.layout, self.relu, out=o)
                for p, o in zip(parts, outs)]

    def backward(self, dys, parts, ys, outs=None):
        reduced = [bnorm.backward_reduce(d, p, self.mean, self.invstd, y=y, fuse_relu=self.relu,
                                         layout=self.layout)
                   for d, p, y in zip(dys, parts, ys)]
        self.grad_sums = np.stack([r[0] for r in reduced])  # gathered, (k, C, 3)
        dweight = np.sum([r[1] for r in reduced], axis=0)
        dbias = np.sum([r[2] for r in reduced], axis=0)
        outs = outs or [None] * len(parts)
        dxs = [bnorm.backward_elementwise(d, p, self.mean, self.invstd, self.grad_sums,
                                          self.weight, y=y, fuse_relu=self.relu,
                                          layout=self.layout, out=o)
               for d, p, y, o in zip(dys, parts, ys, outs)]
        return dxs, dweight, dbias


def test_binding_version_is_1_4():
    assert bnorm.__version__ == _lib.WRITTEN_FOR_VERSION == "1.4.0"
    assert bnorm.version() >= (1, 2, 0)
    assert bnorm.SPLIT_VALUES_PER_CHANNEL == 3


# -------------------------------------------------- against PyTorch, whole batch

@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("affine, relu, track", [
    (True, False, True), (False, False, True), (True, True, True), (False, True, False),
    (True, False, False), (True, True, False),
], ids=["affine", "plain", "affine-relu", "relu-untracked", "affine-untracked",
        "affine-relu-untracked"])
def test_split_phases_match_torch_on_the_whole_batch(rng, case, affine, relu, track):
    layout, shape, sizes = case
    c = shape[channel_axis(layout, len(shape))]
    x = random_input(rng, shape, layout)
    dy = rng.standard_normal(shape).astype(np.float32)
    v = layer_vectors(rng, c)
    split = Split(layout, affine, relu, v, track, momentum=0.2)
    parts = parts_of(x, sizes)

    ys = split.forward(parts)
    dxs, dweight, dbias = split.backward(parts_of(dy, sizes), parts, ys)

    ref = torch_reference(x, dy, v, affine, relu, track, layout, momentum=0.2, eps=1e-5)
    # The exchanged blocks: one (count, mean, M2) row per channel and part.
    values_per_channel = x.size // x.shape[0] // c
    assert split.gathered.shape == (len(sizes), c, 3) and split.gathered.dtype == np.float64
    assert (split.gathered[:, :, 0] == np.array(sizes)[:, None] * values_per_channel).all()
    single = sizes.index(1)
    if values_per_channel == 1:  # one value per channel: M2 is exactly 0
        assert (split.gathered[single, :, 2] == 0).all()
    assert split.grad_sums.shape == (len(sizes), c, 3)
    within("y", np.concatenate(ys), ref[0], Y_TOL)
    if relu:
        assert (np.concatenate(ys) >= 0).all()
    if track:
        within("running_mean", split.running[0], ref[1], RUNNING_TOL)
        within("running_var", split.running[1], ref[2], RUNNING_TOL)
    # Each part's dx is its slice of the whole batch's gradient.
    for dx, ref_dx in zip(dxs, parts_of(ref[3], sizes)):
        within("dx", dx, ref_dx, DX_TOL)
    # dweight/dbias: the sum over the parts of each part's own.
    count = x.size // c
    within("dweight", dweight, ref[4], grad_tol(count))
    within("dbias", dbias, ref[5], grad_tol(count))


@pytest.mark.parametrize("case", CASES[::5], ids=case_id)
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
def test_in_place_forward_and_backward_give_the_same_bits(rng, case, relu):
    layout, shape, sizes = case
    c = shape[channel_axis(layout, len(shape))]
    x = random_input(rng, shape, layout)
    dy = rng.standard_normal(shape).astype(np.float32)
    v = layer_vectors(rng, c)
    split = Split(layout, True, relu, v, True)
    parts = parts_of(x, sizes)
    ys = split.forward(parts)
    dxs, _, _ = split.backward(parts_of(dy, sizes), parts, ys)

    # y is x: every part normalized in its own memory.
    x_in_place = x.copy()
    in_place_parts = parts_of(x_in_place, sizes)
    ys_in_place = [bnorm.forward_normalize(p, split.mean, split.invstd, split.weight,
                                           split.bias, layout, relu, out=p)
                   for p in in_place_parts]
    for p, y_ip, y in zip(in_place_parts, ys_in_place, ys):
        assert y_ip is p and np.array_equal(p, y)
    assert np.array_equal(x_in_place, np.concatenate(ys))

    # dx is dy: backward_reduce reads dy first, then dx overwrites it.
    dy_in_place = dy.copy()
    dy_parts = parts_of(dy_in_place, sizes)
    dxs_in_place, _, _ = split.backward(dy_parts, parts, ys, outs=dy_parts)
    for d, dx_ip, dx in zip(dy_parts, dxs_in_place, dxs):
        assert dx_ip is d and np.array_equal(d, dx)


# ------------------------------------------ against bnorm's single-process calls

@pytest.mark.parametrize("case", CASES[::3], ids=case_id)
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
def test_split_phases_equal_forward_training_and_backward(rng, case, relu):
    layout, shape, sizes = case
    c = shape[channel_axis(layout, len(shape))]
    x = random_input(rng, shape, layout)
    dy = rng.standard_normal(shape).astype(np.float32)
    v = layer_vectors(rng, c)
    split = Split(layout, True, relu, v, True)
    parts = parts_of(x, sizes)
    ys = split.forward(parts)
    dxs, dweight, dbias = split.backward(parts_of(dy, sizes), parts, ys)

    running = v["running_mean"].copy(), v["running_var"].copy()
    save_mean, save_invstd = np.empty(c, np.float32), np.empty(c, np.float32)
    y = bnorm.batch_norm(x, *running, v["weight"], v["bias"], training=True, layout=layout,
                         fuse_relu=relu, save_mean=save_mean, save_invstd=save_invstd)
    dx, dw, db = bnorm.batch_norm_backward(dy, x, v["weight"], save_mean, save_invstd, y=y,
                                           fuse_relu=relu, layout=layout)

    # Both compute the statistics in double and round once to float32; they
    # reduce in a different order, so they may differ in the last bit:
    # 2^-23 of the data's scale.
    data_scale = max(1.0, float(np.abs(x).max()))
    assert np.abs(split.mean - save_mean).max() <= 2 ** -22 * data_scale
    np.testing.assert_array_max_ulp(split.invstd, save_invstd, maxulp=2)
    within("running_mean vs bnorm", split.running[0], running[0], RUNNING_TOL)
    within("running_var vs bnorm", split.running[1], running[1], RUNNING_TOL)
    within("y vs bnorm", np.concatenate(ys), y, Y_TOL)
    within("dx vs bnorm", np.concatenate(dxs), dx, DX_TOL)
    within("dweight vs bnorm", dweight, dw, grad_tol(x.size // c))
    within("dbias vs bnorm", dbias, db, grad_tol(x.size // c))


def test_one_part_is_the_whole_batch(rng):
    # k = 1: one (C, 3) block, not stacked, is accepted everywhere.
    x = random_input(rng, (5, 4, 3, 2), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)
    stats = bnorm.local_stats(x)
    mean, invstd = bnorm.merge_stats(stats)
    assert np.array_equal((mean, invstd), bnorm.merge_stats(stats[None]))
    y = bnorm.forward_normalize(x, mean, invstd)
    sums, dweight, dbias = bnorm.backward_reduce(dy, x, mean, invstd)
    dx = bnorm.backward_elementwise(dy, x, mean, invstd, sums)

    save_mean, save_invstd = np.empty(4, np.float32), np.empty(4, np.float32)
    want_y = bnorm.batch_norm(x, None, None, training=True, save_mean=save_mean,
                              save_invstd=save_invstd)
    want = bnorm.batch_norm_backward(dy, x, None, save_mean, save_invstd)
    within("y one part", y, want_y, Y_TOL)
    within("dx one part", dx, want[0], DX_TOL)
    within("dweight one part", dweight, want[1], grad_tol(30))
    within("dbias one part", dbias, want[2], grad_tol(30))
    # The blocks themselves, against NumPy in float64.
    x64 = x.astype(np.float64).transpose(1, 0, 2, 3).reshape(4, -1)
    assert (stats[:, 0] == 30).all()
    assert_block_stats(stats, x64)
    g = dy.astype(np.float64).transpose(1, 0, 2, 3).reshape(4, -1)
    assert (sums[:, 0] == 30).all()
    assert_sums(sums[:, 1], g)
    assert_sums(sums[:, 2], g * (x64 - mean[:, None]))


# The library sums in float over short blocks (at most 16 terms per float
# partial sum), then in double: each partial sum is off by at most
# 16 * 2^-24 = 2^-20 of the sum of its terms' magnitudes, and the float
# products add 2^-24 each. 2^-19 of sum |terms| bounds it with margin.
SUM_BOUND = 2.0 ** -19


def assert_sums(actual, terms):
    """actual[c] is the sum of terms[c, :] (float64 rows) as bnorm adds them."""
    bound = SUM_BOUND * np.abs(terms).sum(axis=1)
    assert (np.abs(actual - terms.sum(axis=1)) <= bound).all()


def assert_block_stats(block, x64):
    """block is (count, mean, M2) of x64's rows (channels). mean = shift +
    sum(x - shift) / n, the shift an estimate of the mean, so |x - shift| <=
    2 max |x|; M2 is a sum of squared deviations from the shift, close to
    the mean's, so its bound is relative (doubled for the shift's offset)."""
    n = x64.shape[1]
    mean = x64.mean(axis=1)
    assert (block[:, 0] == n).all()
    assert (np.abs(block[:, 1] - mean) <= 2 * SUM_BOUND * np.abs(x64).max(axis=1)).all()
    m2 = ((x64 - mean[:, None]) ** 2).sum(axis=1)
    assert (np.abs(block[:, 2] - m2) <= 2 * SUM_BOUND * m2).all()


def test_frozen_backward_elementwise_is_batch_norm_backward_in_eval(rng):
    x = random_input(rng, (4, 3, 5), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)
    mean, var = random_vector(rng, 3, -1, 1), random_vector(rng, 3, 0.5, 2)
    weight = random_vector(rng, 3, 0.5, 1.5)

    dx = bnorm.backward_elementwise(dy, x, mean, bnorm.invstd(var), None, weight,
                                    training=False)

    want = bnorm.batch_norm_backward(dy, x, weight, training=False, running_mean=mean,
                                     running_var=var)[0]
    within("frozen dx", dx, want, DX_TOL)
    within("frozen dx formula", dx, dy * (weight * bnorm.invstd(var))[None, :, None], DX_TOL)


# --------------------------------------------------------- exchanges and merges

def gathered_stats(rng, sizes=(3, 1, 5, 2), shape_rest=(6, 4)):
    x = random_input(rng, (sum(sizes),) + shape_rest, "NCHW")
    return x, np.stack([bnorm.local_stats(p) for p in parts_of(x, sizes)])


def test_merging_the_same_blocks_twice_gives_the_same_bits(rng):
    _, gathered = gathered_stats(rng)
    running = np.full(6, 0.5, np.float32), np.full(6, 2.0, np.float32)
    first = [r.copy() for r in running]
    merged_first = np.empty((6, 3))
    mean, invstd = bnorm.merge_stats(gathered, *first, merged=merged_first)

    for partials in (gathered, gathered.copy(), list(gathered), tuple(gathered)):
        again = [r.copy() for r in running]
        merged_again = np.empty((6, 3))
        got = bnorm.merge_stats(partials, *again, merged=merged_again)
        assert np.array_equal(got[0], mean) and np.array_equal(got[1], invstd)
        assert np.array_equal(again[0], first[0]) and np.array_equal(again[1], first[1])
        assert np.array_equal(merged_again, merged_first)


def test_merged_block_is_a_partial_for_a_hierarchical_merge(rng):
    x, gathered = gathered_stats(rng)
    whole = bnorm.merge_stats(gathered)
    # Two nodes merge their processes' blocks, then the nodes' merged blocks.
    node_a, node_b = np.empty((6, 3)), np.empty((6, 3))
    bnorm.merge_stats(gathered[:2], merged=node_a)
    bnorm.merge_stats(gathered[2:], merged=node_b)
    merged = np.empty((6, 3))
    hierarchical = bnorm.merge_stats([node_a, node_b], merged=merged)

    # The merge itself is in double; the blocks carry the float-block sums'
    # rounding (assert_block_stats).
    assert_block_stats(merged, x.astype(np.float64).transpose(1, 0, 2).reshape(6, -1))
    # Chan's update is not associative in floating point: (a + b) + (c + d)
    # is another order than ((a + b) + c) + d, so equal to float32 rounding
    # (1 ulp), not in bits.
    np.testing.assert_array_max_ulp(hierarchical[0], whole[0], maxulp=1)
    np.testing.assert_array_max_ulp(hierarchical[1], whole[1], maxulp=1)
    # A merged prefix followed by the remaining blocks is the same order as
    # one merge of them all: the same bits.
    whole_merged = np.empty((6, 3))
    bnorm.merge_stats(gathered, merged=whole_merged)
    prefix_merged = np.empty((6, 3))
    prefix = bnorm.merge_stats([node_a, gathered[2], gathered[3]], merged=prefix_merged)
    assert np.array_equal(prefix_merged, whole_merged)
    assert np.array_equal(prefix[0], whole[0]) and np.array_equal(prefix[1], whole[1])


def test_merged_may_overwrite_the_first_block(rng):
    _, gathered = gathered_stats(rng)
    want_merged = np.empty((6, 3))
    want = bnorm.merge_stats(gathered, merged=want_merged)
    rest = gathered[1:].copy()

    got = bnorm.merge_stats(gathered, merged=gathered[0])

    assert np.array_equal(got, want)
    assert np.array_equal(gathered[0], want_merged) and np.array_equal(gathered[1:], rest)


def test_blocks_with_count_zero_are_skipped(rng):
    # A process with no samples this step sends (0, 0, 0) rows.
    _, gathered = gathered_stats(rng)
    with_empty = np.insert(gathered, 2, 0.0, axis=0)
    assert np.array_equal(bnorm.merge_stats(with_empty), bnorm.merge_stats(gathered))


def test_summed_grad_sums_and_gathered_blocks_give_the_same_dx(rng):
    sizes = (2, 1, 4)
    x = random_input(rng, (7, 3, 5), "NHWC")  # C = 5, 3 values per sample
    dy = rng.standard_normal(x.shape).astype(np.float32)
    weight = random_vector(rng, 5, -2, 2)
    parts, dys = parts_of(x, sizes), parts_of(dy, sizes)
    mean, invstd = bnorm.merge_stats([bnorm.local_stats(p, "NHWC") for p in parts])
    gathered = np.stack([bnorm.backward_reduce(d, p, mean, invstd, layout="NHWC")[0]
                         for d, p in zip(dys, parts)])
    summed = gathered.sum(axis=0)  # what MPI_Allreduce(MPI_SUM) gives: one (C, 3) block
    assert (summed[:, 0] == 7 * 3).all()

    for d, p in zip(dys, parts):
        from_gathered = bnorm.backward_elementwise(d, p, mean, invstd, gathered, weight,
                                                   layout="NHWC")
        from_list = bnorm.backward_elementwise(d, p, mean, invstd, list(gathered), weight,
                                               layout="NHWC")
        from_sum = bnorm.backward_elementwise(d, p, mean, invstd, summed, weight,
                                              layout="NHWC")
        assert np.array_equal(from_gathered, from_list)
        # The sums differ only by the order of a few double additions.
        within("dx summed vs gathered", from_sum, from_gathered, 1e-6)


def test_blocks_are_bit_identical_for_every_num_threads(rng):
    # The exchanged sums depend on the shape only, so processes running with
    # different thread counts still agree (large enough to use the threads).
    x = random_input(rng, (16, 8, 32, 32), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)
    stats = [bnorm.local_stats(x, num_threads=n) for n in (1, 2, 0)]
    assert all(np.array_equal(s, stats[0]) for s in stats)
    mean, invstd = bnorm.merge_stats(stats[0])
    sums = [bnorm.backward_reduce(dy, x, mean, invstd, num_threads=n) for n in (1, 2, 0)]
    assert all(np.array_equal(a, b) for s in sums for a, b in zip(s, sums[0]))


def test_local_stats_writes_into_a_row_of_the_gather_buffer(rng):
    # As with MPI_Allgather(MPI_IN_PLACE, ...): each rank fills its own row.
    x = random_input(rng, (6, 3, 4), "NCHW")
    buffer = np.full((3, 3, 3), SENTINEL)
    for rank, part in enumerate(parts_of(x, (1, 3, 2))):
        row = bnorm.local_stats(part, out=buffer[rank])
        assert row.ctypes.data == buffer[rank].ctypes.data
        assert np.array_equal(buffer[rank], bnorm.local_stats(part))
    assert (buffer[:, :, 0] == [[4], [12], [8]]).all()


def test_outputs_can_be_the_callers_arrays(rng):
    x, gathered = gathered_stats(rng, shape_rest=(3, 2))
    mean, invstd = np.full(3, SENTINEL, np.float32), np.full(3, SENTINEL, np.float32)
    got = bnorm.merge_stats(gathered, mean=mean, invstd=invstd)
    assert got[0] is mean and got[1] is invstd
    assert np.array_equal(got, bnorm.merge_stats(gathered))

    dy = rng.standard_normal(x.shape).astype(np.float32)
    sums = np.full((3, 3), SENTINEL)
    got = bnorm.backward_reduce(dy, x, mean, invstd, out=sums, output_mask=(True, False, False))
    assert got[0] is sums and got[1] is None and got[2] is None
    assert np.array_equal(sums, bnorm.backward_reduce(dy, x, mean, invstd)[0])
    # Without grad_sums in the mask it is computed all the same, not returned.
    only_grads = bnorm.backward_reduce(dy, x, mean, invstd, output_mask=(False, True, True))
    assert only_grads[0] is None and only_grads[1].shape == only_grads[2].shape == (3,)

    t = torch.from_numpy(x.copy())  # a torch tensor written through .numpy()
    bnorm.forward_normalize(t.numpy(), mean, invstd, out=t.numpy())
    assert np.array_equal(t.numpy(), bnorm.forward_normalize(x, mean, invstd))


def test_copy_converts_float32_blocks_and_float64_tensors(rng):
    x, gathered = gathered_stats(rng, shape_rest=(3, 2))
    as32 = gathered.astype(np.float32)
    with pytest.raises(bnorm.InvalidArgumentError) as caught:
        bnorm.merge_stats(as32)
    assert caught.value.message == ("partial_stats has dtype float32; bnorm takes float64 for "
                                    "the exchanged (C, 3) arrays (pass copy=True to convert)")
    assert np.array_equal(bnorm.merge_stats(as32, copy=True),
                          bnorm.merge_stats(as32.astype(np.float64)))
    with pytest.raises(bnorm.InvalidArgumentError, match=r"partial_stats\[0\] has dtype float32"):
        bnorm.merge_stats(list(as32))
    nested = gathered.tolist()  # plain Python lists, e.g. from a JSON exchange
    assert np.array_equal(bnorm.merge_stats(nested, copy=True), bnorm.merge_stats(gathered))

    with pytest.raises(bnorm.InvalidArgumentError, match="x has dtype float64"):
        bnorm.local_stats(x.astype(np.float64))
    assert np.array_equal(bnorm.local_stats(x.astype(np.float64), copy=True),
                          bnorm.local_stats(x))


# ------------------------------------------------------------------- errors

def unchanged(*arrays):
    """Snapshots of arrays, to compare after a failing call."""
    return [(a, a.copy()) for a in arrays]


def assert_unchanged(snapshots):
    for a, before in snapshots:
        assert np.array_equal(a, before, equal_nan=True)


def failing(cls, call, *watched):
    """call() must raise cls and leave the watched arrays as they were;
    returns the error."""
    snapshots = unchanged(*watched)
    with pytest.raises(cls) as caught:
        call()
    assert_unchanged(snapshots)
    assert isinstance(caught.value, bnorm.BnormError) and caught.value.status == cls.status
    return caught.value


@pytest.fixture
def setup(rng):
    """A 3-part split over 4 channels: parts, their gathered stats, the
    merged mean/invstd, and sentinel-filled outputs."""
    x = random_input(rng, (6, 4, 5), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)
    parts, dys = parts_of(x, (1, 3, 2)), parts_of(dy, (1, 3, 2))
    gathered = np.stack([bnorm.local_stats(p) for p in parts])
    mean, invstd = bnorm.merge_stats(gathered)
    sums = np.stack([bnorm.backward_reduce(d, p, mean, invstd)[0] for d, p in zip(dys, parts)])
    return dict(x=x, dy=dy, parts=parts, dys=dys, gathered=gathered, mean=mean, invstd=invstd,
                sums=sums, running=(np.full(4, 0.25, np.float32), np.full(4, 3.0, np.float32)),
                out_stats=np.full((4, 3), SENTINEL), out_mean=np.full(4, SENTINEL, np.float32),
                out_invstd=np.full(4, SENTINEL, np.float32),
                out_y=np.full((3, 4, 5), SENTINEL, np.float32))


def test_merge_stats_library_errors_name_block_and_channel(setup):
    s = setup
    running_mean, running_var = s["running"]

    def merge(partials):
        return lambda: bnorm.merge_stats(partials, running_mean, running_var,
                                         mean=s["out_mean"], invstd=s["out_invstd"],
                                         merged=s["out_stats"])

    watched = (running_mean, running_var, s["out_mean"], s["out_invstd"], s["out_stats"])
    bad = s["gathered"].copy()
    bad[1, 2, 0] = 2.5
    error = failing(bnorm.InvalidArgumentError, merge(bad), bad, *watched)
    assert error.message == ("partial_stats block 1, channel 2: count is 2.5; it must be a whole "
                             "number from 0 to 2^53 (is the array laid out as (count, ...) per channel, "
                             "num_features channels per block?)")
    bad = s["gathered"].copy()
    bad[2, 3, 0] = -5
    error = failing(bnorm.InvalidArgumentError, merge(bad), *watched)
    assert error.message.startswith("partial_stats block 2, channel 3: count is -5;")
    bad = s["gathered"].copy()
    bad[0, 1, 2] = -0.5
    error = failing(bnorm.InvalidArgumentError, merge(bad), *watched)
    assert error.message == "partial_stats block 0, channel 1: M2 is -0.5; it must be >= 0"
    # A (C, 3) block passed transposed, (3, C), is caught by its shape first.
    error = failing(bnorm.InvalidShapeError, merge(s["gathered"].transpose(0, 2, 1).copy()),
                    *watched)
    assert "has shape (3, 3, 4)" in error.message


def test_merge_stats_total_count_of_one_is_too_few_values(setup):
    s = setup
    running_mean, running_var = s["running"]
    # A single sample of 2-D input (one value per channel) and an empty
    # block: 1 value per channel in all.
    single = bnorm.local_stats(np.ones((1, 4), np.float32))
    assert (single[:, 0] == 1).all() and (single[:, 2] == 0).all()
    blocks = np.stack([single, np.zeros((4, 3))])
    error = failing(bnorm.TooFewValuesError,
                    lambda: bnorm.merge_stats(blocks, running_mean, running_var,
                                              mean=s["out_mean"]),
                    running_mean, running_var, s["out_mean"])
    assert error.message == ("merging statistics needs more than 1 value per channel in all, "
                             "got 1 in channel 0 over 2 blocks")
    error = failing(bnorm.TooFewValuesError, lambda: bnorm.merge_stats(np.zeros((4, 3))))
    assert "got 0 in channel 0 over 1 blocks" in error.message
    # Two single values are enough.
    assert np.isfinite(bnorm.merge_stats([single, single])[1]).all()


def test_merge_stats_shape_and_feature_errors(setup):
    s = setup
    running_mean, running_var = s["running"]
    watched = (running_mean, running_var, s["out_mean"])
    g = s["gathered"]

    def merge(partials, **kw):
        return lambda: bnorm.merge_stats(partials, running_mean, running_var,
                                         mean=s["out_mean"], **kw)

    # The layer (running statistics) has 4 channels; blocks of 5 do not fit.
    error = failing(bnorm.FeatureMismatchError, merge(np.zeros((3, 5, 3))), *watched)
    assert error.message == ("partial_stats has shape (3, 5, 3), blocks of 5 channels, but must "
                             "have blocks of 4 channels (num_features, the length of "
                             "running_mean)")
    error = failing(bnorm.FeatureMismatchError, merge([g[0], g[1], np.zeros((5, 3))]),
                    *watched)
    assert error.message == ("partial_stats[2] has shape (5, 3) but partial_stats[0] has shape "
                             "(4, 3); every process's block must have the layer's num_features "
                             "rows")
    error = failing(bnorm.FeatureMismatchError, merge([np.zeros((5, 3))] * 2), *watched)
    assert "2 blocks of shape (5, 3), blocks of 5 channels, but must have blocks of 4" in (
        error.message)
    for wrong in (g.reshape(-1), g.reshape(3, 4, 3, 1), g[:, :, :2].copy(), g.reshape(3, 12)):
        error = failing(bnorm.InvalidShapeError, merge(wrong), *watched)
        assert error.message.startswith("partial_stats has shape %s; it must be one block of "
                                        "shape (num_features, 3) or k processes' blocks"
                                        % (wrong.shape,))
    error = failing(bnorm.InvalidShapeError, merge([g[0], g[1].reshape(-1)]), *watched)
    assert error.message == ("partial_stats[1] has shape (12,); each block must have shape "
                             "(num_features, 3)")
    # Vectors are checked against num_features before the call.
    error = failing(bnorm.FeatureMismatchError, lambda: bnorm.merge_stats(
        g, running_mean, running_var[:3]), running_mean)
    assert error.message.startswith("running_var has shape (3,) but must be a vector of 4 values")
    error = failing(bnorm.FeatureMismatchError, merge(g, invstd=np.empty(5, np.float32)),
                    *watched)
    assert error.message.startswith("invstd has shape (5,) but must be a vector of 4 values")
    error = failing(bnorm.FeatureMismatchError, merge(g, merged=np.empty((5, 3))), *watched)
    assert error.message == ("merged has shape (5, 3) but must be (4, 3) (num_features, the "
                             "length of running_mean)")
    error = failing(bnorm.InvalidShapeError, merge(g, merged=np.empty(12)), *watched)
    assert error.message.startswith("merged has shape (12,) but must be (4, 3)")


def test_merge_stats_null_and_argument_errors(setup):
    s = setup
    running_mean, running_var = s["running"]
    g = s["gathered"]
    watched = (running_mean, running_var, s["out_mean"])
    error = failing(bnorm.NullPointerError, lambda: bnorm.merge_stats(None), *watched)
    assert error.message == "partial_stats is NULL"
    # Running statistics are both tracked or neither.
    error = failing(bnorm.NullPointerError,
                    lambda: bnorm.merge_stats(g, running_mean, mean=s["out_mean"]), *watched)
    assert error.message == "running_var is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"
    error = failing(bnorm.NullPointerError,
                    lambda: bnorm.merge_stats(g, None, running_var, mean=s["out_mean"]),
                    *watched)
    assert error.message == "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set"
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.merge_stats(g[:0]), *watched)
    assert error.message.startswith("num_partials is 0 with num_features 4; it must be >= 1")
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.merge_stats([]), *watched)
    assert error.message.startswith("num_partials is 0")
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.merge_stats(
        g, running_mean, running_var, momentum=1.5, mean=s["out_mean"]), *watched)
    assert error.message == "momentum is 1.5; it must be in [0, 1]"
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.merge_stats(
        g, running_mean, running_var, momentum=None), *watched)
    assert error.message.startswith("momentum is None")
    error = failing(bnorm.InvalidArgumentError,
                    lambda: bnorm.merge_stats(g, eps=0.0, mean=s["out_mean"]), *watched)
    assert error.message == "eps is 0; it must be finite and > 0"
    error = failing(bnorm.InvalidArgumentError,
                    lambda: bnorm.merge_stats(g, mean=np.empty(4, np.float64)), *watched)
    assert "mean has dtype float64" in error.message
    error = failing(bnorm.InvalidArgumentError,
                    lambda: bnorm.merge_stats(object()), *watched)
    assert error.message.startswith("partial_stats is a builtins.object; expected a float64")


def test_merge_stats_overlaps_are_the_librarys_aliasing_error(setup):
    s = setup
    running_mean, running_var = s["running"]
    g = s["gathered"]
    # In place is exactly the first block; a row off is an overlap.
    storage = np.zeros(g.size + 3)
    storage[:g.size] = g.ravel()
    blocks = storage[:g.size].reshape(g.shape)
    shifted = storage[3:3 + 12].reshape(4, 3)
    error = failing(bnorm.AliasingError, lambda: bnorm.merge_stats(blocks, merged=shifted),
                    storage)
    assert error.message == ("merged_stats overlaps partial_stats (in place is allowed only "
                             "with the same pointer)")
    error = failing(bnorm.AliasingError, lambda: bnorm.merge_stats(
        g, running_mean, running_var, mean=running_mean), running_mean, running_var)
    assert error.message == "mean overlaps running_mean"


def test_misaligned_blocks_are_the_librarys_invalid_argument(setup):
    nbytes = setup["gathered"].nbytes
    raw = np.zeros(nbytes + 8, np.uint8)
    misaligned = raw[4:4 + nbytes].view(np.float64).reshape(setup["gathered"].shape)
    misaligned[...] = setup["gathered"]
    assert not misaligned.flags.aligned
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.merge_stats(misaligned))
    assert "partial_stats" in error.message and "is not aligned to 8 bytes" in error.message
    # copy=True makes an aligned copy.
    assert np.array_equal(bnorm.merge_stats(misaligned, copy=True),
                          bnorm.merge_stats(setup["gathered"]))


def test_local_stats_errors(setup, rng):
    s = setup
    x, out = s["x"], s["out_stats"]
    error = failing(bnorm.FeatureMismatchError,
                    lambda: bnorm.local_stats(x, out=np.empty((5, 3))), out)
    assert error.message == ("out has shape (5, 3) but must be (4, 3) (num_features, x's "
                             "channel dimension)")
    error = failing(bnorm.InvalidShapeError, lambda: bnorm.local_stats(x, out=np.empty((4, 2))))
    assert error.message.startswith("out has shape (4, 2) but must be (4, 3)")
    error = failing(bnorm.InvalidArgumentError,
                    lambda: bnorm.local_stats(x, out=np.empty((4, 3), np.float32)))
    assert error.message == ("out has dtype float32; bnorm takes float64 for the exchanged "
                             "(C, 3) arrays (outputs are never copied)")
    read_only = np.empty((4, 3))
    read_only.flags.writeable = False
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.local_stats(x, out=read_only))
    assert error.message == "out is read-only; an output must be writable"
    error = failing(bnorm.InvalidShapeError, lambda: bnorm.local_stats(np.ones(7, np.float32)))
    assert error.message == "rank is 1; it must be 2 to 5"
    error = failing(bnorm.InvalidArgumentError,
                    lambda: bnorm.local_stats(x, layout="NWHC", out=out), out)
    assert error.message.startswith("layout is 'NWHC'")
    error = failing(bnorm.InvalidArgumentError,
                    lambda: bnorm.local_stats(x, num_threads=-2, out=out), out)
    assert error.message == "num_threads is -2; it must be >= 0"
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.local_stats(None))
    assert error.message.startswith("x is a builtins.NoneType; expected a float32 array")


def test_forward_normalize_errors(setup):
    s = setup
    part, out = s["parts"][1], s["out_y"]
    mean, invstd = s["mean"], s["invstd"]
    # mean/invstd are the layer's 4 channels; an input with 5 is the library's report.
    x5 = np.ones((3, 5, 5), np.float32)
    error = failing(bnorm.FeatureMismatchError,
                    lambda: bnorm.forward_normalize(x5, mean, invstd), x5)
    assert error.message == "input channel dimension (dim 1) is 5 but num_features is 4"
    error = failing(bnorm.FeatureMismatchError,
                    lambda: bnorm.forward_normalize(part, mean, invstd[:3], out=out), out)
    assert error.message.startswith("invstd has shape (3,) but must be a vector of 4 values "
                                    "(num_features, the length of mean)")
    error = failing(bnorm.NullPointerError,
                    lambda: bnorm.forward_normalize(part, mean, None, out=out), out)
    assert error.message == "invstd is NULL"
    error = failing(bnorm.NullPointerError,
                    lambda: bnorm.forward_normalize(part, None, None, out=out), out)
    assert error.message == "mean is NULL"
    error = failing(bnorm.FeatureMismatchError, lambda: bnorm.forward_normalize(
        part, mean, invstd, np.ones(3, np.float32), out=out), out)
    assert error.message.startswith("weight has shape (3,) but must be a vector of 4 values")
    error = failing(bnorm.InvalidShapeError, lambda: bnorm.forward_normalize(
        part, mean, invstd, out=np.empty((2, 4, 5), np.float32)))
    assert error.message.startswith("out has shape (2, 4, 5)")
    # An output overlapping the input other than exactly: the library refuses.
    storage = np.zeros(part.size + 1, np.float32)
    storage[:-1] = part.ravel()
    error = failing(bnorm.AliasingError, lambda: bnorm.forward_normalize(
        storage[:-1].reshape(part.shape), mean, invstd, out=storage[1:].reshape(part.shape)),
        storage)
    assert error.message.startswith("y overlaps x")


def test_backward_reduce_errors(setup):
    s = setup
    part, dy, out = s["parts"][1], s["dys"][1], s["out_stats"]
    mean, invstd = s["mean"], s["invstd"]
    error = failing(bnorm.NullPointerError, lambda: bnorm.backward_reduce(
        dy, part, mean, invstd, fuse_relu=True, out=out), out)
    assert error.message == "y is NULL but BNORM_FLAG_FUSE_RELU is set"
    error = failing(bnorm.InvalidShapeError, lambda: bnorm.backward_reduce(
        dy[:2], part, mean, invstd, out=out), out)
    assert error.message == ("grad_output has shape (2, 4, 5) and dtype float32 but x has shape "
                             "(3, 4, 5) and dtype float32")
    error = failing(bnorm.FeatureMismatchError, lambda: bnorm.backward_reduce(
        dy, part, mean, invstd, out=np.empty((3, 3))), out)
    assert error.message == ("out has shape (3, 3) but must be (4, 3) (num_features, the length "
                             "of mean)")
    x5 = np.ones((3, 5, 5), np.float32)
    error = failing(bnorm.FeatureMismatchError, lambda: bnorm.backward_reduce(
        x5, x5, mean, invstd, out=out), out)
    assert error.message == "input channel dimension (dim 1) is 5 but num_features is 4"
    error = failing(bnorm.NullPointerError, lambda: bnorm.backward_reduce(
        dy, part, None, invstd, out=out), out)
    assert error.message == "mean is NULL"
    # grad_output None is not an array: refused in Python, before the call.
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.backward_reduce(
        None, part, mean, invstd, out=out), out)
    assert error.message.startswith("grad_output is a builtins.NoneType; expected a float32")


def test_backward_elementwise_errors(setup):
    s = setup
    parts, dys, sums = s["parts"], s["dys"], s["sums"]
    mean, invstd = s["mean"], s["invstd"]
    part, dy = parts[1], dys[1]  # 3 samples: 15 values per channel
    out = np.full(part.shape, SENTINEL, np.float32)

    def elementwise(grad_sums, **kw):
        return lambda: bnorm.backward_elementwise(dy, part, mean, invstd, grad_sums,
                                                  **dict(dict(out=out), **kw))

    # Only the single-sample part's sums (5 values) for a part of 15: the
    # other processes' sums are missing.
    error = failing(bnorm.InvalidArgumentError, elementwise(sums[0]), out)
    assert error.message == ("grad_sums channel 0: the total count is 5 but this part, of shape "
                             "(3, 4, 5), alone has 15 values per channel; pass the sums of every "
                             "process (allreduced, or all blocks gathered)")
    bad = sums.copy()
    bad[2, 1, 0] = 10.5
    error = failing(bnorm.InvalidArgumentError, elementwise(bad), out)
    assert error.message.startswith("grad_sums block 2, channel 1: count is 10.5; it must be a "
                                    "whole number from 0 to 2^53")
    # The whole batch of one value per channel: too few, even though the
    # count covers this part.
    one = np.ones((1, 4), np.float32)
    one_sums = bnorm.backward_reduce(one, one, np.zeros(4, np.float32),
                                     np.ones(4, np.float32))[0]
    one_out = np.full((1, 4), SENTINEL, np.float32)
    error = failing(bnorm.TooFewValuesError, lambda: bnorm.backward_elementwise(
        one, one, np.zeros(4, np.float32), np.ones(4, np.float32), one_sums, out=one_out),
        one_out)
    assert error.message == ("training-mode backward needs more than 1 value per channel in "
                             "all, got 1 in channel 0")
    error = failing(bnorm.NullPointerError, elementwise(None), out)
    assert error.message == "grad_sums is NULL"
    error = failing(bnorm.FeatureMismatchError, elementwise(np.zeros((3, 5, 3))), out)
    assert error.message == ("grad_sums has shape (3, 5, 3), blocks of 5 channels, but must "
                             "have blocks of 4 channels (num_features, the length of mean)")
    error = failing(bnorm.InvalidShapeError, elementwise(sums.reshape(-1)), out)
    assert error.message.startswith("grad_sums has shape (36,); it must be one block")
    error = failing(bnorm.NullPointerError, elementwise(sums, fuse_relu=True), out)
    assert error.message == "y is NULL but BNORM_FLAG_FUSE_RELU is set"
    error = failing(bnorm.FeatureMismatchError,
                    elementwise(sums, weight=np.ones(5, np.float32)), out)
    assert error.message.startswith("weight has shape (5,) but must be a vector of 4 values")
    error = failing(bnorm.InvalidShapeError, elementwise(sums, y=np.ones((3, 4), np.float32)),
                    out)
    assert error.message.startswith("y has shape (3, 4)")
    # In place (dx is dy): a failing call leaves dy as it was.
    dy_copy = dy.copy()
    error = failing(bnorm.InvalidArgumentError, lambda: bnorm.backward_elementwise(
        dy_copy, part, mean, invstd, sums[0], out=dy_copy), dy_copy)
    assert error.message.startswith("grad_sums channel 0: the total count is 5")
    # dx overlapping x: the library's report.
    error = failing(bnorm.AliasingError, elementwise(sums, out=part), part)
    assert error.message == "dx overlaps x"


# ---------------------------------------------------- an older (1.1) library

class OlderLibrary:
    """A libbnorm of an older 1.x as the binding sees it: reports that
    version and lacks the symbols added after it."""

    def __init__(self, real, version, text, has_new_symbols=False):
        self._real = real
        self._version = version
        self._has_new_symbols = has_new_symbols
        self.bnorm_version = lambda: version
        self.bnorm_version_string = lambda: text

    def __getattr__(self, name):
        since = _lib._SINCE.get(name)
        if since is not None and since[0] > self._version and not self._has_new_symbols:
            raise AttributeError("undefined symbol: " + name)
        return getattr(self._real, name)


SPLIT_CALLS = {
    "bnorm_local_stats": lambda a: bnorm.local_stats(a["x"]),
    "bnorm_merge_stats": lambda a: bnorm.merge_stats(a["gathered"]),
    "bnorm_forward_normalize": lambda a: bnorm.forward_normalize(a["x"], a["mean"],
                                                                 a["invstd"]),
    "bnorm_backward_reduce": lambda a: bnorm.backward_reduce(a["x"], a["x"], a["mean"],
                                                             a["invstd"]),
    "bnorm_backward_elementwise": lambda a: bnorm.backward_elementwise(
        a["x"], a["x"], a["mean"], a["invstd"], a["gathered"]),
}


@pytest.fixture
def split_args(rng):
    x = random_input(rng, (4, 3, 2), "NCHW")
    gathered = np.stack([bnorm.local_stats(x[:1]), bnorm.local_stats(x[1:])])
    mean, invstd = bnorm.merge_stats(gathered)
    return dict(x=x, gathered=gathered, mean=mean, invstd=invstd)


def test_a_1_1_library_serves_folding_and_names_its_version_for_the_split_phases(
        split_args, monkeypatch):
    fake = OlderLibrary(_lib.lib(), 10100, b"1.1.0")
    _lib._declare(fake)
    monkeypatch.setattr(_lib, "_loaded", (fake, "/opt/old/libbnorm.so.1"))
    x = split_args["x"]
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    assert bnorm.version() == (1, 1, 0)
    assert bnorm.batch_norm(x, mean, var).shape == x.shape
    assert bnorm.fold_scale_shift(mean, var)[0].shape == (3,)  # 1.1 has folding

    layer = bnorm.SyncBatchNorm(3, allgather=lambda block: block[None])
    calls = dict(SPLIT_CALLS, sync_layer=lambda a: layer(a["x"]))
    for name, call in calls.items():
        with pytest.raises(bnorm.LibraryVersionError) as caught:
            call(split_args)
        message = str(caught.value)
        fn_name = name if name.startswith("bnorm_") else "bnorm_local_stats"
        assert message.startswith(fn_name + " needs libbnorm >= 1.2.0, but "
                                  "/opt/old/libbnorm.so.1 reports version 1.1.0 "
                                  "(bnorm_version() = 10100)"), message
    assert layer.num_batches_tracked == 0


def test_a_library_claiming_1_2_without_the_symbols_is_reported(split_args, monkeypatch):
    fake = OlderLibrary(_lib.lib(), 10100, b"1.2.0")
    fake.bnorm_version = lambda: 10200
    monkeypatch.setattr(_lib, "_loaded", (fake, "/opt/odd/libbnorm.so.1"))
    for name, call in SPLIT_CALLS.items():
        with pytest.raises(bnorm.LibraryVersionError,
                           match="reports version 1.2.0 but does not export " + name):
            call(split_args)


# ------------------------------------------------------- SyncBatchNorm layers

class ThreadGroup:
    """k processes simulated by threads, with allgather/allreduce as
    collectives: each rank waits until every rank has contributed."""

    def __init__(self, k):
        self.k = k
        self.slots = [None] * k
        self.barrier = threading.Barrier(k, timeout=60)
        self.calls = [0] * k

    def allgather(self, rank, block):
        self.calls[rank] += 1
        self.slots[rank] = np.array(block, copy=True)
        self.barrier.wait()
        gathered = np.stack(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before all have read
        return gathered

    def allreduce(self, rank, block):
        return self.allgather(rank, block).sum(axis=0)

    def run(self, fn):
        """fn(rank) on k threads at once; their results in rank order."""
        results, errors = [None] * self.k, []

        def body(rank):
            try:
                results[rank] = fn(rank)
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)
                self.barrier.abort()  # the other ranks stop waiting

        threads = [threading.Thread(target=body, args=(r,)) for r in range(self.k)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
        if real or errors:
            raise (real or errors)[0]
        return results


def sync_layers(group, c, use_allreduce, **kwargs):
    return [bnorm.SyncBatchNorm(
        c, allgather=lambda block, r=r: group.allgather(r, block),
        allreduce=(lambda block, r=r: group.allreduce(r, block)) if use_allreduce else None,
        num_threads=1, **kwargs) for r in range(group.k)]


@pytest.mark.parametrize("layout, shape, sizes", [
    ("NCHW", (7, 3, 4, 5), (2, 1, 4)),
    ("NHWC", (6, 5, 3), (1, 3, 2)),
    ("NCHW", (8, 17), (3, 1, 2, 2)),
], ids=["nchw-rank4", "nhwc-rank3", "rank2-4parts"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
@pytest.mark.parametrize("use_allreduce", [True, False], ids=["allreduce", "allgather"])
def test_sync_batch_norm_layers_in_threads_match_torch(rng, layout, shape, sizes, momentum,
                                                       use_allreduce):
    c = shape[channel_axis(layout, len(shape))]
    v = layer_vectors(rng, c)
    group = ThreadGroup(len(sizes))
    layers = sync_layers(group, c, use_allreduce, momentum=momentum, layout=layout,
                         fuse_relu=True)
    for layer in layers:  # the same parameters on every process
        layer.weight[:], layer.bias[:] = v["weight"], v["bias"]
        layer.running_mean[:], layer.running_var[:] = v["running_mean"], v["running_var"]
    steps = [(random_input(rng, shape, layout), rng.standard_normal(shape).astype(np.float32))
             for _ in range(2)]

    def step(rank, x, dy):
        part, dpart = parts_of(x, sizes)[rank], parts_of(dy, sizes)[rank]
        y = layers[rank](part)
        return y, layers[rank].backward(dpart, part, y)

    torch_bn = torch.nn.BatchNorm1d(c, momentum=momentum).double() if len(shape) < 4 else (
        torch.nn.BatchNorm2d(c, momentum=momentum).double())
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(torch_bn, name).copy_(torch.from_numpy(v[name].astype(np.float64)))
    for x, dy in steps:
        results = group.run(lambda rank: step(rank, x, dy))
        xt = torch_view(x.astype(np.float64), layout).requires_grad_(True)
        torch_bn.zero_grad()
        yt = F.relu(torch_bn(xt))
        yt.backward(torch_view(dy.astype(np.float64), layout))
        want_y, want_dx = numpy_from_torch(yt, layout), numpy_from_torch(xt.grad, layout)
        within("SyncBatchNorm y", np.concatenate([r[0] for r in results]), want_y, Y_TOL)
        within("SyncBatchNorm dx", np.concatenate([r[1][0] for r in results]), want_dx, DX_TOL)
        count = x.size // c
        within("SyncBatchNorm dweight", np.sum([r[1][1] for r in results], axis=0),
               torch_bn.weight.grad.numpy(), grad_tol(count))
        within("SyncBatchNorm dbias", np.sum([r[1][2] for r in results], axis=0),
               torch_bn.bias.grad.numpy(), grad_tol(count))
        for layer in layers:
            # Every process merged the same blocks: bit-identical statistics.
            assert np.array_equal(layer.running_mean, layers[0].running_mean)
            assert np.array_equal(layer.running_var, layers[0].running_var)
            assert np.array_equal(layer.save_invstd, layers[0].save_invstd)
            within("SyncBatchNorm running_mean", layer.running_mean,
                   torch_bn.running_mean.numpy(), RUNNING_TOL)
            within("SyncBatchNorm running_var", layer.running_var,
                   torch_bn.running_var.numpy(), RUNNING_TOL)
    assert [layer.num_batches_tracked for layer in layers] == [2] * len(sizes)
    # One exchange per forward and per backward.
    assert group.calls == [4] * len(sizes)


def test_sync_batch_norm_in_eval_mode_is_batch_norm_without_communication(rng):
    def no_exchange(block):
        raise AssertionError("eval mode must not communicate")

    layer = bnorm.SyncBatchNorm(3, allgather=no_exchange).eval()
    plain = bnorm.BatchNorm(3).eval()
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(layer, name)[:] = getattr(plain, name)[:] = random_vector(rng, 3, 0.5, 2)
    x = random_input(rng, (1, 3, 4), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)

    assert np.array_equal(layer(x), plain(x))
    assert all(np.array_equal(a, b) for a, b in zip(layer.backward(dy, x), plain.backward(dy, x)))
    assert layer.num_batches_tracked == 0


def test_sync_batch_norm_one_value_per_process_is_enough(rng):
    # Two processes with one value per channel each: two values in all.
    group = ThreadGroup(2)
    layers = sync_layers(group, 4, True)
    x = random_input(rng, (2, 4), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def step(rank):
        y = layers[rank](x[rank:rank + 1])
        return y, layers[rank].backward(dy[rank:rank + 1], x[rank:rank + 1])

    results = group.run(step)

    assert [layer.num_batches_tracked for layer in layers] == [1, 1]
    want = bnorm.BatchNorm(4)
    want_y = want(x)
    within("one value per process y", np.concatenate([r[0] for r in results]), want_y, Y_TOL)
    within("one value per process dx", np.concatenate([r[1][0] for r in results]),
           want.backward(dy, x)[0], DX_TOL)
    within("one value per process running_var", layers[1].running_var, want.running_var,
           RUNNING_TOL)


def test_sync_batch_norm_failure_changes_no_state(rng):
    x = random_input(rng, (1, 4), "NCHW")
    out = np.full_like(x, SENTINEL)
    # Alone with one value per channel (the other process had none): too few.
    lonely = bnorm.SyncBatchNorm(4, allgather=lambda block: [block, np.zeros_like(block)])
    lonely.running_mean[:] = 7
    with pytest.raises(bnorm.TooFewValuesError, match="got 1 in channel 0 over 2 blocks"):
        lonely(x, out=out)
    assert (lonely.running_mean == 7).all() and (lonely.running_var == 1).all()
    assert lonely.num_batches_tracked == 0 and lonely.save_mean is None
    assert (out == SENTINEL).all()

    # The merge succeeds, then normalizing fails (out overlaps the weight):
    # the running statistics the merge updated are not stored either.
    x2 = random_input(rng, (2, 4), "NCHW")
    layer = bnorm.SyncBatchNorm(4, allgather=lambda block: block[None])
    storage = np.full(8, SENTINEL, np.float32)
    layer.weight = storage[:4]
    layer.weight[:] = 1
    with pytest.raises(bnorm.AliasingError, match="overlaps gamma"):
        layer(x2, out=storage.reshape(2, 4))
    assert (layer.running_mean == 0).all() and (layer.running_var == 1).all()
    assert layer.num_batches_tracked == 0 and layer.save_mean is None
    assert (storage[4:] == SENTINEL).all()

    # A bad result from the exchange is named as such.
    wrong = bnorm.SyncBatchNorm(4, allgather=lambda block: block.reshape(-1))
    with pytest.raises(bnorm.InvalidShapeError, match=r"^BNORM_ERR_INVALID_SHAPE: allgather's "
                       r"result has shape \(12,\)"):
        wrong(x)
    assert wrong.num_batches_tracked == 0
    other = bnorm.SyncBatchNorm(4, allgather=lambda block: np.zeros((2, 5, 3)))
    with pytest.raises(bnorm.FeatureMismatchError, match="blocks of 5 channels, but must have "
                       "blocks of 4 channels \\(the layer's num_features\\)"):
        other(x)


def test_sync_batch_norm_needs_an_allgather():
    with pytest.raises(bnorm.InvalidArgumentError, match="allgather is None"):
        bnorm.SyncBatchNorm(3, allgather=None)
    with pytest.raises(bnorm.InvalidArgumentError, match="allreduce is 3; it must be a function"):
        bnorm.SyncBatchNorm(3, allgather=lambda b: b, allreduce=3)
    with pytest.raises(TypeError):
        bnorm.SyncBatchNorm(3)  # allgather is a required keyword
    with pytest.raises(bnorm.NullPointerError, match="needs save_mean/save_invstd"):
        x = np.ones((2, 3), np.float32)
        bnorm.SyncBatchNorm(3, allgather=lambda b: b).backward(x, x)


# ------------------------------------------ torch.distributed, real processes

DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import multiprocessing, os, sys, tempfile
    import numpy as np
    import torch
    import torch.distributed as dist
    import bnorm

    SIZES = (3, 1, 2)

    def allgather(block):
        # The README's recipe: gloo in torch 1.13 has no all_gather_into_tensor.
        t = torch.from_numpy(block)
        blocks = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(blocks, t)
        return torch.stack(blocks).numpy()           # (k, C, 3), rank order

    def allreduce(block):
        t = torch.from_numpy(block)
        dist.all_reduce(t)                           # sum, in place in block
        return block

    def run(rank, path, x, dy, queue):
        dist.init_process_group("gloo", init_method="file://" + path, rank=rank,
                                world_size=len(SIZES))
        start, stop = sum(SIZES[:rank]), sum(SIZES[:rank + 1])
        layer = bnorm.SyncBatchNorm(4, allgather=allgather, allreduce=allreduce)
        y = layer(x[start:stop])
        dx, dweight, dbias = layer.backward(dy[start:stop], x[start:stop])
        queue.put((rank, y, dx, dweight, dbias, layer.running_mean, layer.running_var))
        dist.destroy_process_group()

    if __name__ == "__main__":
        rng = np.random.default_rng(5)
        x = (rng.standard_normal((6, 4, 3, 5)) * 2 + 1).astype(np.float32)
        dy = rng.standard_normal(x.shape).astype(np.float32)
        ctx = multiprocessing.get_context("fork")
        path = os.path.join(tempfile.mkdtemp(), "rendezvous")
        queue = ctx.Queue()
        procs = [ctx.Process(target=run, args=(r, path, x, dy, queue))
                 for r in range(len(SIZES))]
        for p in procs:
            p.start()
        results = sorted((queue.get(timeout=60) for _ in procs), key=lambda r: r[0])
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * len(SIZES)
        np.savez(sys.argv[1], x=x, dy=dy, y=np.concatenate([r[1] for r in results]),
                 dx=np.concatenate([r[2] for r in results]),
                 dweight=np.sum([r[3] for r in results], axis=0),
                 dbias=np.sum([r[4] for r in results], axis=0),
                 running_mean=np.stack([r[5] for r in results]),
                 running_var=np.stack([r[6] for r in results]))
""")


def test_sync_batch_norm_over_torch_distributed_gloo(tmp_path):
    """Three real processes exchanging over torch.distributed (gloo), as the
    README shows; the result is the whole batch's, as in one process."""
    script, result = tmp_path / "sync.py", tmp_path / "result.npz"
    script.write_text(DISTRIBUTED_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), str(result)], capture_output=True,
                          text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    r = np.load(result)

    bn = torch.nn.BatchNorm2d(4).double()
    xt = torch.from_numpy(r["x"].astype(np.float64)).requires_grad_(True)
    yt = bn(xt)
    yt.backward(torch.from_numpy(r["dy"].astype(np.float64)))
    within("gloo y", r["y"], yt.detach().numpy(), Y_TOL)
    within("gloo dx", r["dx"], xt.grad.numpy(), DX_TOL)
    within("gloo dweight", r["dweight"], bn.weight.grad.numpy(), grad_tol(90))
    within("gloo dbias", r["dbias"], bn.bias.grad.numpy(), grad_tol(90))
    for rank in range(3):  # every process holds the same running statistics
        assert np.array_equal(r["running_mean"][rank], r["running_mean"][0])
        within("gloo running_mean", r["running_mean"][rank], bn.running_mean.numpy(),
               RUNNING_TOL)
        within("gloo running_var", r["running_var"][rank], bn.running_var.numpy(), RUNNING_TOL)


# ------------------------------------------------ the README's mpi4py example

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_block(marker):
    """The ```python block following marker in the README."""
    with open(README) as f:
        text = f.read()
    start = text.index("```python\n", text.index(marker)) + len("```python\n")
    return text[start:text.index("```", start)]


class FakeMPI:
    """The part of mpi4py's MPI module the README uses, over a ThreadGroup
    (ranks are threads), with mpi4py's buffer rules: with IN_PLACE,
    Allgather's contribution is the rank's 1/size of the receive buffer."""
    IN_PLACE = object()
    SUM = object()

    def __init__(self, group):
        self.COMM_WORLD = FakeComm(group)


class FakeComm:
    def __init__(self, group):
        self.group = group
        self.local = threading.local()

    def Get_rank(self):  # noqa: N802 - mpi4py's names
        return self.local.rank

    def Get_size(self):  # noqa: N802
        return self.group.k

    def Allgather(self, sendbuf, recvbuf):  # noqa: N802
        assert recvbuf.dtype == np.float64 and recvbuf.flags.c_contiguous
        rows = recvbuf.reshape(self.group.k, -1)  # a view: rows are written into recvbuf
        mine = rows[self.Get_rank()] if sendbuf is FakeMPI.IN_PLACE else sendbuf.reshape(-1)
        rows[...] = self.group.allgather(self.Get_rank(), mine)

    def Allreduce(self, sendbuf, recvbuf, op):  # noqa: N802
        assert op is FakeMPI.SUM and recvbuf.dtype == np.float64
        source = recvbuf if sendbuf is FakeMPI.IN_PLACE else sendbuf
        recvbuf[...] = self.group.allreduce(self.Get_rank(), source)


def test_readme_mpi4py_example_with_a_simulated_mpi(rng, monkeypatch):
    code = compile(readme_block("<!-- split-example"), README, "exec")
    sizes = (3, 1, 2)
    group = ThreadGroup(len(sizes))
    mpi = FakeMPI(group)
    monkeypatch.setitem(sys.modules, "mpi4py", types.SimpleNamespace(MPI=mpi))
    x = random_input(rng, (6, 16, 3, 4), "NCHW")
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def rank_main(rank):
        mpi.COMM_WORLD.local.rank = rank
        program = {"__name__": "readme_rank_%d" % rank}
        exec(code, program)  # each rank runs the README's module on its own
        part, dpart = parts_of(x, sizes)[rank], parts_of(dy, sizes)[rank]
        y, mean, invstd = program["forward"](part)
        dx, dweight, dbias = program["backward"](dpart, part, mean, invstd)
        return y, dx, dweight, dbias, program["running_mean"], program["running_var"]

    results = group.run(rank_main)

    bn = torch.nn.BatchNorm2d(16).double()
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    yt = bn(xt)
    yt.backward(torch.from_numpy(dy.astype(np.float64)))
    within("README y", np.concatenate([r[0] for r in results]), yt.detach().numpy(), Y_TOL)
    within("README dx", np.concatenate([r[1] for r in results]), xt.grad.numpy(), DX_TOL)
    within("README dweight", np.sum([r[2] for r in results], axis=0), bn.weight.grad.numpy(),
           grad_tol(72))
    within("README dbias", np.sum([r[3] for r in results], axis=0), bn.bias.grad.numpy(),
           grad_tol(72))
    for r in results:
        assert np.array_equal(r[4], results[0][4]) and np.array_equal(r[5], results[0][5])
        within("README running_mean", r[4], bn.running_mean.numpy(), RUNNING_TOL)
        within("README running_var", r[5], bn.running_var.numpy(), RUNNING_TOL)
    assert group.calls == [2] * len(sizes)
