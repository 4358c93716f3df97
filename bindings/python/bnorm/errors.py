"""Exceptions: one BnormError subclass per bnorm_status.

Errors raised after a C call carry the library's own message (bnorm_last_error);
errors found in Python before the call (dtype, contiguity, vector lengths) use
the same classes, so callers handle one hierarchy whichever side noticed.
"""

OK = 0
ERR_NULL_POINTER = 1
ERR_INVALID_DESCRIPTOR = 2
ERR_INVALID_SHAPE = 3
ERR_FEATURE_MISMATCH = 4
ERR_INVALID_ARGUMENT = 5
ERR_TOO_FEW_VALUES = 6
ERR_ALIASING = 7
ERR_UNSUPPORTED = 8
ERR_OUT_OF_MEMORY = 9
ERR_INTERNAL = 10


class BnormError(Exception):
    """A bnorm call failed. ``status`` is the bnorm_status code, ``message``
    the detail (the library's bnorm_last_error() when the library failed)."""

    status = None  # set per subclass; an unknown code keeps the instance's
    status_name = "BNORM_ERR_UNKNOWN"

    def __init__(self, message, status=None):
        if status is not None:
            self.status = status
        self.message = message
        super().__init__(message)

    def __str__(self):
        return "%s: %s" % (self.status_name, self.message)


class NullPointerError(BnormError, ValueError):
    status, status_name = ERR_NULL_POINTER, "BNORM_ERR_NULL_POINTER"


class InvalidDescriptorError(BnormError, ValueError):
    status, status_name = ERR_INVALID_DESCRIPTOR, "BNORM_ERR_INVALID_DESCRIPTOR"


class InvalidShapeError(BnormError, ValueError):
    status, status_name = ERR_INVALID_SHAPE, "BNORM_ERR_INVALID_SHAPE"


class FeatureMismatchError(BnormError, ValueError):
    status, status_name = ERR_FEATURE_MISMATCH, "BNORM_ERR_FEATURE_MISMATCH"


class InvalidArgumentError(BnormError, ValueError):
    status, status_name = ERR_INVALID_ARGUMENT, "BNORM_ERR_INVALID_ARGUMENT"


class TooFewValuesError(BnormError, ValueError):
    status, status_name = ERR_TOO_FEW_VALUES, "BNORM_ERR_TOO_FEW_VALUES"


class AliasingError(BnormError, ValueError):
    status, status_name = ERR_ALIASING, "BNORM_ERR_ALIASING"


class UnsupportedError(BnormError):
    status, status_name = ERR_UNSUPPORTED, "BNORM_ERR_UNSUPPORTED"


class OutOfMemoryError(BnormError, MemoryError):
    status, status_name = ERR_OUT_OF_MEMORY, "BNORM_ERR_OUT_OF_MEMORY"


class InternalError(BnormError):
    status, status_name = ERR_INTERNAL, "BNORM_ERR_INTERNAL"


_BY_STATUS = {
    cls.status: cls
    for cls in (NullPointerError, InvalidDescriptorError, InvalidShapeError,
                FeatureMismatchError, InvalidArgumentError, TooFewValuesError,
                AliasingError, UnsupportedError, OutOfMemoryError, InternalError)
}


def error_for_status(status, message):
    """The exception for a nonzero bnorm_status. A code this binding does not
    know (a newer library) still becomes a BnormError, never a silent success."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        return BnormError(message, status=status)
    return cls(message)

# Shown in tracebacks as bnorm.FeatureMismatchError, where users import them.
for _cls in (BnormError, *_BY_STATUS.values()):
    _cls.__module__ = "bnorm"
del _cls
