//! The SIMD target accessors, and results on every target. The cap is
//! process-wide, so these tests live in their own test binary (own process)
//! and run one after another through a lock, never next to tests that
//! compare results bit for bit.

mod common;

use std::sync::Mutex;

use bnorm::{
    Affine, BackwardInput, Bf16, Descriptor, Flags, Layout, ParamGrads, SaveStats, Status, F16,
};
use common::half_modes::{self, Bits, Case, MODES};
use common::half_oracle::Half;
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

/// dy where the forward output is > 0 or NaN, +0 elsewhere.
fn relu_mask(dy: &[f32], y: &[f32]) -> Vec<u32> {
    dy.iter()
        .zip(y)
        .map(|(&g, &out)| if out <= 0.0 { 0.0f32 } else { g }.to_bits())
        .collect()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn every_target_agrees_with_the_reference_with_a_residual() {
    // The residual calls (bnorm 1.2) on every target: the forward against
    // the reference, the backward's dx against `backward` on the same
    // target bit for bit, and d_residual exactly dy masked by the ReLU.
    let _cap = CAP.lock().unwrap();
    let mut rng = Rng::new(12);
    for target in bnorm::targets() {
        bnorm::set_max_target(Some(target)).unwrap();
        assert_eq!(bnorm::active_target(), target);
        for &layout in &[Layout::Nchw, Layout::Nhwc] {
            for &channels in &[3i64, 17, 67] {
                let shape = common::random_shape(&mut rng, layout, 4, channels, 2);
                let view = View::new(&shape, layout);
                let c = channels as usize;
                let desc = Descriptor::new(channels)
                    .unwrap()
                    .with_layout(layout)
                    .with_flags(Flags::AFFINE | Flags::FUSE_RELU);
                let x = common::random_input(&mut rng, &view);
                let residual = rng.vec(x.len(), -2.0, 2.0);
                let dy = rng.vec(x.len(), -1.0, 1.0);
                let (mean, var) = (rng.vec(c, -1.0, 1.0), rng.vec(c, 0.1, 2.0));
                let (gamma, beta) = (rng.vec(c, -2.0, 2.0), rng.vec(c, -1.0, 1.0));
                let affine = Affine {
                    gamma: &gamma,
                    beta: &beta,
                };
                let params = ReferenceParams::of(&desc, Some(affine)).with_residual(&residual);
                let what = format!("{} {:?}", target, shape);

                let mut y = vec![f32::NAN; x.len()];
                bnorm::forward_inference_residual(
                    &desc,
                    &shape,
                    &x,
                    &residual,
                    &mut y,
                    &mean,
                    &var,
                    Some(affine),
                )
                .unwrap();
                let expected = common::inference(&view, &x, &mean, &var, &params);
                common::assert_close(&format!("inference, {}", what), &y, &expected, 5e-5);

                let (mut save_mean, mut save_invstd) = (vec![f32::NAN; c], vec![f32::NAN; c]);
                bnorm::forward_training_residual(
                    &desc,
                    &shape,
                    &x,
                    &residual,
                    &mut y,
                    Some(affine),
                    None,
                    Some(SaveStats {
                        mean: &mut save_mean,
                        invstd: &mut save_invstd,
                    }),
                )
                .unwrap();
                let expected = common::training(&view, &x, &params);
                common::assert_close(&format!("training, {}", what), &y, &expected.y, 5e-5);

                let input = BackwardInput {
                    x: &x,
                    y: Some(&y),
                    gamma: Some(&gamma),
                    mean: &save_mean,
                    invstd: &save_invstd,
                };
                let mut dx = vec![f32::NAN; x.len()];
                let mut d_residual = vec![f32::NAN; x.len()];
                bnorm::backward_residual(
                    &desc,
                    &shape,
                    input,
                    &dy,
                    &mut dx,
                    &mut d_residual,
                    ParamGrads::default(),
                )
                .unwrap();
                assert_eq!(bits(&d_residual), relu_mask(&dy, &y), "{}", what);
                let expected = common::backward(
                    &view,
                    &x,
                    &dy,
                    Some(&y),
                    Some(&gamma),
                    &save_mean,
                    &save_invstd,
                    false,
                );
                common::assert_close(&format!("dx, {}", what), &dx, &expected.dx, 5e-5);
                let mut plain_dx = vec![f32::NAN; x.len()];
                bnorm::backward(
                    &desc,
                    &shape,
                    input,
                    &dy,
                    Some(&mut plain_dx),
                    ParamGrads::default(),
                )
                .unwrap();
                assert_eq!(bits(&dx), bits(&plain_dx), "dx against backward, {}", what);
            }
        }
    }
    bnorm::set_max_target(None).unwrap();
    assert_eq!(bnorm::active_target(), bnorm::targets()[0]);
}

/// Every call on T tensors against the f32 call on the same target (forward
/// calls) and the float64 reference (all calls).
fn every_mode<T: Half + Bits>(rng: &mut Rng, case: &Case) {
    let (half, single) = half_modes::tensors::<T>(rng, case);
    for mode in MODES {
        half_modes::check(mode, case, &half, &single);
    }
}

#[test]
fn every_target_keeps_the_bf16_and_f16_contract() {
    // The library converts and rounds 16-bit tensors itself on every target
    // (Highway 1.0.3's own conversions are not exact on all of them).
    let _cap = CAP.lock().unwrap();
    let mut rng = Rng::new(13);
    for target in bnorm::targets() {
        bnorm::set_max_target(Some(target)).unwrap();
        assert_eq!(bnorm::active_target(), target);
        for &layout in &[Layout::Nchw, Layout::Nhwc] {
            for &channels in &[1i64, 3, 17, 67] {
                let shape = common::random_shape(&mut rng, layout, 4, channels, 2);
                let flags = Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU;
                let case = Case::new(&mut rng, shape, layout, flags);
                every_mode::<Bf16>(&mut rng, &case);
                every_mode::<F16>(&mut rng, &case);
            }
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
