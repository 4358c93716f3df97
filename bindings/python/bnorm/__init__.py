"""bnorm: batch normalization on the CPU through libbnorm's C API.

Pure Python over ctypes and NumPy. Tensors are float32 or float16 arrays, or
bfloat16 as uint16 arrays of its bits with dtype="bfloat16". The library is
found through $BNORM_LIBRARY, the dynamic loader (libbnorm.so.1), or the
source tree's build/release, when first needed.
"""

from . import _lib
from ._bfloat16 import from_bfloat16, to_bfloat16
from ._lib import LibraryNotFoundError, LibraryVersionError, library_path
from .errors import (AliasingError, BnormError, FeatureMismatchError, InternalError,
                     InvalidArgumentError, InvalidDescriptorError, InvalidShapeError,
                     NullPointerError, OutOfMemoryError, TooFewValuesError, UnsupportedError)
from .functional import (backward_elementwise, backward_reduce, batch_norm,
                         batch_norm_backward, batch_norm_backward_residual,
                         batch_norm_scale_shift, fold_into_layer, fold_scale_shift,
                         forward_normalize, invstd, local_stats, merge_stats)
from .module import BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm

__version__ = "1.4.0"

# BNORM_SPLIT_VALUES_PER_CHANNEL: the split phases exchange float64
# (num_features, SPLIT_VALUES_PER_CHANNEL) arrays.
SPLIT_VALUES_PER_CHANNEL = _lib.SPLIT_VALUES_PER_CHANNEL


def version():
    """The loaded library's version as (major, minor, patch)."""
    v = _lib.lib().bnorm_version()
    return v // 10000, v // 100 % 100, v % 100


def version_string():
    return _lib.lib().bnorm_version_string().decode()


def active_target():
    """The SIMD target bnorm's calls use in this process, e.g. "AVX2"."""
    return _lib.lib().bnorm_active_target().decode()


def targets():
    """SIMD targets this library has and this CPU runs, best first."""
    cdll = _lib.lib()
    return [cdll.bnorm_target_name(i).decode() for i in range(cdll.bnorm_target_count())]


def set_max_target(name):
    """Caps bnorm's SIMD target in this process; None or "BEST" removes the cap."""
    _lib.call("bnorm_set_max_target", None if name is None else name.encode())


__all__ = [
    "AliasingError", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "BnormError",
    "FeatureMismatchError", "InternalError", "InvalidArgumentError", "InvalidDescriptorError",
    "InvalidShapeError", "LibraryNotFoundError", "LibraryVersionError", "NullPointerError",
    "OutOfMemoryError", "SPLIT_VALUES_PER_CHANNEL", "SyncBatchNorm", "TooFewValuesError",
    "UnsupportedError", "active_target", "backward_elementwise", "backward_reduce",
    "batch_norm", "batch_norm_backward", "batch_norm_backward_residual",
    "batch_norm_scale_shift", "fold_into_layer",
    "fold_scale_shift", "forward_normalize", "from_bfloat16", "invstd", "library_path",
    "local_stats", "merge_stats", "set_max_target", "targets", "to_bfloat16", "version",
    "version_string",
]
