"""Arrays are handed to C by address: results land in the caller's memory,
and inputs that would need a copy are refused unless copy=True."""

import ctypes

import numpy as np
import pytest
import torch

import bnorm
from conftest import assert_close, random_input


@pytest.fixture
def stats():
    return np.zeros(3, np.float32), np.ones(3, np.float32)


def test_out_is_the_callers_array(rng, stats):
    x = random_input(rng, (4, 3, 5), "NCHW")
    out = np.empty_like(x)
    address = out.ctypes.data

    y = bnorm.batch_norm(x, *stats, out=out)

    assert y is out and y.ctypes.data == address
    assert_close(out, bnorm.batch_norm(x, *stats))


def test_in_place_normalizes_the_input_itself(rng, stats):
    x = random_input(rng, (4, 3, 5), "NCHW")
    expected = bnorm.batch_norm(x, *stats, training=True)

    y = bnorm.batch_norm(x, *stats, training=True, out=x)

    assert y is x
    assert np.array_equal(x, expected)


def test_torch_tensor_numpy_view_is_used_without_copy(rng, stats):
    t = torch.from_numpy(random_input(rng, (4, 3, 5), "NCHW"))
    expected = bnorm.batch_norm(t.numpy(), *stats)

    y = bnorm.batch_norm(t.numpy(), *stats, out=t.numpy())

    assert y.ctypes.data == t.data_ptr()
    assert np.array_equal(t.numpy(), expected)  # the tensor itself changed


def test_input_reaches_c_at_its_own_address(rng, stats):
    # An output that partly overlaps the input is refused by the library, which
    # can only see that overlap if x arrived at its real address, uncopied.
    t = torch.zeros(4 * 3 * 5 + 1)
    x = t[:-1].numpy().reshape(4, 3, 5)
    shifted = t[1:].numpy().reshape(4, 3, 5)

    with pytest.raises(bnorm.AliasingError, match="overlaps"):
        bnorm.batch_norm(x, *stats, out=shifted)


def test_buffer_protocol_and_array_interface_objects_are_written_in_place(rng, stats):
    x = random_input(rng, (4, 3), "NCHW")
    expected = bnorm.batch_norm(x, *stats)

    raw = bytearray(x.nbytes)
    as_buffer = memoryview(raw).cast("B").cast("f", [4, 3])
    bnorm.batch_norm(memoryview(x), *stats, out=as_buffer)
    assert np.array_equal(np.frombuffer(raw, np.float32).reshape(4, 3), expected)

    class Foreign:
        """Some other library's array, seen only through __array_interface__."""
        def __init__(self, storage):
            self.storage = storage
            self.__array_interface__ = storage.__array_interface__

    foreign = Foreign(np.zeros((4, 3), np.float32))
    bnorm.batch_norm(Foreign(x), *stats, out=foreign)
    assert np.array_equal(foreign.storage, expected)


def test_ctypes_address_of_out_is_unchanged(rng, stats):
    x = random_input(rng, (2, 3, 2, 2), "NCHW")
    backing = (ctypes.c_float * x.size)()
    out = np.ctypeslib.as_array(backing).reshape(x.shape)

    bnorm.batch_norm(x, *stats, out=out)

    assert ctypes.addressof(backing) == out.ctypes.data
    assert np.array_equal(np.ctypeslib.as_array(backing).reshape(x.shape),
                          bnorm.batch_norm(x, *stats))


def test_non_contiguous_input_is_refused_unless_copy_is_asked_for(rng, stats):
    x = random_input(rng, (4, 5, 3), "NHWC").transpose(0, 2, 1)  # NCHW view, not dense

    with pytest.raises(bnorm.InvalidArgumentError, match="not C-contiguous"):
        bnorm.batch_norm(x, *stats)

    y = bnorm.batch_norm(x, *stats, copy=True)
    assert_close(y, bnorm.batch_norm(np.ascontiguousarray(x), *stats))


def test_wrong_dtype_is_refused_unless_copy_is_asked_for(rng, stats):
    x = random_input(rng, (4, 3, 5), "NCHW").astype(np.float64)

    with pytest.raises(bnorm.InvalidArgumentError, match="dtype float64"):
        bnorm.batch_norm(x, *stats)

    y = bnorm.batch_norm(x, *stats, copy=True)
    assert y.dtype == np.float32
    assert_close(y, bnorm.batch_norm(x.astype(np.float32), *stats))


def test_a_tensor_itself_needs_numpy_or_copy(rng, stats):
    t = torch.from_numpy(random_input(rng, (4, 3, 5), "NCHW"))

    with pytest.raises(bnorm.InvalidArgumentError, match=r"\.numpy\(\)"):
        bnorm.batch_norm(t, *stats)

    assert np.array_equal(bnorm.batch_norm(t, *stats, copy=True),
                          bnorm.batch_norm(t.numpy(), *stats))


def test_outputs_are_never_copied(rng, stats):
    x = random_input(rng, (4, 3, 5), "NCHW")
    strided_out = np.empty((4, 3, 10), np.float32)[:, :, ::2]
    running_mean64 = np.zeros(3)

    with pytest.raises(bnorm.InvalidArgumentError, match="outputs are never copied"):
        bnorm.batch_norm(x, *stats, out=strided_out, copy=True)
    # Running statistics are outputs in training, so a float64 one would be
    # updated in a copy and lost.
    with pytest.raises(bnorm.InvalidArgumentError, match="running_mean has dtype float64"):
        bnorm.batch_norm(x, running_mean64, stats[1], training=True, copy=True)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    with pytest.raises(bnorm.InvalidArgumentError, match="read-only"):
        bnorm.batch_norm(x, *stats, out=readonly)
