"""libbnorm for the benchmark scripts, taking raw data pointers (e.g.
torch.Tensor.data_ptr()).

The structs, C prototypes and library loading are the Python binding's
(bindings/python/bnorm/_lib.py); this module only points it at the library
under test and adds the few conveniences torch_bench.py uses.
"""

import ctypes
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "bindings", "python"))

from bnorm import _lib  # noqa: E402  (needs the path above)

LAYOUT_NCHW = _lib.LAYOUT_NCHW
LAYOUT_NHWC = _lib.LAYOUT_NHWC
# bnorm_desc.dtype by the benchmark's dtype names.
DTYPES = {"f32": _lib.DTYPE_F32, "bf16": _lib.DTYPE_BF16, "f16": _lib.DTYPE_F16}

# The residual-block calls (bnorm.h 1.2), which the binding does not declare:
# name -> argument types after (desc, shape), all data pointers.
_RESIDUAL_POINTER_ARGS = {
    # x, residual, y, mean, var, gamma, beta
    "bnorm_forward_inference_residual": 7,
    # x, residual, y, gamma, beta, running_mean, running_var, save_mean, save_invstd
    "bnorm_forward_training_residual": 9,
    # x, dy, y, gamma, save_mean, save_invstd, dx, d_residual, dgamma, dbeta
    "bnorm_backward_residual": 10,
}


def default_library_path():
    """$BNORM_LIB, else libbnorm.so in $BNORM_BUILD_DIR (default build/release in the repository)."""
    if os.environ.get("BNORM_LIB"):
        return os.environ["BNORM_LIB"]
    build_dir = os.environ.get("BNORM_BUILD_DIR", os.path.join(_HERE, "..", "build", "release"))
    return os.path.join(build_dir, "libbnorm.so")


class Bnorm:
    """The library at `path`, loaded by the binding with its prototypes declared."""

    def __init__(self, path=None):
        self.path = path or default_library_path()
        # The binding loads exactly this file when $BNORM_LIBRARY names it.
        os.environ["BNORM_LIBRARY"] = self.path
        self.lib = _lib.lib()
        self.version = self.lib.bnorm_version_string().decode()
        self.target = self.lib.bnorm_active_target().decode()
        self.has_residual = self.lib.bnorm_version() >= 10200
        if self.has_residual:
            head = [ctypes.POINTER(_lib.Desc), ctypes.POINTER(_lib.Shape)]
            for name, pointers in _RESIDUAL_POINTER_ARGS.items():
                fn = getattr(self.lib, name)
                fn.restype = ctypes.c_int
                fn.argtypes = head + [ctypes.c_void_p] * pointers

    @staticmethod
    def desc(num_features, layout, threads, eps=1e-5, momentum=0.1, relu=False, dtype="f32"):
        """bnorm_desc_init's defaults (AFFINE | TRACK_RUNNING_STATS), as a
        PyTorch BatchNorm layer, with the given layout, threads, eps, momentum
        and tensor dtype ("f32", "bf16", "f16"; per-channel vectors are float
        in every dtype); relu adds FUSE_RELU (the residual block's ReLU)."""
        flags = _lib.FLAG_AFFINE | _lib.FLAG_TRACK_RUNNING_STATS
        if relu:
            flags |= _lib.FLAG_FUSE_RELU
        return _lib.make_desc(num_features, eps, momentum, flags, layout, DTYPES[dtype], threads)

    shape = staticmethod(_lib.make_shape)

    def check(self, status, what):
        if status != 0:
            error = self.lib.bnorm_last_error().decode()  # before any other bnorm call
            raise RuntimeError("%s failed: %s: %s" % (
                what, self.lib.bnorm_status_string(status).decode(), error))
