//! The three explainer programs of `examples/`, run as tests: the same code a
//! reader runs with `cargo run --example NAME`.

#[path = "../examples/correct_use.rs"]
mod correct_use;
#[path = "../examples/feature_mismatch.rs"]
mod feature_mismatch;
#[path = "../examples/runtime_channels.rs"]
mod runtime_channels;

use bnorm::{Descriptor, Layout, Shape, Status};

#[test]
fn correct_use_trains_and_infers_within_tolerance() {
    correct_use::run().unwrap();
}

#[test]
fn feature_mismatch_reports_both_channel_counts() {
    let err = feature_mismatch::run().unwrap();
    assert_eq!(err.status(), Status::FEATURE_MISMATCH);
    assert_eq!(
        err.message(),
        "input channel dimension (dim 1) is 64 but num_features is 128"
    );
    assert_eq!(
        err.to_string(),
        "BNORM_ERR_FEATURE_MISMATCH: input channel dimension (dim 1) is 64 but num_features is 128"
    );
}

#[test]
fn runtime_channels_fits_the_layer_to_every_default_shape() {
    for (layout, shape) in runtime_channels::default_cases() {
        runtime_channels::run_case(layout, &shape).unwrap();
    }
}

#[test]
fn runtime_channels_derives_num_features_from_either_layout() {
    let shape = Shape::new(&[4, 9, 9, 16]);
    assert_eq!(shape.channels(Layout::Nhwc), Some(16));
    assert_eq!(shape.channels(Layout::Nchw), Some(9));
    runtime_channels::run_case(Layout::Nhwc, &shape).unwrap();
    // The same dims read as NCHW give a 9-channel layer, which fits too: the
    // layout decides, and the descriptor follows it.
    let layer = Descriptor::new(shape.channels(Layout::Nchw).unwrap()).unwrap();
    assert_eq!(layer.num_features(), 9);
    runtime_channels::run_case(Layout::Nchw, &shape).unwrap();
}
