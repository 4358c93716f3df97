//! The raw declarations line up with the compiled library: struct sizes and
//! field order, enum values, and the statuses only raw calls can reach.

mod common;

use std::mem::size_of;
use std::os::raw::c_void;
use std::ptr;

use bnorm::sys;
use common::{raw_desc, raw_last_error};

#[test]
fn desc_init_fills_the_struct_as_rust_lays_it_out() {
    let desc = raw_desc(7);
    // The library writes sizeof(bnorm_desc) as C compiled it.
    assert_eq!(desc.struct_size as usize, size_of::<sys::bnorm_desc>());
    // Each documented default lands in the field Rust expects it in, so the
    // field order and padding agree with the header.
    assert_eq!(desc.num_features, 7);
    assert_eq!(desc.eps, 1e-5);
    assert_eq!(desc.momentum, 0.1);
    assert_eq!(
        desc.flags,
        sys::BNORM_FLAG_AFFINE | sys::BNORM_FLAG_TRACK_RUNNING_STATS
    );
    assert_eq!(desc.layout, sys::BNORM_LAYOUT_NCHW);
    assert_eq!(desc.dtype, sys::BNORM_DTYPE_F32);
    assert_eq!(desc.num_threads, 0);
    assert_eq!(size_of::<sys::bnorm_shape>(), 48);
}

#[test]
fn library_version_matches_the_declarations() {
    let loaded = bnorm::version();
    assert_eq!(loaded / 10000, sys::BNORM_VERSION_MAJOR);
    assert!(
        loaded >= sys::BNORM_VERSION_NUMBER,
        "library {} is older",
        loaded
    );
    let expected = format!("{}.{}.{}", loaded / 10000, loaded / 100 % 100, loaded % 100);
    assert_eq!(bnorm::version_string(), expected);
}

/// A 2x3 NCHW forward inference through the raw call, `y` pointing where the
/// caller says.
fn raw_inference(desc: *const sys::bnorm_desc, x: *const f32, y: *mut f32) -> sys::bnorm_status {
    let shape = sys::bnorm_shape {
        rank: 2,
        dims: [2, 3, 0, 0, 0],
    };
    let stats = [1.0f32; 3];
    unsafe {
        sys::bnorm_forward_inference(
            desc,
            &shape,
            x as *const c_void,
            y as *mut c_void,
            stats.as_ptr(),
            stats.as_ptr(),
            stats.as_ptr(),
            stats.as_ptr(),
        )
    }
}

#[test]
fn statuses_the_safe_api_cannot_reach() {
    let mut buffer = [1.0f32; 12];
    let base = buffer.as_mut_ptr();

    // y overlapping x without being x: the overlap the C API forbids and the
    // borrow checker rules out in the safe functions.
    let status = raw_inference(&raw_desc(3), base, unsafe { base.add(1) });
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());

    // An unknown dtype; the safe API sets the dtype from its slices' type.
    let mut unknown = raw_desc(3);
    unknown.dtype = 7;
    let status = raw_inference(&unknown, base, unsafe { base.add(6) });
    assert_eq!(
        status,
        sys::BNORM_ERR_INVALID_ARGUMENT,
        "{}",
        raw_last_error()
    );

    let status = raw_inference(ptr::null(), base, unsafe { base.add(6) });
    assert_eq!(status, sys::BNORM_ERR_NULL_POINTER, "{}", raw_last_error());
}

#[test]
fn an_older_shorter_descriptor_is_accepted_with_defaults() {
    let mut buffer = [1.0f32; 12];
    let base = buffer.as_mut_ptr();
    let (x, y) = (base as *const f32, unsafe { base.add(6) });

    // A binary built against a header whose bnorm_desc ended at num_features
    // (16 bytes): whatever follows in memory is not read, so this eps of 0
    // does not matter.
    let mut old = raw_desc(3);
    old.struct_size = 16;
    old.eps = 0.0;
    assert_eq!(
        raw_inference(&old, x, y),
        sys::BNORM_OK,
        "{}",
        raw_last_error()
    );

    // A size that does not end on a field boundary is no known version.
    old.struct_size = 17;
    assert_eq!(raw_inference(&old, x, y), sys::BNORM_ERR_INVALID_DESCRIPTOR);
}

#[test]
fn a_misaligned_16_bit_tensor_is_rejected() {
    // A `&[Bf16]` or `&[F16]` is always 2-byte aligned, so only the raw
    // declarations can pass an odd address.
    for dtype in [sys::BNORM_DTYPE_BF16, sys::BNORM_DTYPE_F16] {
        let mut desc = raw_desc(3);
        desc.dtype = dtype;
        desc.flags = 0;
        let shape = *bnorm::Shape::new(&[2, 3]).as_raw();
        let stats = [0.5f32; 3];
        let mut memory = [0x3c00u16; 16];
        let original = memory;
        let base = memory.as_mut_ptr() as *mut u8;
        let status = unsafe {
            sys::bnorm_forward_inference(
                &desc,
                &shape,
                base.add(1) as *const c_void,
                base.add(16) as *mut c_void,
                stats.as_ptr(),
                stats.as_ptr(),
                ptr::null(),
                ptr::null(),
            )
        };
        assert_eq!(
            status,
            sys::BNORM_ERR_INVALID_ARGUMENT,
            "{}",
            raw_last_error()
        );
        // The message names the address, which varies from run to run.
        let message = raw_last_error();
        assert!(
            message.starts_with("x (0x") && message.ends_with(") is not aligned to 2 bytes"),
            "{}",
            message
        );
        assert_eq!(memory, original, "wrote before failing");
    }
}
