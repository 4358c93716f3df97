//! Which library is loaded and which SIMD code it runs.

use std::ffi::CString;

use crate::error::{static_str, Error, Status};
use crate::sys;

/// `MAJOR*10000 + MINOR*100 + PATCH` of the loaded library; compare with
/// `sys::BNORM_VERSION_NUMBER` (the header this binding follows).
pub fn version() -> u32 {
    // SAFETY: no arguments, no preconditions.
    unsafe { sys::bnorm_version() }
}

/// The loaded library's version, e.g. `"1.4.0"`.
pub fn version_string() -> &'static str {
    // SAFETY: static storage, never NULL.
    unsafe { static_str(sys::bnorm_version_string()) }
}

/// The SIMD target bnorm's calls use in this process, e.g. `"AVX2"`.
pub fn active_target() -> &'static str {
    // SAFETY: static storage, never NULL.
    unsafe { static_str(sys::bnorm_active_target()) }
}

/// The SIMD targets compiled in that this CPU can run, best first; the last
/// is always `"SCALAR"`.
pub fn targets() -> Vec<&'static str> {
    // SAFETY: no preconditions; names are static storage.
    let count = unsafe { sys::bnorm_target_count() };
    (0..count)
        .map(|index| unsafe { static_str(sys::bnorm_target_name(index)) })
        .collect()
}

/// Caps the SIMD target of every later bnorm call in this process at `name`
/// (one of `targets()`, or a better one this CPU lacks); `None` or `"BEST"`
/// removes the cap. Process-wide: calls on other threads change target too,
/// and results are bit-identical only within one target.
pub fn set_max_target(name: Option<&str>) -> Result<(), Error> {
    let name = match name {
        Some(name) => Some(CString::new(name).map_err(|_| {
            Error::new(
                Status::INVALID_ARGUMENT,
                format!("target name {:?} contains a NUL byte", name),
            )
        })?),
        None => None,
    };
    let ptr = name.as_ref().map_or(std::ptr::null(), |name| name.as_ptr());
    // SAFETY: ptr is NULL or a NUL-terminated string alive for the call.
    Error::check(unsafe { sys::bnorm_set_max_target(ptr) })
}
