//! The SIMD target accessors. The cap is process-wide, so these tests live in
//! their own test binary (own process) and run one after another through a
//! lock, never next to tests that compare results bit for bit.

mod common;

use std::sync::Mutex;

use bnorm::{Affine, Descriptor, Flags, Layout, Status};
use common::{ReferenceParams, Rng, View};

static CAP: Mutex<()> = Mutex::new(());

#[test]
fn targets_are_listed_best_first_down_to_scalar() {
    let _cap = CAP.lock().unwrap();
    let targets = bnorm::targets();
    assert_eq!(targets.last(), Some(&"SCALAR"), "{:?}", targets);
    assert!(
        targets.contains(&bnorm::active_target()),
        "{} not in {:?}",
        bnorm::active_target(),
        targets
    );
}

#[test]
fn every_target_agrees_with_the_reference() {
    let _cap = CAP.lock().unwrap();
    let mut rng = Rng::new(11);
    for target in bnorm::targets() {
        bnorm::set_max_target(Some(target)).unwrap();
        assert_eq!(bnorm::active_target(), target);
        for &layout in &[Layout::Nchw, Layout::Nhwc] {
            let shape = common::random_shape(&mut rng, layout, 4, 17, 2);
            let view = View::new(&shape, layout);
            let desc = Descriptor::new(17)
                .unwrap()
                .with_layout(layout)
                .with_flags(Flags::AFFINE | Flags::FUSE_RELU);
            let x = common::random_input(&mut rng, &view);
            let (mean, var) = (rng.vec(17, -1.0, 1.0), rng.vec(17, 0.1, 2.0));
            let (gamma, beta) = (rng.vec(17, -2.0, 2.0), rng.vec(17, -1.0, 1.0));
            let mut y = vec![0.0; x.len()];
            let affine = Affine {
                gamma: &gamma,
                beta: &beta,
            };
            bnorm::forward_inference(&desc, &shape, &x, &mut y, &mean, &var, Some(affine)).unwrap();
            let params = ReferenceParams::of(&desc, Some(affine));
            let expected = common::inference(&view, &x, &mean, &var, &params);
            let what = format!("{} {:?}", target, shape);
            common::assert_close(&what, &y, &expected, 5e-5);
        }
    }
    bnorm::set_max_target(None).unwrap();
    assert_eq!(bnorm::active_target(), bnorm::targets()[0]);
}

#[test]
fn unknown_target_names_are_rejected() {
    let _cap = CAP.lock().unwrap();
    let before = bnorm::active_target();
    let err = bnorm::set_max_target(Some("NEON")).unwrap_err();
    assert_eq!(err.status(), Status::INVALID_ARGUMENT);
    // The library lists the names it knows, which vary with the build.
    assert!(
        err.message().starts_with("\"NEON\" is not a target name ("),
        "{}",
        err
    );
    // A NUL byte cannot cross into C; the binding refuses it itself.
    let err = bnorm::set_max_target(Some("AVX2\0")).unwrap_err();
    assert_eq!(err.status(), Status::INVALID_ARGUMENT);
    assert_eq!(err.message(), "target name \"AVX2\\0\" contains a NUL byte");
    assert_eq!(bnorm::active_target(), before);
}
