"""Minimal ctypes binding of libbnorm.so for the benchmark scripts.

Only what torch_bench.py needs: the descriptor and shape structs and the three
f32 calls, taking raw data pointers (e.g. torch.Tensor.data_ptr()).
"""

import ctypes
import os

LAYOUT_NCHW = 0
LAYOUT_NHWC = 1


class Desc(ctypes.Structure):
    """struct bnorm_desc (enums are C ints)."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("num_features", ctypes.c_int64),
        ("eps", ctypes.c_float),
        ("momentum", ctypes.c_float),
        ("flags", ctypes.c_uint32),
        ("layout", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("num_threads", ctypes.c_int32),
    ]


class Shape(ctypes.Structure):
    """struct bnorm_shape: dims in memory order."""

    _fields_ = [("rank", ctypes.c_int32), ("dims", ctypes.c_int64 * 5)]


def default_library_path():
    """$BNORM_LIB, else libbnorm.so in $BNORM_BUILD_DIR (default build/release in the repository)."""
    if os.environ.get("BNORM_LIB"):
        return os.environ["BNORM_LIB"]
    build_dir = os.environ.get("BNORM_BUILD_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build", "release"))
    return os.path.join(build_dir, "libbnorm.so")


class Bnorm:
    """The loaded library, with argument types declared so calls check them."""

    def __init__(self, path=None):
        self.path = path or default_library_path()
        lib = ctypes.CDLL(self.path)
        ptr = ctypes.c_void_p
        desc_p, shape_p = ctypes.POINTER(Desc), ctypes.POINTER(Shape)
        lib.bnorm_desc_init.argtypes = [desc_p, ctypes.c_int64]
        lib.bnorm_forward_inference.argtypes = [desc_p, shape_p] + [ptr] * 6
        lib.bnorm_forward_training.argtypes = [desc_p, shape_p] + [ptr] * 8
        lib.bnorm_backward.argtypes = [desc_p, shape_p] + [ptr] * 9
        for name in ("bnorm_version_string", "bnorm_active_target", "bnorm_last_error"):
            getattr(lib, name).restype = ctypes.c_char_p
        for name in ("bnorm_desc_init", "bnorm_forward_inference", "bnorm_forward_training",
                     "bnorm_backward"):
            getattr(lib, name).restype = ctypes.c_int
        self.lib = lib
        self.version = lib.bnorm_version_string().decode()
        self.target = lib.bnorm_active_target().decode()

    def desc(self, num_features, layout, threads, eps=1e-5, momentum=0.1):
        d = Desc()
        status = self.lib.bnorm_desc_init(ctypes.byref(d), num_features)
        if status != 0:
            raise RuntimeError("bnorm_desc_init: status %d" % status)
        if d.struct_size != ctypes.sizeof(Desc):
            raise RuntimeError("bnorm_desc is %d bytes in the library, %d here" %
                               (d.struct_size, ctypes.sizeof(Desc)))
        d.eps, d.momentum, d.layout, d.num_threads = eps, momentum, layout, threads
        return d

    @staticmethod
    def shape(dims):
        s = Shape()
        s.rank = len(dims)
        for i, v in enumerate(dims):
            s.dims[i] = v
        return s

    def check(self, status, what):
        if status != 0:
            raise RuntimeError("%s failed (status %d): %s" %
                               (what, status, self.lib.bnorm_last_error().decode()))
