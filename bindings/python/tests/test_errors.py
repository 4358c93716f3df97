"""Every bnorm_status has its exception class, each one reachable, carrying
the status code and (when the library failed) the library's own message."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bnorm
from bnorm import errors


@pytest.fixture
def x(rng):
    return rng.standard_normal((4, 3, 5)).astype(np.float32)


@pytest.fixture
def stats():
    return np.zeros(3, np.float32), np.ones(3, np.float32)


def raised(cls, call):
    with pytest.raises(cls) as caught:
        call()
    return caught.value


def test_null_pointer_is_the_librarys_report(x):
    # Inference needs statistics; the library names the missing one.
    error = raised(bnorm.NullPointerError, lambda: bnorm.batch_norm(x, None, None))
    assert error.status == 1 and error.message == "mean is NULL"


def test_fused_relu_backward_without_y_is_a_null_pointer(x, stats):
    error = raised(bnorm.NullPointerError, lambda: bnorm.batch_norm_backward(
        x, x, save_mean=stats[0], save_invstd=stats[1], fuse_relu=True))
    assert "y is NULL" in error.message


def test_invalid_descriptor_for_a_layer_without_channels():
    error = raised(bnorm.InvalidDescriptorError, lambda: bnorm.BatchNorm(0))
    assert error.status == 2 and error.message == "num_features is 0; it must be > 0"


@pytest.mark.parametrize("shape, message", [
    ((15,), "rank is 1; it must be 2 to 5"),
    ((4, 3, 0), "dims[2] is 0; every dimension must be > 0"),
    ((1, 3, 1, 1, 1, 1), "rank 6"),  # beyond what bnorm_shape holds: checked in Python
])
def test_invalid_shape(shape, message):
    error = raised(bnorm.InvalidShapeError,
                   lambda: bnorm.batch_norm(np.ones(shape, np.float32), None, None,
                                            training=True))
    assert error.status == 3 and message in error.message


def test_feature_mismatch_from_the_library_and_from_vector_lengths(x, stats):
    layer = bnorm.BatchNorm1d(4)
    error = raised(bnorm.FeatureMismatchError, lambda: layer(x))
    assert error.message == "input channel dimension (dim 1) is 3 but num_features is 4"
    # C cannot see a vector's length, so Python checks it before the call.
    error = raised(bnorm.FeatureMismatchError,
                   lambda: bnorm.batch_norm(x, *stats, weight=np.ones(2, np.float32)))
    assert error.status == 4 and "weight has shape (2,)" in error.message


@pytest.mark.parametrize("kwargs, message", [
    (dict(eps=0.0), "eps is 0; it must be finite and > 0"),
    (dict(momentum=1.5, training=True), "momentum is 1.5; it must be in [0, 1]"),
    (dict(num_threads=-1), "num_threads is -1; it must be >= 0"),
    (dict(layout="NCWH"), "layout is 'NCWH'"),
])
def test_invalid_argument(x, stats, kwargs, message):
    error = raised(bnorm.InvalidArgumentError, lambda: bnorm.batch_norm(x, *stats, **kwargs))
    assert error.status == 5 and message in error.message


def test_misaligned_data_is_the_librarys_invalid_argument(stats):
    misaligned = np.zeros(61, np.float32).view(np.uint8)[1:241].view(np.float32)
    assert not misaligned.flags.aligned
    error = raised(bnorm.InvalidArgumentError,
                   lambda: bnorm.batch_norm(misaligned.reshape(4, 3, 5), *stats))
    assert "is not aligned to 4 bytes" in error.message


def test_too_few_values_for_batch_statistics(stats):
    one_sample = np.ones((1, 3), np.float32)
    error = raised(bnorm.TooFewValuesError,
                   lambda: bnorm.batch_norm(one_sample, *stats, training=True))
    assert error.status == 6
    # Inference has no batch statistics to compute, so one sample is fine.
    assert bnorm.batch_norm(one_sample, *stats).shape == (1, 3)


def test_aliasing_between_two_per_channel_outputs(x, stats):
    running_mean, running_var = stats
    error = raised(bnorm.AliasingError, lambda: bnorm.batch_norm(
        x, running_mean, running_var, training=True, save_mean=running_mean))
    assert error.status == 7 and error.message == "running_mean overlaps save_mean"


def test_out_of_memory_when_scratch_cannot_be_allocated():
    # A child process caps its own address space just above what it uses, so
    # the 8 MiB of training scratch for 2^18 channels cannot be had.
    child = textwrap.dedent("""
        import resource
        import numpy as np
        import bnorm
        c = 1 << 18
        x, y = np.ones((2, c), np.float32), np.empty((2, c), np.float32)
        mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
        bnorm.batch_norm(x, mean, var, training=True, out=y, num_threads=1)
        used = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status")
                    if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 20), used + (1 << 20)))
        try:
            bnorm.batch_norm(x, mean, var, training=True, out=y, num_threads=1)
        except bnorm.OutOfMemoryError as e:
            print(e.status, e.message)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            env=dict(os.environ), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("9 could not allocate 8388608 bytes of scratch")


def test_internal_and_unknown_statuses_map_to_classes():
    # BNORM_ERR_INTERNAL is a library bug and cannot be provoked, nor since
    # 1.3.0 BNORM_ERR_UNSUPPORTED (a 1.2 library's answer to bf16 and f16);
    # this is the same translation every failing call goes through.
    assert isinstance(errors.error_for_status(10, "detail"), bnorm.InternalError)
    assert isinstance(errors.error_for_status(8, "detail"), bnorm.UnsupportedError)
    # A status from a newer library still raises, as the base class.
    future = errors.error_for_status(42, "something new")
    assert type(future) is bnorm.BnormError and future.status == 42


def test_every_status_has_its_class_and_the_librarys_name():
    lib = bnorm._lib.lib()
    for status in range(1, 11):
        error = errors.error_for_status(status, "")
        assert isinstance(error, bnorm.BnormError) and error.status == status
        assert lib.bnorm_status_string(status).decode().startswith(error.status_name + ":")


def test_a_failed_call_writes_nothing(x, stats):
    running_mean, running_var = np.full(4, 7, np.float32), np.full(4, 7, np.float32)
    out = np.full_like(x, 7)
    with pytest.raises(bnorm.FeatureMismatchError):
        bnorm.batch_norm(x, running_mean, running_var, training=True, out=out)
    assert (out == 7).all() and (running_mean == 7).all() and (running_var == 7).all()
