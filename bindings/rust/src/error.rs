//! Status codes and the error type every fallible call returns.

use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_char;

use crate::sys;

/// A `bnorm_status` code.
///
/// A newtype rather than an `enum` so that any value the library returns,
/// including one added by a later minor version, is representable.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(i32);

impl Status {
    pub const OK: Status = Status(sys::BNORM_OK as i32);
    pub const NULL_POINTER: Status = Status(sys::BNORM_ERR_NULL_POINTER as i32);
    pub const INVALID_DESCRIPTOR: Status = Status(sys::BNORM_ERR_INVALID_DESCRIPTOR as i32);
    pub const INVALID_SHAPE: Status = Status(sys::BNORM_ERR_INVALID_SHAPE as i32);
    pub const FEATURE_MISMATCH: Status = Status(sys::BNORM_ERR_FEATURE_MISMATCH as i32);
    pub const INVALID_ARGUMENT: Status = Status(sys::BNORM_ERR_INVALID_ARGUMENT as i32);
    pub const TOO_FEW_VALUES: Status = Status(sys::BNORM_ERR_TOO_FEW_VALUES as i32);
    pub const ALIASING: Status = Status(sys::BNORM_ERR_ALIASING as i32);
    pub const UNSUPPORTED: Status = Status(sys::BNORM_ERR_UNSUPPORTED as i32);
    pub const OUT_OF_MEMORY: Status = Status(sys::BNORM_ERR_OUT_OF_MEMORY as i32);
    pub const INTERNAL: Status = Status(sys::BNORM_ERR_INTERNAL as i32);
    /// Raised by this binding, never by the C library: a slice's length does
    /// not match the shape's element count or the descriptor's num_features
    /// (or, folding into a layer, the weights' length; in the split phases,
    /// `3 * num_features` per block).
    /// Negative so that it cannot collide with codes the library may add.
    pub const LENGTH_MISMATCH: Status = Status(-1);

    pub fn from_code(code: i32) -> Status {
        Status(code)
    }

    pub fn code(self) -> i32 {
        self.0
    }

    /// The status's name, e.g. `"BNORM_ERR_FEATURE_MISMATCH"`.
    pub fn name(self) -> &'static str {
        let text = self.description_line();
        match text.find(':') {
            Some(end) => &text[..end],
            None => text,
        }
    }

    /// Name and meaning, as `bnorm_status_string` gives them.
    fn description_line(self) -> &'static str {
        if self == Status::LENGTH_MISMATCH {
            return "BNORM_RUST_LENGTH_MISMATCH: a slice's length does not match the shape, num_features, the weights or the split phases' blocks";
        }
        // SAFETY: bnorm_status_string accepts any value and returns static storage.
        unsafe { static_str(sys::bnorm_status_string(self.0 as sys::bnorm_status)) }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description_line())
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// A failed call: the status and the detail that explains it.
///
/// For library failures the message is `bnorm_last_error()`, read on the
/// calling thread right after the call, e.g.
/// `"input channel dimension (dim 1) is 64 but num_features is 128"`.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    pub(crate) fn new(status: Status, message: String) -> Error {
        Error { status, message }
    }

    /// Turns a status the library just returned into a result. Must run on
    /// the thread that made the call, before any other bnorm call.
    pub(crate) fn check(status: sys::bnorm_status) -> Result<(), Error> {
        if status == sys::BNORM_OK {
            return Ok(());
        }
        // SAFETY: bnorm_last_error never returns NULL; the text is copied
        // before any other bnorm call on this thread could replace it.
        let message = unsafe { CStr::from_ptr(sys::bnorm_last_error()) }
            .to_string_lossy()
            .into_owned();
        Err(Error::new(Status(status as i32), message))
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("status", &self.status)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {}

/// Borrows a string the library keeps in static storage.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that lives for the
/// rest of the process.
pub(crate) unsafe fn static_str(ptr: *const c_char) -> &'static str {
    if ptr.is_null() {
        return "";
    }
    // The library's static strings are ASCII; anything else is shown as empty
    // rather than trusted.
    CStr::from_ptr(ptr).to_str().unwrap_or("")
}
