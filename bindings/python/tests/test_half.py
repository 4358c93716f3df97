"""bfloat16 and float16 tensors through every entry point.

The library's contract, checked call by call. Forward calls: a 2-byte output
is the float32 call's output on the same (widened) inputs, rounded to nearest
even, bit for bit; per-channel outputs are the float32 call's, bit for bit.
And against PyTorch in float64, rounded to the format, every output is within
1 ulp, except where float32 arithmetic itself misses the float64 value by more
than half an ulp of the format (cancellation): there the float32 result must
be within the float32 suite's tolerance, and it is what got rounded.
Backward calls (since libbnorm 1.4.0) compute in double, so they are not the
float32 call's: dx is within 1 ulp of the float64 reference everywhere,
cancellation included; dweight and dbias are as near it as test_backward asks
of float32; d_residual is dy masked by the ReLU, exactly; and in place, or
split into backward_reduce and backward_elementwise, a backward gives the same
bits as batch_norm_backward.

float16 arrays are recognized by their dtype; bfloat16 is a uint16 array of
the bits, passed with dtype="bfloat16".
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnorm
from conftest import assert_close, numpy_from_torch, random_input, random_vector, torch_view
from half_formats import BFLOAT16, FLOAT16, FORMATS
from test_backward import gradient_tolerance
from test_residual import README, readme_block

LAYOUTS = ("NCHW", "NHWC")
CASES = [(layout, c, spatial) for layout in LAYOUTS for c in (1, 3, 17, 67)
         for spatial in ((1, 1), (3, 5))]


def case_id(case):
    layout, c, spatial = case
    return "%s-C%d-%s" % (layout, c, "x".join(map(str, spatial)))


@pytest.fixture(params=FORMATS, ids=str)
def fmt(request):
    return request.param


@pytest.fixture(params=CASES, ids=case_id)
def case(request):
    return request.param


@pytest.fixture(scope="module")
def measured():
    """Worst errors against the float64 references, per format and output;
    printed at the end of the module (visible with pytest -s)."""
    worst = {}
    yield worst
    print("\nbfloat16/float16 outputs against float64 references rounded to the format:")
    for (fmt, what), (ulps, error, values, exact, past) in sorted(worst.items()):
        print("  %-8s %-23s %6d values: max %.0f ulp from the rounded reference (%.3f from "
              "float64), %6.2f%% equal, %d past 1 ulp" % (fmt, what, values, ulps, error,
                                                          100.0 * exact / values, past))


class Data:
    """One case's inputs: each tensor in the format (x, dy, r) and widened to
    float32 exactly (xu, dyu, ru); per-channel vectors float32. shape is
    (N, C, ...) whatever the layout; self.shape is in memory order."""

    def __init__(self, rng, fmt, layout, shape):
        self.fmt, self.layout, self.c = fmt, layout, shape[1]
        self.shape = shape if layout == "NCHW" else (shape[0],) + shape[2:] + (shape[1],)
        self.x, self.xu = self.tensor(random_input(rng, self.shape, self.layout))
        self.dy, self.dyu = self.tensor(rng.standard_normal(self.shape))
        self.r, self.ru = self.tensor(rng.standard_normal(self.shape))
        self.weight = random_vector(rng, self.c, 0.5, 1.5)
        self.bias = random_vector(rng, self.c, -1, 1)
        self.running_mean = random_vector(rng, self.c, -1, 1)
        self.running_var = random_vector(rng, self.c, 0.5, 2)
        self.kw = dict(layout=self.layout, **fmt.call_kwargs())

    @classmethod
    def of_case(cls, rng, fmt, case):
        layout, c, spatial = case
        return cls(rng, fmt, layout, (5 if spatial == (1, 1) else 3, c) + spatial)

    def tensor(self, values):
        stored = self.fmt.encode(np.asarray(values, np.float32))
        return stored, self.fmt.decode(stored)

    def widen(self, stored):
        return self.fmt.decode(stored)

    def stats(self, training=True):
        """Fresh running statistics, and save_* buffers in training, for one
        forward."""
        stats = dict(running_mean=self.running_mean.copy(), running_var=self.running_var.copy())
        if training:
            stats.update(save_mean=np.empty(self.c, np.float32),
                         save_invstd=np.empty(self.c, np.float32))
        return stats


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
        a.view(np.uint8), b.view(np.uint8))


def assert_rounded(out, out32, fmt):
    """out is the float32 result out32 rounded to nearest even, bit for bit."""
    assert out.dtype == fmt.storage and out.shape == out32.shape
    got, expected = fmt.bits(out), fmt.bits(fmt.encode(out32))
    wrong = np.flatnonzero(got != expected)
    assert wrong.size == 0, (
        "%d of %d values are not the float32 result rounded; first at %d: got 0x%04x, "
        "expected 0x%04x (float32 %r)" % (wrong.size, got.size, wrong[0], got.flat[wrong[0]],
                                          expected.flat[wrong[0]], out32.flat[wrong[0]]))


def assert_near_reference(out, out32, ref, fmt, measured, what):
    """Within 1 ulp of the float64 reference rounded to the format, unless the
    float32 result out32 itself is more than half an ulp away (then within the
    float32 tolerance: 1e-5 of the largest magnitude plus 1e-4 relative).
    out32 None (a backward's tensor, computed in double): no such allowance."""
    ref = np.asarray(ref, np.float64)
    assert np.isfinite(ref).all()
    got = fmt.decode(out).astype(np.float64)
    rounded = fmt.round_double(ref)
    ulps = np.abs(got - rounded) / fmt.ulp(rounded)
    cancelled = False
    if out32 is not None:
        float32_error = np.abs(out32.astype(np.float64) - ref)
        float32_tolerance = 1e-5 * max(1.0, float(np.abs(ref).max())) + 1e-4 * np.abs(ref)
        cancelled = (float32_error > fmt.ulp(ref) / 2) & (float32_error <= float32_tolerance)
    bad = np.flatnonzero((ulps > 1) & ~cancelled)
    assert bad.size == 0, (
        "%s: %d values off by more than 1 ulp; first at %d: got %r, float64 %r (%.2f ulp)%s"
        % (what, bad.size, bad[0], got.flat[bad[0]], ref.flat[bad[0]], ulps.flat[bad[0]],
           "" if out32 is None else ", float32 %r" % out32.flat[bad[0]]))
    key = (str(fmt), what)
    old = measured.get(key, (0.0, 0.0, 0, 0, 0))
    unrounded = float((np.abs(got - ref) / fmt.ulp(ref)).max())
    measured[key] = (max(old[0], float(ulps.max())), max(old[1], unrounded), old[2] + ulps.size,
                     old[3] + int(np.count_nonzero(ulps == 0)),
                     old[4] + int(np.count_nonzero(ulps > 1)))


def assert_backward_near_reference(d, dx, dweight, dbias, ref, measured, what):
    """A backward call's outputs against reference_backward's ref: dx within 1
    ulp of it (no float32 allowance: the call computes in double), and the
    float32 dweight and dbias within test_backward's tolerance."""
    assert dx.dtype == d.fmt.storage and dx.shape == d.x.shape
    assert_near_reference(dx, None, ref[0], d.fmt, measured, what)
    for got, want in zip((dweight, dbias), ref[2:]):
        assert got.dtype == np.float32
        assert_close(got, want, atol=gradient_tolerance(d.x.size // d.c))


# ------------------------------------------------------- float64 references

def as_torch(a, layout):
    return torch_view(np.asarray(a, np.float64), layout)


def vector64(v):
    return None if v is None else torch.from_numpy(np.asarray(v, np.float64))


def reference_forward(d, training, fuse_relu, residual=None):
    y = F.batch_norm(as_torch(d.xu, d.layout), vector64(d.running_mean),
                     vector64(d.running_var), vector64(d.weight), vector64(d.bias),
                     training=training)
    if residual is not None:
        y = y + as_torch(residual, d.layout)
    if fuse_relu:
        y = F.relu(y)
    return numpy_from_torch(y, d.layout)


def reference_backward(d, training, fuse_relu, residual=False, affine=True):
    """(dx, d_residual, dweight, dbias) from float64 autograd through batch
    norm (+ the residual add) (+ ReLU), for the output gradient dyu. Not
    affine: weight 1 and bias 0, whose gradients are still returned."""
    xt = as_torch(d.xu, d.layout).clone().requires_grad_(True)
    rt = as_torch(d.ru, d.layout).clone().requires_grad_(True)
    wt = vector64(d.weight if affine else np.ones(d.c)).requires_grad_(True)
    bt = vector64(d.bias if affine else np.zeros(d.c)).requires_grad_(True)
    y = F.batch_norm(xt, vector64(d.running_mean), vector64(d.running_var), wt, bt,
                     training=training)
    if residual:
        y = y + rt
    if fuse_relu:
        y = F.relu(y)
    y.backward(as_torch(d.dyu, d.layout))
    return (numpy_from_torch(xt.grad, d.layout),
            numpy_from_torch(rt.grad, d.layout) if residual else None,
            wt.grad.numpy(), bt.grad.numpy())


def per_channel(d, v):
    """A per-channel float32 vector broadcast along x's channel axis, float64."""
    shape = [1] * len(d.shape)
    shape[1 if d.layout == "NCHW" else -1] = d.c
    return np.asarray(v, np.float64).reshape(shape)


# --------------------------------------------------------- every entry point

def test_training_forward(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    for fuse_relu in (False, True):
        half, single = d.stats(), d.stats()
        y = bnorm.batch_norm(d.x, weight=d.weight, bias=d.bias, training=True,
                             fuse_relu=fuse_relu, **half, **d.kw)
        y32 = bnorm.batch_norm(d.xu, weight=d.weight, bias=d.bias, training=True,
                               fuse_relu=fuse_relu, layout=d.layout, **single)

        assert_rounded(y, y32, fmt)
        assert all(same_bits(half[k], single[k]) for k in half)
        assert_near_reference(y, y32, reference_forward(d, True, fuse_relu), fmt, measured,
                              "training y")
        x = d.x.copy()
        assert bnorm.batch_norm(x, weight=d.weight, bias=d.bias, training=True,
                                fuse_relu=fuse_relu, out=x, **d.stats(), **d.kw) is x
        assert same_bits(x, y)


def test_training_backward(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    for fuse_relu in (False, True):
        s = d.stats()
        y = bnorm.batch_norm(d.x, None, None, d.weight, d.bias, training=True,
                             fuse_relu=fuse_relu, save_mean=s["save_mean"],
                             save_invstd=s["save_invstd"], **d.kw)
        saved = (s["save_mean"], s["save_invstd"])

        dx, dweight, dbias = bnorm.batch_norm_backward(d.dy, d.x, d.weight, *saved, y=y,
                                                       fuse_relu=fuse_relu, **d.kw)

        assert_backward_near_reference(d, dx, dweight, dbias,
                                       reference_backward(d, True, fuse_relu), measured,
                                       "training dx")
        dy = d.dy.copy()
        assert bnorm.batch_norm_backward(dy, d.x, d.weight, *saved, y=y, fuse_relu=fuse_relu,
                                         out=dy, **d.kw)[0] is dy
        assert same_bits(dy, dx)


def test_eval_forward(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    for fuse_relu in (False, True):
        args = (d.running_mean, d.running_var, d.weight, d.bias)
        y = bnorm.batch_norm(d.x, *args, fuse_relu=fuse_relu, **d.kw)
        y32 = bnorm.batch_norm(d.xu, *args, fuse_relu=fuse_relu, layout=d.layout)

        assert_rounded(y, y32, fmt)
        assert_near_reference(y, y32, reference_forward(d, False, fuse_relu), fmt, measured,
                              "eval y")
        x = d.x.copy()
        assert bnorm.batch_norm(x, *args, fuse_relu=fuse_relu, out=x, **d.kw) is x
        assert same_bits(x, y)


def test_eval_backward(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    for fuse_relu in (False, True):
        frozen = dict(training=False, running_mean=d.running_mean, running_var=d.running_var,
                      fuse_relu=fuse_relu)
        y = bnorm.batch_norm(d.x, d.running_mean, d.running_var, d.weight, d.bias,
                             fuse_relu=fuse_relu, **d.kw)

        dx, dweight, dbias = bnorm.batch_norm_backward(d.dy, d.x, d.weight, y=y, **frozen,
                                                       **d.kw)

        assert_backward_near_reference(d, dx, dweight, dbias,
                                       reference_backward(d, False, fuse_relu), measured,
                                       "eval dx")


def test_residual_forward(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    for training, fuse_relu in ((True, True), (True, False), (False, True)):
        half, single = d.stats(training), d.stats(training)
        y = bnorm.batch_norm(d.x, weight=d.weight, bias=d.bias, training=training,
                             fuse_relu=fuse_relu, residual=d.r, **half, **d.kw)
        y32 = bnorm.batch_norm(d.xu, weight=d.weight, bias=d.bias, training=training,
                               fuse_relu=fuse_relu, residual=d.ru, layout=d.layout, **single)

        assert_rounded(y, y32, fmt)
        assert all(same_bits(half[k], single[k]) for k in half)
        assert_near_reference(y, y32, reference_forward(d, training, fuse_relu, d.ru), fmt,
                              measured, "residual y")
        r = d.r.copy()
        assert bnorm.batch_norm(d.x, weight=d.weight, bias=d.bias, training=training,
                                fuse_relu=fuse_relu, residual=r, out=r, **d.stats(training),
                                **d.kw) is r
        assert same_bits(r, y)


def test_residual_backward(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    for training in (True, False):
        s = d.stats()
        if training:
            y = bnorm.batch_norm(d.x, None, None, d.weight, d.bias, training=True,
                                 fuse_relu=True, residual=d.r, save_mean=s["save_mean"],
                                 save_invstd=s["save_invstd"], **d.kw)
            stats = dict(save_mean=s["save_mean"], save_invstd=s["save_invstd"])
        else:
            y = bnorm.batch_norm(d.x, d.running_mean, d.running_var, d.weight, d.bias,
                                 fuse_relu=True, residual=d.r, **d.kw)
            stats = dict(training=False, running_mean=d.running_mean,
                         running_var=d.running_var)

        dx, d_residual, dweight, dbias = bnorm.batch_norm_backward_residual(
            d.dy, d.x, d.weight, y=y, fuse_relu=True, **stats, **d.kw)
        # d_residual is dy masked by the ReLU: the float32 call's, rounded (exact).
        d_residual32 = bnorm.batch_norm_backward_residual(
            d.dyu, d.xu, d.weight, y=d.widen(y), fuse_relu=True, layout=d.layout, **stats)[1]

        assert_rounded(d_residual, d_residual32, fmt)
        ref = reference_backward(d, training, True, residual=True)
        assert_backward_near_reference(d, dx, dweight, dbias, ref, measured, "residual dx")
        assert_near_reference(d_residual, None, ref[1], fmt, measured, "residual d_res")
        dy = d.dy.copy()
        assert bnorm.batch_norm_backward_residual(dy, d.x, d.weight, y=y, fuse_relu=True,
                                                  out_residual=dy, **stats, **d.kw)[1] is dy
        assert same_bits(dy, d_residual)


def test_scale_shift(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    scale, shift = bnorm.fold_scale_shift(d.running_mean, d.running_var, d.weight, d.bias)
    for fuse_relu in (False, True):
        y = bnorm.batch_norm_scale_shift(d.x, scale, shift, fuse_relu=fuse_relu, **d.kw)
        y32 = bnorm.batch_norm_scale_shift(d.xu, scale, shift, fuse_relu=fuse_relu,
                                           layout=d.layout)

        assert_rounded(y, y32, fmt)
        ref = d.xu.astype(np.float64) * per_channel(d, scale) + per_channel(d, shift)
        assert_near_reference(y, y32, np.maximum(ref, 0) if fuse_relu else ref, fmt, measured,
                              "scale_shift y")
        x = d.x.copy()
        assert bnorm.batch_norm_scale_shift(x, scale, shift, fuse_relu=fuse_relu, out=x,
                                            **d.kw) is x
        assert same_bits(x, y)


def test_split_phases(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    block = bnorm.local_stats(d.x, **d.kw)
    assert same_bits(block, bnorm.local_stats(d.xu, layout=d.layout))
    mean, invstd = bnorm.merge_stats(block)
    for fuse_relu in (False, True):
        y = bnorm.forward_normalize(d.x, mean, invstd, d.weight, d.bias, fuse_relu=fuse_relu,
                                    **d.kw)
        y32 = bnorm.forward_normalize(d.xu, mean, invstd, d.weight, d.bias,
                                      fuse_relu=fuse_relu, layout=d.layout)
        assert_rounded(y, y32, fmt)
        ref = ((d.xu - per_channel(d, mean)) * per_channel(d, invstd) * per_channel(d, d.weight)
               + per_channel(d, d.bias))
        assert_near_reference(y, y32, np.maximum(ref, 0) if fuse_relu else ref, fmt, measured,
                              "forward_normalize y")

        # The split backward is batch_norm_backward's, bit for bit.
        whole = bnorm.batch_norm_backward(d.dy, d.x, d.weight, mean, invstd, y=y,
                                          fuse_relu=fuse_relu, **d.kw)
        sums, dweight, dbias = bnorm.backward_reduce(d.dy, d.x, mean, invstd, y=y,
                                                     fuse_relu=fuse_relu, **d.kw)
        assert same_bits(dweight, whole[1]) and same_bits(dbias, whole[2])
        assert sums.dtype == np.float64 and np.all(sums[:, 0] == d.x.size // d.c)

        dx = bnorm.backward_elementwise(d.dy, d.x, mean, invstd, sums, d.weight, y=y,
                                        fuse_relu=fuse_relu, **d.kw)
        assert same_bits(dx, whole[0])
        assert_backward_near_reference(d, dx, dweight, dbias,
                                       reference_backward(d, True, fuse_relu), measured,
                                       "backward_elementwise dx")
        dy = d.dy.copy()
        assert bnorm.backward_elementwise(dy, d.x, mean, invstd, sums, d.weight, y=y,
                                          fuse_relu=fuse_relu, out=dy, **d.kw) is dy
        assert same_bits(dy, dx)


def layer_pair(cls, d, **kwargs):
    """The same layer twice: one for the format, one for float32."""
    layers = [cls(d.c, layout=d.layout, fuse_relu=True, **kwargs) for _ in range(2)]
    for layer in layers:
        layer.weight[...], layer.bias[...] = d.weight, d.bias
    return layers


def layer_state(layer):
    return [layer.running_mean, layer.running_var, layer.save_mean, layer.save_invstd]


def test_layers(fmt, case, rng, measured):
    d = Data.of_case(rng, fmt, case)
    kw = fmt.call_kwargs()
    half, single = layer_pair(bnorm.BatchNorm2d, d)
    y = half(d.x, **kw)
    y32 = single(d.xu)
    assert_rounded(y, y32, fmt)
    assert all(same_bits(a, b) for a, b in zip(layer_state(half), layer_state(single)))
    dx, dweight, dbias = half.backward(d.dy, d.x, y=y, **kw)
    assert_backward_near_reference(d, dx, dweight, dbias, reference_backward(d, True, True),
                                   measured, "layer dx")
    y = half(d.x, residual=d.r, **kw)
    assert_rounded(y, single(d.xu, residual=d.ru), fmt)
    dx, d_residual, dweight, dbias = half.backward_residual(d.dy, d.x, y=y, **kw)
    d_residual32 = single.backward_residual(d.dyu, d.xu, y=d.widen(y))[1]
    assert same_bits(d_residual, fmt.encode(d_residual32))
    assert_backward_near_reference(d, dx, dweight, dbias,
                                   reference_backward(d, True, True, residual=True), measured,
                                   "layer residual dx")

    half.eval(), single.eval()
    x = d.x.copy()
    assert half(x, out=x, **kw) is x
    assert_rounded(x, single(d.xu), fmt)

    sync, sync32 = layer_pair(bnorm.SyncBatchNorm, d, allgather=lambda block: [block])
    y = sync(d.x, **kw)
    assert_rounded(y, sync32(d.xu), fmt)
    assert all(same_bits(a, b) for a, b in zip(layer_state(sync), layer_state(sync32)))
    dx, dweight, dbias = sync.backward(d.dy, d.x, y=y, **kw)
    assert_backward_near_reference(d, dx, dweight, dbias, reference_backward(d, True, True),
                                   measured, "SyncBatchNorm dx")


@pytest.mark.parametrize("rank", [2, 3, 5])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_other_ranks(fmt, rank, layout, rng, measured):
    d = Data(rng, fmt, layout, (6, 4, 3, 2, 5)[:rank])
    s, s32 = d.stats(), d.stats()

    y = bnorm.batch_norm(d.x, training=True, **s, **d.kw)
    assert_rounded(y, bnorm.batch_norm(d.xu, training=True, layout=layout, **s32), fmt)
    assert all(same_bits(s[k], s32[k]) for k in s)
    dx, dweight, dbias = bnorm.batch_norm_backward(d.dy, d.x, None, s["save_mean"],
                                                   s["save_invstd"], **d.kw)
    assert_backward_near_reference(d, dx, dweight, dbias,
                                   reference_backward(d, True, False, affine=False), measured,
                                   "rank %d dx" % rank)


@pytest.mark.parametrize("c", [1, 3, 17, 67])
def test_agrees_with_torchs_own_bfloat16_batch_norm(c, rng):
    # PyTorch 1.13 has batch norm in bfloat16 on the CPU (not in float16).
    # Channels first only: its channels-last bfloat16 paths round along the
    # way (their dx is off by hundreds of ulps from float64 where this
    # library's is within 1).
    d = Data(rng, BFLOAT16, "NCHW", (3, c, 3, 5))
    xt = torch.from_numpy(d.xu).to(torch.bfloat16).requires_grad_(True)
    for training in (True, False):
        s = d.stats(training)
        y = bnorm.batch_norm(d.x, weight=d.weight, bias=d.bias, training=training, **s, **d.kw)
        yt = F.batch_norm(xt, torch.from_numpy(d.running_mean.copy()),
                          torch.from_numpy(d.running_var.copy()), torch.from_numpy(d.weight),
                          torch.from_numpy(d.bias), training=training)
        assert within_one_ulp(y, yt)
        xt.grad = None
        yt.backward(torch.from_numpy(d.dyu).to(torch.bfloat16))
        grads = (bnorm.batch_norm_backward(d.dy, d.x, d.weight, s["save_mean"], s["save_invstd"],
                                           **d.kw) if training else
                 bnorm.batch_norm_backward(d.dy, d.x, d.weight, training=False,
                                           running_mean=d.running_mean,
                                           running_var=d.running_var, **d.kw))
        assert within_one_ulp(grads[0], xt.grad)


def within_one_ulp(bits, torch_bfloat16):
    ours = BFLOAT16.decode(bits).astype(np.float64)
    theirs = torch_bfloat16.detach().double().numpy()
    return bool(np.all(np.abs(ours - theirs) <= BFLOAT16.ulp(theirs)))


# ------------------------------------------------- memory: zero copy, in place

def test_torch_tensors_are_written_in_place_through_numpy_views(rng):
    x = random_input(rng, (4, 3, 5), "NCHW")
    stats = np.zeros(3, np.float32), np.ones(3, np.float32)

    half = torch.from_numpy(x).half()
    expected = bnorm.batch_norm(half.numpy().copy(), *stats)
    assert bnorm.batch_norm(half.numpy(), *stats, out=half.numpy()).ctypes.data == \
        half.data_ptr()
    assert np.array_equal(half.numpy(), expected)

    # NumPy cannot hold torch.bfloat16; its bits can, viewed as int16 then uint16.
    brain = torch.from_numpy(x).bfloat16()
    bits = brain.view(torch.int16).numpy().view(np.uint16)
    expected = bnorm.batch_norm(bits.copy(), *stats, dtype="bfloat16")
    y = bnorm.batch_norm(bits, *stats, out=bits, dtype="bfloat16")
    assert y.ctypes.data == brain.data_ptr()
    assert np.array_equal(brain.view(torch.int16).numpy().view(np.uint16), expected)


def test_copy_converts_every_tensor_to_the_calls_dtype(rng):
    x = random_input(rng, (4, 3, 5), "NCHW")
    residual = rng.standard_normal(x.shape).astype(np.float32)
    stats = np.zeros(3, np.float32), np.ones(3, np.float32)

    # Into bfloat16 from float32 (and float64), rounded to nearest even.
    y = bnorm.batch_norm(x, *stats, residual=residual, dtype="bfloat16", copy=True)
    assert same_bits(y, bnorm.batch_norm(BFLOAT16.encode(x), *stats, dtype="bfloat16",
                                         residual=BFLOAT16.encode(residual)))
    assert same_bits(bnorm.batch_norm(x.astype(np.float64), *stats, dtype="bfloat16", copy=True),
                     bnorm.batch_norm(BFLOAT16.encode(x), *stats, dtype="bfloat16"))
    # x's dtype decides: a float32 residual joins a float16 x.
    x16 = x.astype(np.float16)
    assert same_bits(bnorm.batch_norm(x16, *stats, residual=residual, copy=True),
                     bnorm.batch_norm(x16, *stats, residual=residual.astype(np.float16)))
    assert same_bits(bnorm.batch_norm(x, *stats, dtype="float16", copy=True),
                     bnorm.batch_norm(x16, *stats))
    # What gets copied keeps its dtype: a torch.float16 tensor stays float16.
    assert same_bits(bnorm.batch_norm(torch.from_numpy(x16), *stats, copy=True),
                     bnorm.batch_norm(x16, *stats))


def test_readme_half_example_runs():
    program = {"__name__": "readme_half"}
    exec(compile(readme_block("<!-- half-example"), README, "exec"), program)
    x, x_bits, y, y16 = program["x"], program["x_bits"], program["y"], program["y16"]
    stats = program["running_mean"], program["running_var"]
    assert y16.dtype == np.float16 and program["y_bits"].dtype == np.uint16
    assert same_bits(x_bits, BFLOAT16.encode(x))
    # Each the float32 call on the widened input, rounded.
    x16 = x.astype(np.float16)
    assert same_bits(y16, FLOAT16.encode(bnorm.batch_norm(FLOAT16.decode(x16), *stats)))
    assert same_bits(y, BFLOAT16.decode(BFLOAT16.encode(bnorm.batch_norm(
        BFLOAT16.decode(x_bits), *stats))))
    # The tensor itself was normalized, as the bits were.
    t_bits = program["t"].view(torch.int16).numpy().view(np.uint16)
    assert same_bits(t_bits, program["y_bits"])
    bn = program["bn"]
    assert bn.num_batches_tracked == 1 and bn.running_mean.dtype == np.float32
    assert program["dx_bits"].dtype == np.uint16 and program["dweight"].dtype == np.float32


# ------------------------------------------------------------- conversions

def test_to_bfloat16_rounds_to_nearest_even():
    words = np.array([
        0x3F808000,  # 1 + 2^-8: a tie, to the even 1
        0x3F818000,  # a tie, to the even 1 + 2^-6
        0x3F808001,  # just past a tie: up
        0x3F807FFF,  # just below: down
        0x7F7FFFFF,  # the largest float32: past bfloat16's largest, inf
        0x00008000, 0x00018000,  # subnormal ties: to even
        0x80000000, 0x7F800000, 0xFF800000,  # -0, inf, -inf
        0x7F800001, 0xFFC00001,  # signalling NaN quieted; a quiet NaN stays one
    ], np.uint32)
    expected = np.array([0x3F80, 0x3F82, 0x3F81, 0x3F80, 0x7F80, 0x0000, 0x0002, 0x8000,
                         0x7F80, 0xFF80, 0x7FC0, 0xFFC0], np.uint16)
    assert np.array_equal(bnorm.to_bfloat16(words.view(np.float32)), expected)
    assert np.array_equal(BFLOAT16.encode(words.view(np.float32)), expected)

    random_words = np.random.default_rng(5).integers(0, 2**32, 200000, np.uint64)
    f32 = random_words.astype(np.uint32).view(np.float32)
    assert np.array_equal(bnorm.to_bfloat16(f32), BFLOAT16.encode(f32))


def test_to_bfloat16_rounds_float64_once():
    # 1 + 2^-8 + 2^-30 is just past a bfloat16 tie; through float32 it would
    # first become the tie itself and then round down to even.
    just_past = 1 + 2.0 ** -8 + 2.0 ** -30
    assert bnorm.to_bfloat16(np.float32(just_past)) == 0x3F80
    assert bnorm.to_bfloat16(np.float64(just_past)) == 0x3F81

    values = np.random.default_rng(6).standard_normal(100000) * 10.0 ** np.arange(-40, 40, 0.0008)
    values = np.concatenate([values, [3.5e38, -3.4e38, 1e-45, 0.0, np.inf, np.nan]])
    converted = BFLOAT16.decode(bnorm.to_bfloat16(values)).astype(np.float64)
    expected = BFLOAT16.round_double(values)
    assert np.array_equal(converted, expected, equal_nan=True)
    # The oracle's own check: its float16 rounding is NumPy's float64 -> float16 cast.
    finite = values[np.abs(values) < 1e5]
    with np.errstate(over="ignore"):  # past 65520 NumPy's cast warns, as it overflows to inf
        assert np.array_equal(FLOAT16.round_double(finite), finite.astype(np.float16))


def test_from_bfloat16_widens_every_pattern_exactly():
    every = np.arange(2**16, dtype=np.uint16)
    widened = bnorm.from_bfloat16(every)
    assert widened.dtype == np.float32
    assert np.array_equal(widened.view(np.uint32) >> 16, every)
    # And back: exact, except that NaNs come back quiet.
    nan = np.isnan(widened)
    assert np.array_equal(bnorm.to_bfloat16(widened), np.where(nan, every | 0x40, every))


# ------------------------------------------------------------------- errors

@pytest.fixture
def parts(rng):
    x = random_input(rng, (4, 3, 5), "NCHW")
    return dict(x16=x.astype(np.float16), xb=BFLOAT16.encode(x), x32=x,
                stats=(np.zeros(3, np.float32), np.ones(3, np.float32)))


def raised(cls, call):
    with pytest.raises(cls) as caught:
        call()
    return caught.value


def test_uint16_is_bfloat16_only_when_the_call_says_so(parts):
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(parts["xb"],
                                                                        *parts["stats"]))
    assert error.message == ("x has dtype uint16; bnorm takes float32 (pass copy=True to "
                             "convert); a uint16 array of bfloat16 bits needs dtype='bfloat16'")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        parts["x32"], *parts["stats"], dtype="bfloat16"))
    assert error.message == ("x has dtype float32; dtype='bfloat16' takes uint16 arrays of "
                             "bfloat16 bits (pass copy=True to convert, or "
                             "bnorm.to_bfloat16(x) for its bits)")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        parts["x32"], *parts["stats"], dtype="float16"))
    assert error.message.startswith("x has dtype float32; bnorm takes float16")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        parts["x16"], *parts["stats"], dtype="int8"))
    assert error.message.startswith("dtype is 'int8'; it must be None (x's own")


def test_mixed_dtypes_are_refused_before_the_call(parts):
    x16, xb, x32, stats = parts["x16"], parts["xb"], parts["x32"], parts["stats"]
    running_mean = stats[0].copy()
    out = np.full(x16.shape, 7, np.float16)

    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        x16, running_mean, stats[1], training=True, residual=x32, out=out))
    assert error.message == ("residual has dtype float32 but x is float16; every tensor of a "
                             "call has x's dtype (pass copy=True to convert)")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        xb, running_mean, stats[1], training=True, residual=x16, dtype="bfloat16"))
    assert error.message.startswith("residual has dtype float16 but x is bfloat16 (uint16 bits)")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        x32, running_mean, stats[1], training=True, out=out))
    assert error.message == ("out has dtype float16 but x is float32; every tensor of a call "
                             "has x's dtype (outputs are never copied)")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm_backward(
        x16, xb, None, *stats, dtype="bfloat16"))
    assert error.message.startswith("grad_output has dtype float16 but x is bfloat16")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.backward_elementwise(
        x16, x16, *stats, np.ones((3, 3)), y=x32))
    assert error.message.startswith("y has dtype float32 but x is float16")
    # A float16 x with a bfloat16 output: same width, still refused.
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        x16, *stats, out=np.empty(x16.shape, np.uint16)))
    assert error.message.startswith("out has dtype uint16 but x is float16")
    assert np.all(out == 7) and np.all(running_mean == 0)


def test_per_channel_vectors_stay_float32(parts):
    x16, stats = parts["x16"], parts["stats"]
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        x16, stats[0].astype(np.float16), stats[1]))
    assert error.message == ("running_mean has dtype float16; per-channel vectors are float32 "
                             "whatever the tensors' dtype (pass copy=True to convert)")
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
        x16, *stats, training=True, save_mean=np.empty(3, np.float16)))
    assert error.message.startswith("save_mean has dtype float16; per-channel vectors are")
    # copy=True converts an input vector (never an output).
    assert same_bits(bnorm.batch_norm(x16, stats[0].astype(np.float16), stats[1], copy=True),
                     bnorm.batch_norm(x16, *stats))


def test_layers_check_dtypes_too(parts):
    x16, xb = parts["x16"], parts["xb"]
    layer = bnorm.BatchNorm1d(3)
    error = raised(bnorm.InvalidArgumentError, lambda: layer(x16, residual=parts["x32"]))
    assert error.message.startswith("residual has dtype float32 but x is float16")
    error = raised(bnorm.InvalidArgumentError, lambda: layer(xb))
    assert error.message.endswith("a uint16 array of bfloat16 bits needs dtype='bfloat16'")
    assert layer.num_batches_tracked == 0 and layer.save_mean is None


def test_a_torch_bfloat16_tensor_is_told_how_to_pass_its_bits(parts):
    tensor = torch.from_numpy(parts["x32"]).bfloat16()
    for copy in (False, True):
        error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(
            tensor, *parts["stats"], dtype="bfloat16", copy=copy))
        assert error.message.endswith("for a torch.bfloat16 tensor t, pass "
                                      "t.view(torch.int16).numpy().view(numpy.uint16) with "
                                      "dtype='bfloat16'")


def test_misaligned_half_data_is_the_librarys_invalid_argument(parts):
    memory = np.zeros(122, np.uint8)[1:121]
    misaligned = memory.view(np.float16).reshape(4, 3, 5)
    assert not misaligned.flags.aligned
    error = raised(bnorm.InvalidArgumentError,
                   lambda: bnorm.batch_norm(misaligned, *parts["stats"]))
    assert "is not aligned to 2 bytes" in error.message
