"""Finding libbnorm, declaring its C prototypes, and calling it.

Search order: $BNORM_LIBRARY (a full path; if set it must work, so a typo is
not papered over by some other copy), the system's dynamic loader
(libbnorm.so.1 under LD_LIBRARY_PATH / ldconfig, then ctypes.util.find_library),
then the source tree's build/release. The library is loaded on first use, so
``import bnorm`` works without it and the failure names what was tried.
"""

import ctypes
import ctypes.util
import os
import threading

from . import errors

# The binding is written against bnorm.h 1.4.0; within major 1 the ABI only
# grows, so any 1.x library is fine for the 1.0 functions. Functions added
# later (_SINCE) are looked up when first called, and need that version;
# bf16/f16 tensors (1.3.0) are passed as the dtype, which an older library
# refuses itself (BNORM_ERR_UNSUPPORTED).
WRITTEN_FOR_MAJOR = 1
WRITTEN_FOR_VERSION = "1.4.0"
SONAME = "libbnorm.so.1"

LAYOUT_NCHW = 0
LAYOUT_NHWC = 1
DTYPE_F32 = 0
DTYPE_BF16 = 1
DTYPE_F16 = 2
FLAG_AFFINE = 1 << 0
FLAG_TRACK_RUNNING_STATS = 1 << 1
FLAG_FUSE_RELU = 1 << 2
FLAG_USE_GLOBAL_STATS = 1 << 3
# BNORM_SPLIT_VALUES_PER_CHANNEL: doubles per channel in the split phases'
# exchanged arrays, (count, mean, M2) or (count, sum(g), sum(g * (x - mean))).
SPLIT_VALUES_PER_CHANNEL = 3

MAX_RANK = 5


class Desc(ctypes.Structure):
    """struct bnorm_desc, v1.0 fields in header order."""
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
    _fields_ = [("rank", ctypes.c_int32), ("dims", ctypes.c_int64 * MAX_RANK)]


class LibraryNotFoundError(ImportError):
    """libbnorm could not be loaded from any of the places searched."""


class LibraryVersionError(ImportError):
    """The libbnorm found is not a version this binding was written for."""


_vp = ctypes.c_void_p
_fp = ctypes.POINTER(ctypes.c_float)
_PROTOTYPES = {
    "bnorm_version": (ctypes.c_uint32, []),
    "bnorm_version_string": (ctypes.c_char_p, []),
    "bnorm_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "bnorm_last_error": (ctypes.c_char_p, []),
    "bnorm_desc_init": (ctypes.c_int, [ctypes.POINTER(Desc), ctypes.c_int64]),
    "bnorm_forward_inference": (
        ctypes.c_int, [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp, _vp, _vp, _vp]),
    "bnorm_forward_training": (
        ctypes.c_int,
        [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp, _vp, _vp, _vp, _vp, _vp]),
    "bnorm_backward": (
        ctypes.c_int,
        [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp, _vp, _vp, _vp, _vp, _vp,
         _vp]),
    "bnorm_active_target": (ctypes.c_char_p, []),
    "bnorm_target_count": (ctypes.c_int32, []),
    "bnorm_target_name": (ctypes.c_char_p, [ctypes.c_int32]),
    "bnorm_set_max_target": (ctypes.c_int, [ctypes.c_char_p]),
}

# Functions newer than 1.0: bnorm_version() number they first appear in, and
# prototype. Not looked up at load time, so a 1.0 (or 1.1) library still
# loads and serves everything it has; calling a newer function there raises
# LibraryVersionError naming both versions.
_SINCE = {
    "bnorm_fold_scale_shift": (10100, ctypes.c_int,
                               [ctypes.POINTER(Desc), _vp, _vp, _vp, _vp, _vp, _vp]),
    "bnorm_forward_scale_shift": (10100, ctypes.c_int,
                                  [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp,
                                   _vp]),
    "bnorm_fold_into_layer": (10100, ctypes.c_int,
                              [ctypes.POINTER(Desc), ctypes.c_int64, _vp, _vp, _vp, _vp, _vp, _vp,
                               _vp, _vp]),
    # Split phases (distributed training); the exchanged double arrays are
    # passed by address like every other array.
    "bnorm_local_stats": (10200, ctypes.c_int,
                          [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp]),
    "bnorm_merge_stats": (10200, ctypes.c_int,
                          [ctypes.POINTER(Desc), ctypes.c_int32, _vp, _vp, _vp, _vp, _vp, _vp]),
    "bnorm_forward_normalize": (10200, ctypes.c_int,
                                [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp, _vp,
                                 _vp, _vp]),
    "bnorm_backward_reduce": (10200, ctypes.c_int,
                              [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp, _vp,
                               _vp, _vp, _vp, _vp]),
    "bnorm_backward_elementwise": (10200, ctypes.c_int,
                                   [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp,
                                    _vp, _vp, _vp, ctypes.c_int32, _vp, _vp]),
    # Residual add (the tail of a ResNet block): y = bn(x) + residual (+ ReLU).
    "bnorm_forward_inference_residual": (10200, ctypes.c_int,
                                         [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp,
                                          _vp, _vp, _vp, _vp, _vp]),
    "bnorm_forward_training_residual": (10200, ctypes.c_int,
                                        [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp,
                                         _vp, _vp, _vp, _vp, _vp, _vp, _vp]),
    "bnorm_backward_residual": (10200, ctypes.c_int,
                                [ctypes.POINTER(Desc), ctypes.POINTER(Shape), _vp, _vp, _vp, _vp,
                                 _vp, _vp, _vp, _vp, _vp, _vp]),
}


def build_tree_candidate():
    """build/release/libbnorm.so.1 of the source tree this package sits in
    (bindings/python/bnorm/ -> ../../../build/release)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "build", "release", SONAME))


def _candidates():
    """(how it was found, name or path to dlopen), in search order."""
    explicit = os.environ.get("BNORM_LIBRARY")
    if explicit:
        return [("$BNORM_LIBRARY", explicit)]
    found = [("dynamic loader", SONAME)]
    located = ctypes.util.find_library("bnorm")
    if located and located != SONAME:
        found.append(("ctypes.util.find_library", located))
    found.append(("build tree", build_tree_candidate()))
    return found


def check_version(version_number, version_string, path):
    """Raises LibraryVersionError unless the loaded library's major version is
    the one this binding was written for."""
    major = version_number // 10000
    if major != WRITTEN_FOR_MAJOR:
        raise LibraryVersionError(
            "bnorm's Python binding was written for libbnorm %d.x (header %s), but %s reports "
            "version %s (bnorm_version() = %d, major %d)"
            % (WRITTEN_FOR_MAJOR, WRITTEN_FOR_VERSION, path, version_string, version_number,
               major))


def _declare(cdll):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _load():
    tried = []
    for how, name in _candidates():
        try:
            cdll = ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s: %s (%s)" % (how, name, e))
            continue
        try:
            _declare(cdll)
        except AttributeError as e:
            raise LibraryNotFoundError(
                "%s (found via %s) is not a usable libbnorm: %s" % (name, how, e)) from None
        check_version(cdll.bnorm_version(), cdll.bnorm_version_string().decode(), name)
        return cdll, name
    raise LibraryNotFoundError(
        "libbnorm could not be loaded. Set BNORM_LIBRARY to the full path of libbnorm.so.1, "
        "install it where the dynamic loader finds it, or build it in build/release. Tried:\n  "
        + "\n  ".join(tried))


_lock = threading.Lock()
_loaded = None  # (CDLL, path)


def lib():
    """The loaded libbnorm (ctypes.CDLL with prototypes declared)."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded[0]


def library_path():
    """The name or path libbnorm was loaded from."""
    lib()
    return _loaded[1]


def _version_text(number):
    return "%d.%d.%d" % (number // 10000, number // 100 % 100, number % 100)


def function(fn_name):
    """The loaded library's fn_name with its prototype declared. A function
    newer than 1.0 is looked up here, on use: a library older than the
    version that added it raises LibraryVersionError instead."""
    cdll = lib()
    newer = _SINCE.get(fn_name)
    if newer is None:
        return getattr(cdll, fn_name)
    needed, restype, argtypes = newer
    have = cdll.bnorm_version()
    if have < needed:
        raise LibraryVersionError(
            "%s needs libbnorm >= %s, but %s reports version %s (bnorm_version() = %d); "
            "install libbnorm %s or newer to use it (the other functions keep working)"
            % (fn_name, _version_text(needed), library_path(),
               cdll.bnorm_version_string().decode(), have, _version_text(needed)))
    try:
        fn = getattr(cdll, fn_name)
    except AttributeError:
        raise LibraryVersionError(
            "%s reports version %s but does not export %s, which libbnorm %s added"
            % (library_path(), cdll.bnorm_version_string().decode(), fn_name,
               _version_text(needed))) from None
    # ctypes hands back the same function object each time, so declaring it
    # again (also from another thread) sets the same values.
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def call(fn_name, *args):
    """Calls a status-returning bnorm function; on failure raises the matching
    BnormError with bnorm_last_error(), read right after the call on this
    thread (the message is thread-local and the next bnorm call replaces it)."""
    cdll = lib()
    status = function(fn_name)(*args)
    if status != errors.OK:
        message = cdll.bnorm_last_error().decode("utf-8", "replace")
        raise errors.error_for_status(status, message)


def make_desc(num_features, eps, momentum, flags, layout, dtype, num_threads):
    """A bnorm_desc from bnorm_desc_init's defaults, with the given fields.
    Range checks (eps, momentum, num_threads) are left to the library."""
    desc = Desc()
    call("bnorm_desc_init", ctypes.byref(desc), num_features)
    desc.eps = eps
    desc.momentum = momentum
    desc.flags = flags
    desc.layout = layout
    desc.dtype = dtype
    desc.num_threads = num_threads
    return desc


def make_shape(dims):
    """A bnorm_shape; ranks the struct cannot hold are the caller's check."""
    shape = Shape()
    shape.rank = len(dims)
    for i, d in enumerate(dims):
        shape.dims[i] = d
    return shape
