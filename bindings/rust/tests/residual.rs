//! The residual add (bnorm 1.2): `forward_inference_residual`,
//! `forward_training_residual` and `backward_residual` against the float64
//! reference with the residual added before the ReLU, and against the
//! crate's own calls without a residual (the forward: the plain call, then
//! the add and the ReLU, to float rounding; the backward: `backward`'s dx,
//! dgamma and dbeta bit for bit, and d_residual exactly dy masked by the
//! ReLU), for both layouts, ranks 2 to 5, odd channel counts, a spatial
//! size of 1 and the flags; the in-place variants; and every error the safe
//! API can reach, with nothing written on failure. Every SIMD target is
//! covered in `tests/targets.rs` (the target cap is process-wide).

mod common;

use std::os::raw::c_void;
use std::ptr;

use bnorm::{
    sys, Affine, BackwardInput, Descriptor, Error, Flags, Layout, ParamGrads, RunningStats,
    SaveStats, Shape, Status,
};
use common::{assert_close, raw_desc, raw_last_error, ReferenceParams, Rng, Training, View};

/// The contract's bound for float32 outputs, relative to their largest magnitude.
const TOLERANCE: f64 = 5e-5;

/// Odd channel counts, from one to past a few SIMD vectors.
const CHANNELS: [i64; 4] = [1, 3, 17, 67];

/// Bits, so that NaN compares equal to itself and -0 differs from 0.
fn bits32(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// dy where the forward output is > 0 or NaN, +0 where it is <= 0: the
/// residual's gradient with `Flags::FUSE_RELU` (PyTorch's threshold_backward).
fn relu_mask(dy: &[f32], y: &[f32]) -> Vec<f32> {
    dy.iter()
        .zip(y)
        .map(|(&g, &out)| if out <= 0.0 { 0.0 } else { g })
        .collect()
}

/// The fused output against the plain call's (no ReLU) followed by the add
/// in float32 and the ReLU: within the rounding of the add, which the fused
/// call may make before rounding bn(x) (half an ulp of each, with margin).
#[track_caller]
fn assert_fused(what: &str, fused: &[f32], plain: &[f32], residual: &[f32], relu: bool) {
    assert_eq!(fused.len(), plain.len(), "{}: length", what);
    for i in 0..fused.len() {
        let sum = plain[i] + residual[i];
        let expected = if relu && sum < 0.0 { 0.0 } else { sum };
        let bound = f32::EPSILON as f64 * (plain[i].abs() as f64 + residual[i].abs() as f64);
        assert!(
            (fused[i] as f64 - expected as f64).abs() <= bound,
            "{}[{}]: fused {}, plain then add {} (bn {}, residual {})",
            what,
            i,
            fused[i],
            expected,
            plain[i],
            residual[i]
        );
        if relu {
            assert!(fused[i] >= 0.0, "{}[{}]: ReLU left {}", what, i, fused[i]);
        }
    }
}

/// One layer and one batch with its residual and gradient.
struct Case {
    desc: Descriptor,
    shape: Shape,
    view: View,
    x: Vec<f32>,
    residual: Vec<f32>,
    dy: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// Inference statistics, and the running statistics training starts from.
    mean: Vec<f32>,
    var: Vec<f32>,
}

impl Case {
    /// A random case with at least two values per channel; with
    /// `spatial_one`, every spatial dimension is 1 (N values per channel).
    fn random(
        rng: &mut Rng,
        layout: Layout,
        rank: usize,
        channels: i64,
        flags: Flags,
        spatial_one: bool,
    ) -> Case {
        let desc = Descriptor::new(channels)
            .unwrap()
            .with_layout(layout)
            .with_flags(flags)
            .with_eps(rng.pick(&[1e-5, 1e-3, 0.5]))
            .with_momentum(rng.pick(&[0.1, 0.0, 1.0, 0.37]))
            .with_num_threads(rng.pick(&[0, 1, 2]));
        let shape = if spatial_one {
            let mut dims = vec![1; rank];
            dims[0] = rng.range(2, 7);
            dims[layout.channel_axis(rank)] = channels;
            Shape::new(&dims)
        } else {
            common::random_shape(rng, layout, rank, channels, 2)
        };
        let view = View::new(&shape, layout);
        let x = common::random_input(rng, &view);
        let c = channels as usize;
        Case {
            desc,
            shape,
            view,
            // Of the normalized output's size, so that the ReLU cuts often.
            residual: rng.vec(x.len(), -2.0, 2.0),
            dy: rng.vec(x.len(), -1.0, 1.0),
            x,
            gamma: rng.vec(c, -2.0, 2.0),
            beta: rng.vec(c, -1.0, 1.0),
            mean: rng.vec(c, -2.0, 2.0),
            var: rng.vec(c, 0.0, 3.0),
        }
    }

    fn affine(&self) -> Option<Affine<'_>> {
        common::affine_of(&self.desc, &self.gamma, &self.beta)
    }

    fn flag(&self, flag: Flags) -> bool {
        self.desc.flags().contains(flag)
    }

    /// The same layer without the fused ReLU, for the plain calls.
    fn without_relu(&self) -> Descriptor {
        self.desc.with_flags(Flags::from_bits(
            self.desc.flags().bits() & !Flags::FUSE_RELU.bits(),
        ))
    }

    fn describe(&self) -> String {
        format!("{:?} {:?}", self.desc, self.shape)
    }
}

fn flag_sets() -> [Flags; 5] {
    [
        Flags::AFFINE | Flags::TRACK_RUNNING_STATS,
        Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU,
        Flags::empty(),
        Flags::FUSE_RELU | Flags::TRACK_RUNNING_STATS,
        Flags::AFFINE | Flags::FUSE_RELU | Flags::USE_GLOBAL_STATS,
    ]
}

#[test]
fn residual_calls_match_the_reference_and_the_plain_calls() {
    let mut rng = Rng::new(31);
    let mut masked = 0;
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for rank in 2..=5 {
            for &channels in CHANNELS.iter() {
                for flags in flag_sets() {
                    masked += check_case(&Case::random(
                        &mut rng, layout, rank, channels, flags, false,
                    ));
                }
            }
        }
    }
    // The residual is of the output's size: the ReLU cuts a good share.
    assert!(masked > 1000, "the ReLU masked only {} values", masked);
}

#[test]
fn a_spatial_size_of_one_is_n_values_per_channel() {
    let mut rng = Rng::new(32);
    let mut masked = 0;
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for rank in 2..=5 {
            for &channels in CHANNELS.iter() {
                for flags in flag_sets() {
                    let case = Case::random(&mut rng, layout, rank, channels, flags, true);
                    assert_eq!(case.view.count() as i64, case.shape.dims()[0]);
                    masked += check_case(&case);
                }
            }
        }
    }
    assert!(masked > 0, "the ReLU never masked dy");
}

/// Checks every call on `case`; returns how many values the ReLU masked in
/// the backward.
fn check_case(case: &Case) -> usize {
    check_inference(case);
    let forward = check_training(case);
    check_backward(case, &forward)
}

fn check_inference(case: &Case) {
    let what = case.describe();
    let relu = case.flag(Flags::FUSE_RELU);
    let mut y = vec![f32::NAN; case.x.len()];
    bnorm::forward_inference_residual(
        &case.desc,
        &case.shape,
        &case.x,
        &case.residual,
        &mut y,
        &case.mean,
        &case.var,
        case.affine(),
    )
    .unwrap();
    let params = ReferenceParams::of(&case.desc, case.affine()).with_residual(&case.residual);
    let expected = common::inference(&case.view, &case.x, &case.mean, &case.var, &params);
    assert_close(
        &format!("inference y of {}", what),
        &y,
        &expected,
        TOLERANCE,
    );

    // The plain call without ReLU, then the add and the ReLU.
    let mut plain = vec![f32::NAN; case.x.len()];
    bnorm::forward_inference(
        &case.without_relu(),
        &case.shape,
        &case.x,
        &mut plain,
        &case.mean,
        &case.var,
        case.affine(),
    )
    .unwrap();
    assert_fused(
        &format!("inference y against forward_inference, {}", what),
        &y,
        &plain,
        &case.residual,
        relu,
    );

    // In place, over either input: the same bits.
    let mut over_x = case.x.clone();
    bnorm::forward_inference_residual_in_place(
        &case.desc,
        &case.shape,
        &mut over_x,
        &case.residual,
        &case.mean,
        &case.var,
        case.affine(),
    )
    .unwrap();
    assert_eq!(bits32(&over_x), bits32(&y), "over x, {}", what);
    let mut over_residual = case.residual.clone();
    bnorm::forward_inference_residual_over_residual(
        &case.desc,
        &case.shape,
        &case.x,
        &mut over_residual,
        &case.mean,
        &case.var,
        case.affine(),
    )
    .unwrap();
    assert_eq!(
        bits32(&over_residual),
        bits32(&y),
        "over residual, {}",
        what
    );
}

fn check_training(case: &Case) -> Training {
    let what = case.describe();
    let relu = case.flag(Flags::FUSE_RELU);
    let c = case.view.channels;
    let mut out = Training {
        y: vec![f32::NAN; case.x.len()],
        running_mean: case.mean.clone(),
        running_var: case.var.clone(),
        save_mean: vec![f32::NAN; c],
        save_invstd: vec![f32::NAN; c],
    };
    bnorm::forward_training_residual(
        &case.desc,
        &case.shape,
        &case.x,
        &case.residual,
        &mut out.y,
        case.affine(),
        Some(RunningStats {
            mean: &mut out.running_mean,
            var: &mut out.running_var,
        }),
        Some(SaveStats {
            mean: &mut out.save_mean,
            invstd: &mut out.save_invstd,
        }),
    )
    .unwrap();

    // ---- the reference: the statistics are x's, the residual is added.
    let params = ReferenceParams::of(&case.desc, case.affine()).with_residual(&case.residual);
    let expected = common::training(&case.view, &case.x, &params);
    assert_close(
        &format!("training y of {}", what),
        &out.y,
        &expected.y,
        TOLERANCE,
    );
    assert_close(
        &format!("save mean of {}", what),
        &out.save_mean,
        &expected.mean,
        1e-5,
    );
    assert_close(
        &format!("save invstd of {}", what),
        &out.save_invstd,
        &expected.invstd,
        1e-5,
    );
    if case.flag(Flags::TRACK_RUNNING_STATS) {
        let m = case.desc.momentum() as f64;
        let blend = |old: &[f32], batch: &[f64]| -> Vec<f64> {
            old.iter()
                .zip(batch)
                .map(|(&o, &b)| (1.0 - m) * o as f64 + m * b)
                .collect()
        };
        assert_close(
            &format!("running mean of {}", what),
            &out.running_mean,
            &blend(&case.mean, &expected.mean),
            1e-5,
        );
        assert_close(
            &format!("running var of {}", what),
            &out.running_var,
            &blend(&case.var, &expected.unbiased_var),
            1e-5,
        );
    } else {
        // Not the library's to touch.
        assert_eq!(out.running_mean, case.mean, "{}", what);
        assert_eq!(out.running_var, case.var, "{}", what);
    }

    // ---- the plain call without ReLU, then the add and the ReLU; the
    // statistics come from the same reduction of the same x and shape.
    let plain = Training::run(
        &case.without_relu(),
        &case.shape,
        &case.x,
        case.affine(),
        (case.mean.clone(), case.var.clone()),
        f32::NAN,
    )
    .unwrap();
    assert_fused(
        &format!("training y against forward_training, {}", what),
        &out.y,
        &plain.y,
        &case.residual,
        relu,
    );
    let stats = |t: &Training| {
        (
            bits32(&t.save_mean),
            bits32(&t.save_invstd),
            bits32(&t.running_mean),
            bits32(&t.running_var),
        )
    };
    assert!(
        stats(&out) == stats(&plain),
        "statistics against forward_training, {}",
        what
    );

    // ---- in place over either input, without the saved statistics: the
    // same bits, and the same running statistics.
    let mut over_x = case.x.clone();
    let (mut rm, mut rv) = (case.mean.clone(), case.var.clone());
    bnorm::forward_training_residual_in_place(
        &case.desc,
        &case.shape,
        &mut over_x,
        &case.residual,
        case.affine(),
        Some(RunningStats {
            mean: &mut rm,
            var: &mut rv,
        }),
        None,
    )
    .unwrap();
    assert_eq!(bits32(&over_x), bits32(&out.y), "over x, {}", what);
    assert_eq!(
        (bits32(&rm), bits32(&rv)),
        (bits32(&out.running_mean), bits32(&out.running_var)),
        "over x, {}",
        what
    );
    let mut over_residual = case.residual.clone();
    let (mut save_mean, mut save_invstd) = (vec![f32::NAN; c], vec![f32::NAN; c]);
    let (mut rm, mut rv) = (case.mean.clone(), case.var.clone());
    bnorm::forward_training_residual_over_residual(
        &case.desc,
        &case.shape,
        &case.x,
        &mut over_residual,
        case.affine(),
        Some(RunningStats {
            mean: &mut rm,
            var: &mut rv,
        }),
        Some(SaveStats {
            mean: &mut save_mean,
            invstd: &mut save_invstd,
        }),
    )
    .unwrap();
    assert_eq!(
        bits32(&over_residual),
        bits32(&out.y),
        "over residual, {}",
        what
    );
    assert_eq!(
        (bits32(&save_mean), bits32(&save_invstd)),
        (bits32(&out.save_mean), bits32(&out.save_invstd)),
        "over residual, {}",
        what
    );
    out
}

fn check_backward(case: &Case, forward: &Training) -> usize {
    let what = case.describe();
    let c = case.view.channels;
    let relu = case.flag(Flags::FUSE_RELU);
    let global = case.flag(Flags::USE_GLOBAL_STATS);
    let (mean, invstd) = if global {
        // Frozen BN: the running statistics, passed as mean and 1/std.
        let eps = case.desc.eps();
        let invstd = forward
            .running_var
            .iter()
            .map(|v| 1.0 / (v + eps).sqrt())
            .collect();
        (forward.running_mean.clone(), invstd)
    } else {
        (forward.save_mean.clone(), forward.save_invstd.clone())
    };
    let input = BackwardInput {
        x: &case.x,
        y: if relu { Some(&forward.y) } else { None },
        gamma: case.affine().map(|a| a.gamma),
        mean: &mean,
        invstd: &invstd,
    };
    let mut dx = vec![f32::NAN; case.x.len()];
    let mut d_residual = vec![f32::NAN; case.x.len()];
    let (mut dgamma, mut dbeta) = (vec![f32::NAN; c], vec![f32::NAN; c]);
    bnorm::backward_residual(
        &case.desc,
        &case.shape,
        input,
        &case.dy,
        &mut dx,
        &mut d_residual,
        ParamGrads {
            dgamma: Some(&mut dgamma),
            dbeta: Some(&mut dbeta),
        },
    )
    .unwrap();

    // d_residual is dy, masked by the residual forward's output with ReLU.
    let want = if relu {
        relu_mask(&case.dy, &forward.y)
    } else {
        case.dy.clone()
    };
    assert_eq!(bits32(&d_residual), bits32(&want), "d_residual of {}", what);
    let masked = if relu {
        forward.y.iter().filter(|&&v| v <= 0.0).count()
    } else {
        0
    };

    // ---- the reference.
    let expected = common::backward(
        &case.view,
        &case.x,
        &case.dy,
        input.y,
        input.gamma,
        &mean,
        &invstd,
        global,
    );
    assert_close(&format!("dx of {}", what), &dx, &expected.dx, TOLERANCE);
    assert_close(
        &format!("dgamma of {}", what),
        &dgamma,
        &expected.dgamma,
        TOLERANCE,
    );
    assert_close(
        &format!("dbeta of {}", what),
        &dbeta,
        &expected.dbeta,
        TOLERANCE,
    );

    // ---- backward with the same flags and the same y: the same bits.
    let mut plain_dx = vec![f32::NAN; case.x.len()];
    let (mut plain_dgamma, mut plain_dbeta) = (vec![f32::NAN; c], vec![f32::NAN; c]);
    bnorm::backward(
        &case.desc,
        &case.shape,
        input,
        &case.dy,
        Some(&mut plain_dx),
        ParamGrads {
            dgamma: Some(&mut plain_dgamma),
            dbeta: Some(&mut plain_dbeta),
        },
    )
    .unwrap();
    assert_eq!(
        bits32(&dx),
        bits32(&plain_dx),
        "dx against backward, {}",
        what
    );
    assert_eq!(
        (bits32(&dgamma), bits32(&dbeta)),
        (bits32(&plain_dgamma), bits32(&plain_dbeta)),
        "dgamma and dbeta against backward, {}",
        what
    );

    // ---- in place: dx over dy, then d_residual over dy.
    let mut dy_dx = case.dy.clone();
    let mut other = vec![f32::NAN; case.x.len()];
    bnorm::backward_residual_in_place(
        &case.desc,
        &case.shape,
        input,
        &mut dy_dx,
        &mut other,
        ParamGrads::default(),
    )
    .unwrap();
    assert_eq!(bits32(&dy_dx), bits32(&dx), "dx over dy, {}", what);
    assert_eq!(bits32(&other), bits32(&d_residual), "dx over dy, {}", what);
    let mut dy_d_residual = case.dy.clone();
    let mut other = vec![f32::NAN; case.x.len()];
    let (mut dgamma_again, mut dbeta_again) = (vec![f32::NAN; c], vec![f32::NAN; c]);
    bnorm::backward_residual_d_residual_in_place(
        &case.desc,
        &case.shape,
        input,
        &mut dy_d_residual,
        &mut other,
        ParamGrads {
            dgamma: Some(&mut dgamma_again),
            dbeta: Some(&mut dbeta_again),
        },
    )
    .unwrap();
    assert_eq!(
        bits32(&dy_d_residual),
        bits32(&d_residual),
        "d_residual over dy, {}",
        what
    );
    assert_eq!(bits32(&other), bits32(&dx), "d_residual over dy, {}", what);
    assert_eq!(
        (bits32(&dgamma_again), bits32(&dbeta_again)),
        (bits32(&dgamma), bits32(&dbeta)),
        "d_residual over dy, {}",
        what
    );
    masked
}

#[test]
fn the_mask_passes_nan_and_cuts_zero_and_below() {
    // One channel, frozen statistics (so dx is dy * invstd): a forward
    // output of each kind, as the residual's ReLU can leave it.
    let desc = Descriptor::new(1)
        .unwrap()
        .with_flags(Flags::FUSE_RELU | Flags::USE_GLOBAL_STATS);
    let shape = Shape::new(&[6, 1]);
    let y = [2.0f32, 0.0, -0.0, f32::NAN, 1e-30, f32::INFINITY];
    let dy = [0.5f32, 0.25, -1.0, 3.0, -2.0, 7.0];
    let x = [0.0f32; 6];
    let (mean, invstd) = ([0.0f32], [2.0f32]);
    let input = BackwardInput {
        x: &x,
        y: Some(&y),
        gamma: None,
        mean: &mean,
        invstd: &invstd,
    };
    let mut dx = [f32::NAN; 6];
    let mut d_residual = [f32::NAN; 6];
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
    assert_eq!(
        bits32(&d_residual),
        bits32(&[0.5, 0.0, 0.0, 3.0, -2.0, 7.0])
    );
    assert_eq!(bits32(&dx), bits32(&[1.0, 0.0, 0.0, 6.0, -4.0, 14.0]));

    // Forward: NaN stays NaN through the ReLU, negative sums become 0.
    let inference = Descriptor::new(1).unwrap().with_flags(Flags::FUSE_RELU);
    let x = [0.0f32, 0.0, 0.0, f32::NAN];
    let residual = [1.5f32, -1.5, f32::NAN, 1.0];
    let mut out = [f32::NAN; 4];
    // mean 0 and var 1 - eps: bn(0) is exactly 0.
    let var = [1.0f32 - 1e-5];
    bnorm::forward_inference_residual(
        &inference,
        &Shape::new(&[4, 1]),
        &x,
        &residual,
        &mut out,
        &[0.0],
        &var,
        None,
    )
    .unwrap();
    assert_eq!(out[..2], [1.5, 0.0]);
    assert!(out[2].is_nan() && out[3].is_nan(), "{:?}", out);
}

#[test]
fn the_residual_may_be_x_itself() {
    // y = bn(x) + x: inputs may overlap each other, only outputs may not.
    let mut rng = Rng::new(33);
    let shape = Shape::new(&[3, 5, 4]);
    let view = View::new(&shape, Layout::Nchw);
    let desc = Descriptor::new(5).unwrap().with_flags(Flags::FUSE_RELU);
    let x = common::random_input(&mut rng, &view);
    let (mean, var) = (rng.vec(5, -1.0, 1.0), rng.vec(5, 0.5, 2.0));
    let mut y = vec![f32::NAN; x.len()];
    bnorm::forward_inference_residual(&desc, &shape, &x, &x, &mut y, &mean, &var, None).unwrap();
    let params = ReferenceParams::of(&desc, None).with_residual(&x);
    let expected = common::inference(&view, &x, &mean, &var, &params);
    assert_close("y", &y, &expected, TOLERANCE);
    let mut y_training = vec![f32::NAN; x.len()];
    bnorm::forward_training_residual(&desc, &shape, &x, &x, &mut y_training, None, None, None)
        .unwrap();
    let expected = common::training(&view, &x, &params);
    assert_close("training y", &y_training, &expected.y, TOLERANCE);
}

#[test]
fn every_call_gives_the_same_bits_for_every_thread_count() {
    // Large enough (about 600 KB) that the library splits the work over
    // threads (it gives each at least 64 KiB).
    let mut rng = Rng::new(34);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let dims = match layout {
            Layout::Nchw => [16, 17, 24, 24],
            Layout::Nhwc => [16, 24, 24, 17],
        };
        let shape = Shape::new(&dims);
        let view = View::new(&shape, layout);
        let x = common::random_input(&mut rng, &view);
        let residual = rng.vec(x.len(), -2.0, 2.0);
        let dy = rng.vec(x.len(), -1.0, 1.0);
        let gamma = rng.vec(17, -2.0, 2.0);
        let beta = rng.vec(17, -1.0, 1.0);
        let (mean, var) = (rng.vec(17, -1.0, 1.0), rng.vec(17, 0.5, 2.0));
        let run = |threads: i32| {
            let desc = Descriptor::new(17)
                .unwrap()
                .with_layout(layout)
                .with_flags(Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU)
                .with_num_threads(threads);
            let affine = Affine {
                gamma: &gamma,
                beta: &beta,
            };
            let mut infer_y = vec![f32::NAN; x.len()];
            bnorm::forward_inference_residual(
                &desc,
                &shape,
                &x,
                &residual,
                &mut infer_y,
                &mean,
                &var,
                Some(affine),
            )
            .unwrap();
            let mut y = vec![f32::NAN; x.len()];
            let (mut rm, mut rv) = (mean.clone(), var.clone());
            let (mut save_mean, mut save_invstd) = (vec![f32::NAN; 17], vec![f32::NAN; 17]);
            bnorm::forward_training_residual(
                &desc,
                &shape,
                &x,
                &residual,
                &mut y,
                Some(affine),
                Some(RunningStats {
                    mean: &mut rm,
                    var: &mut rv,
                }),
                Some(SaveStats {
                    mean: &mut save_mean,
                    invstd: &mut save_invstd,
                }),
            )
            .unwrap();
            let mut dx = vec![f32::NAN; x.len()];
            let mut d_residual = vec![f32::NAN; x.len()];
            let (mut dgamma, mut dbeta) = (vec![f32::NAN; 17], vec![f32::NAN; 17]);
            bnorm::backward_residual(
                &desc,
                &shape,
                BackwardInput {
                    x: &x,
                    y: Some(&y),
                    gamma: Some(&gamma),
                    mean: &save_mean,
                    invstd: &save_invstd,
                },
                &dy,
                &mut dx,
                &mut d_residual,
                ParamGrads {
                    dgamma: Some(&mut dgamma),
                    dbeta: Some(&mut dbeta),
                },
            )
            .unwrap();
            [
                infer_y,
                y,
                rm,
                rv,
                save_mean,
                save_invstd,
                dx,
                d_residual,
                dgamma,
                dbeta,
            ]
            .iter()
            .map(|v| bits32(v))
            .collect::<Vec<_>>()
        };
        let one = run(1);
        for threads in [0, 2, 3, 4, 8] {
            assert!(run(threads) == one, "{:?} with {} threads", layout, threads);
        }
    }
}

// ------------------------------------------------------------------ errors

/// Every buffer of the residual calls for a 3-channel layer with every flag
/// that adds one (AFFINE, TRACK_RUNNING_STATS, FUSE_RELU) and a 2x3x2x2 NCHW
/// tensor (8 values per channel). The inputs are valid, so that each call
/// succeeds until a test spoils one thing; outputs start as NaN.
struct Buffers {
    desc: Descriptor,
    shape: Shape,
    x: Vec<f32>,
    residual: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    d_residual: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// Inference's statistics, and with `invstd` backward's.
    mean: Vec<f32>,
    var: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    save_mean: Vec<f32>,
    save_invstd: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    /// Which optional arguments are passed.
    with_affine: bool,
    with_running: bool,
    with_y: bool,
}

/// A training call given x, residual and y (which in-place calls skip).
type TrainingCall = fn(
    &Descriptor,
    &Shape,
    &mut [f32],
    &mut [f32],
    &mut [f32],
    Option<Affine<'_>>,
    Option<RunningStats<'_>>,
    Option<SaveStats<'_>>,
) -> Result<(), Error>;

/// A backward call given dy, dx and d_residual (which in-place calls skip).
type BackwardCall = fn(
    &Descriptor,
    &Shape,
    BackwardInput<'_>,
    &mut [f32],
    &mut [f32],
    &mut [f32],
    ParamGrads<'_>,
) -> Result<(), Error>;

impl Buffers {
    fn new() -> Buffers {
        let tensor = |seed: u64| Rng::new(seed).vec(24, -1.0, 1.0);
        Buffers {
            desc: Descriptor::new(3)
                .unwrap()
                .with_flags(Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU),
            shape: Shape::new(&[2, 3, 2, 2]),
            x: tensor(1),
            residual: tensor(2),
            y: tensor(3),
            dy: tensor(4),
            dx: vec![f32::NAN; 24],
            d_residual: vec![f32::NAN; 24],
            gamma: vec![1.5, -0.5, 2.0],
            beta: vec![0.25, 0.0, -1.0],
            mean: vec![0.1, -0.2, 0.3],
            var: vec![0.5, 1.0, 2.0],
            invstd: vec![2.0, 1.0, 0.5],
            running_mean: vec![0.0; 3],
            running_var: vec![1.0; 3],
            save_mean: vec![f32::NAN; 3],
            save_invstd: vec![f32::NAN; 3],
            dgamma: vec![f32::NAN; 3],
            dbeta: vec![f32::NAN; 3],
            with_affine: true,
            with_running: true,
            with_y: true,
        }
    }

    /// Every buffer's bits, inputs included, to see that a failing call
    /// wrote nothing.
    fn snapshot(&self) -> Vec<Vec<u32>> {
        [
            &self.x,
            &self.residual,
            &self.y,
            &self.dy,
            &self.dx,
            &self.d_residual,
            &self.gamma,
            &self.beta,
            &self.mean,
            &self.var,
            &self.invstd,
            &self.running_mean,
            &self.running_var,
            &self.save_mean,
            &self.save_invstd,
            &self.dgamma,
            &self.dbeta,
        ]
        .iter()
        .map(|v| bits32(v))
        .collect()
    }

    fn affine(&self) -> Option<Affine<'_>> {
        if self.with_affine {
            Some(Affine {
                gamma: &self.gamma,
                beta: &self.beta,
            })
        } else {
            None
        }
    }

    fn inference(&mut self) -> Result<(), Error> {
        let mut y = std::mem::take(&mut self.y);
        let result = bnorm::forward_inference_residual(
            &self.desc,
            &self.shape,
            &self.x,
            &self.residual,
            &mut y,
            &self.mean,
            &self.var,
            self.affine(),
        );
        self.y = y;
        result
    }

    fn inference_in_place(&mut self) -> Result<(), Error> {
        let mut x = std::mem::take(&mut self.x);
        let result = bnorm::forward_inference_residual_in_place(
            &self.desc,
            &self.shape,
            &mut x,
            &self.residual,
            &self.mean,
            &self.var,
            self.affine(),
        );
        self.x = x;
        result
    }

    fn inference_over_residual(&mut self) -> Result<(), Error> {
        let mut residual = std::mem::take(&mut self.residual);
        let result = bnorm::forward_inference_residual_over_residual(
            &self.desc,
            &self.shape,
            &self.x,
            &mut residual,
            &self.mean,
            &self.var,
            self.affine(),
        );
        self.residual = residual;
        result
    }

    /// `call` with this struct's buffers.
    fn training_with(&mut self, call: TrainingCall) -> Result<(), Error> {
        let (mut x, mut residual, mut y) = (
            std::mem::take(&mut self.x),
            std::mem::take(&mut self.residual),
            std::mem::take(&mut self.y),
        );
        let affine = if self.with_affine {
            Some(Affine {
                gamma: &self.gamma,
                beta: &self.beta,
            })
        } else {
            None
        };
        let running = if self.with_running {
            Some(RunningStats {
                mean: &mut self.running_mean,
                var: &mut self.running_var,
            })
        } else {
            None
        };
        let save = Some(SaveStats {
            mean: &mut self.save_mean,
            invstd: &mut self.save_invstd,
        });
        let result = call(
            &self.desc,
            &self.shape,
            &mut x,
            &mut residual,
            &mut y,
            affine,
            running,
            save,
        );
        self.x = x;
        self.residual = residual;
        self.y = y;
        result
    }

    fn training(&mut self) -> Result<(), Error> {
        self.training_with(|desc, shape, x, residual, y, affine, running, save| {
            bnorm::forward_training_residual(desc, shape, x, residual, y, affine, running, save)
        })
    }

    fn training_in_place(&mut self) -> Result<(), Error> {
        self.training_with(|desc, shape, x, residual, _, affine, running, save| {
            bnorm::forward_training_residual_in_place(
                desc, shape, x, residual, affine, running, save,
            )
        })
    }

    fn training_over_residual(&mut self) -> Result<(), Error> {
        self.training_with(|desc, shape, x, residual, _, affine, running, save| {
            bnorm::forward_training_residual_over_residual(
                desc, shape, x, residual, affine, running, save,
            )
        })
    }

    /// `call` with this struct's buffers.
    fn backward_with(&mut self, call: BackwardCall) -> Result<(), Error> {
        let (mut dy, mut dx, mut d_residual) = (
            std::mem::take(&mut self.dy),
            std::mem::take(&mut self.dx),
            std::mem::take(&mut self.d_residual),
        );
        let input = BackwardInput {
            x: &self.x,
            y: if self.with_y { Some(&self.y) } else { None },
            gamma: if self.with_affine {
                Some(&self.gamma)
            } else {
                None
            },
            mean: &self.mean,
            invstd: &self.invstd,
        };
        let grads = ParamGrads {
            dgamma: Some(&mut self.dgamma),
            dbeta: Some(&mut self.dbeta),
        };
        let result = call(
            &self.desc,
            &self.shape,
            input,
            &mut dy,
            &mut dx,
            &mut d_residual,
            grads,
        );
        self.dy = dy;
        self.dx = dx;
        self.d_residual = d_residual;
        result
    }

    fn backward(&mut self) -> Result<(), Error> {
        self.backward_with(|desc, shape, input, dy, dx, d_residual, grads| {
            bnorm::backward_residual(desc, shape, input, dy, dx, d_residual, grads)
        })
    }

    fn backward_in_place(&mut self) -> Result<(), Error> {
        self.backward_with(|desc, shape, input, dy, _, d_residual, grads| {
            bnorm::backward_residual_in_place(desc, shape, input, dy, d_residual, grads)
        })
    }

    fn backward_d_residual_in_place(&mut self) -> Result<(), Error> {
        self.backward_with(|desc, shape, input, dy, dx, _, grads| {
            bnorm::backward_residual_d_residual_in_place(desc, shape, input, dy, dx, grads)
        })
    }
}

type Call = fn(&mut Buffers) -> Result<(), Error>;
type Change = fn(&mut Buffers);

const CALLS: [(&str, Call); 9] = [
    ("forward_inference_residual", Buffers::inference),
    (
        "forward_inference_residual_in_place",
        Buffers::inference_in_place,
    ),
    (
        "forward_inference_residual_over_residual",
        Buffers::inference_over_residual,
    ),
    ("forward_training_residual", Buffers::training),
    (
        "forward_training_residual_in_place",
        Buffers::training_in_place,
    ),
    (
        "forward_training_residual_over_residual",
        Buffers::training_over_residual,
    ),
    ("backward_residual", Buffers::backward),
    ("backward_residual_in_place", Buffers::backward_in_place),
    (
        "backward_residual_d_residual_in_place",
        Buffers::backward_d_residual_in_place,
    ),
];

/// `change` spoils fresh buffers; `call` must then fail with `status` and
/// `message` and leave every buffer, inputs included, as it was.
#[track_caller]
fn assert_fails(function: &str, change: Change, call: Call, status: Status, message: &str) {
    let mut buffers = Buffers::new();
    change(&mut buffers);
    let before = buffers.snapshot();
    let err = call(&mut buffers).expect_err(function);
    assert_eq!(err.status(), status, "{}: {}", function, err);
    assert_eq!(err.message(), message, "{}", function);
    assert!(
        buffers.snapshot() == before,
        "{} wrote before failing",
        function
    );
}

#[test]
fn the_valid_buffers_pass_every_call() {
    for &(function, call) in CALLS.iter() {
        let mut buffers = Buffers::new();
        let before = buffers.snapshot();
        call(&mut buffers).unwrap_or_else(|err| panic!("{}: {}", function, err));
        // And the call wrote something.
        assert!(buffers.snapshot() != before, "{}", function);
    }
}

#[test]
fn every_slice_length_is_checked_before_calling_c() {
    let tensor = |name: &str, len: usize| {
        format!(
            "{} has {} elements but shape [2, 3, 2, 2] has 24",
            name, len
        )
    };
    let channel =
        |name: &str, len: usize| format!("{} has {} elements but num_features is 3", name, len);
    // Per call: the slices it checks, each made too short and too long.
    let inference: [(&str, Change, String); 6] = [
        ("x", |b| b.x.truncate(23), tensor("x", 23)),
        ("residual", |b| b.residual.push(0.0), tensor("residual", 25)),
        ("mean", |b| b.mean.truncate(2), channel("mean", 2)),
        ("var", |b| b.var.push(1.0), channel("var", 4)),
        ("gamma", |b| b.gamma.clear(), channel("gamma", 0)),
        ("beta", |b| b.beta.push(0.0), channel("beta", 4)),
    ];
    for (_, change, message) in inference.iter() {
        for &(function, call) in CALLS[..3].iter() {
            assert_fails(function, *change, call, Status::LENGTH_MISMATCH, message);
        }
    }
    assert_fails(
        "forward_inference_residual",
        |b| b.y.truncate(12),
        Buffers::inference,
        Status::LENGTH_MISMATCH,
        &tensor("y", 12),
    );
    let training: [(&str, Change, String); 8] = [
        ("x", |b| b.x.push(0.0), tensor("x", 25)),
        (
            "residual",
            |b| b.residual.truncate(23),
            tensor("residual", 23),
        ),
        ("gamma", |b| b.gamma.truncate(2), channel("gamma", 2)),
        ("beta", |b| b.beta.truncate(1), channel("beta", 1)),
        (
            "running mean",
            |b| b.running_mean.push(0.0),
            channel("running mean", 4),
        ),
        (
            "running var",
            |b| b.running_var.truncate(2),
            channel("running var", 2),
        ),
        (
            "save mean",
            |b| b.save_mean.truncate(2),
            channel("save mean", 2),
        ),
        (
            "save invstd",
            |b| b.save_invstd.push(0.0),
            channel("save invstd", 4),
        ),
    ];
    for (_, change, message) in training.iter() {
        for &(function, call) in CALLS[3..6].iter() {
            assert_fails(function, *change, call, Status::LENGTH_MISMATCH, message);
        }
    }
    assert_fails(
        "forward_training_residual",
        |b| b.y.push(0.0),
        Buffers::training,
        Status::LENGTH_MISMATCH,
        &tensor("y", 25),
    );
    let backward: [(&str, Change, String); 7] = [
        ("dy", |b| b.dy.truncate(23), tensor("dy", 23)),
        ("x", |b| b.x.truncate(23), tensor("x", 23)),
        ("y", |b| b.y.push(0.0), tensor("y", 25)),
        ("gamma", |b| b.gamma.push(0.0), channel("gamma", 4)),
        ("mean", |b| b.mean.truncate(2), channel("mean", 2)),
        ("invstd", |b| b.invstd.clear(), channel("invstd", 0)),
        ("dgamma", |b| b.dgamma.truncate(2), channel("dgamma", 2)),
    ];
    for (_, change, message) in backward.iter() {
        for &(function, call) in CALLS[6..].iter() {
            assert_fails(function, *change, call, Status::LENGTH_MISMATCH, message);
        }
    }
    let outputs: [(&str, Change, Call, String); 5] = [
        (
            "backward_residual",
            |b| b.dx.truncate(23),
            Buffers::backward,
            tensor("dx", 23),
        ),
        (
            "backward_residual",
            |b| b.d_residual.push(0.0),
            Buffers::backward,
            tensor("d_residual", 25),
        ),
        (
            "backward_residual",
            |b| b.dbeta.push(0.0),
            Buffers::backward,
            channel("dbeta", 4),
        ),
        (
            "backward_residual_in_place",
            |b| b.d_residual.truncate(1),
            Buffers::backward_in_place,
            tensor("d_residual", 1),
        ),
        (
            "backward_residual_d_residual_in_place",
            |b| b.dx.truncate(1),
            Buffers::backward_d_residual_in_place,
            tensor("dx", 1),
        ),
    ];
    for (function, change, call, message) in outputs.iter() {
        assert_fails(function, *change, *call, Status::LENGTH_MISMATCH, message);
    }
}

#[test]
fn a_tensor_whose_channels_differ_from_the_layer_is_feature_mismatch() {
    // 4 channels against num_features 3; 24 elements, so the lengths pass
    // and the library names both numbers.
    for &(function, call) in CALLS.iter() {
        assert_fails(
            function,
            |b| b.shape = Shape::new(&[2, 4, 3, 1]),
            call,
            Status::FEATURE_MISMATCH,
            "input channel dimension (dim 1) is 4 but num_features is 3",
        );
        assert_fails(
            function,
            |b| b.desc = b.desc.with_layout(Layout::Nhwc),
            call,
            Status::FEATURE_MISMATCH,
            "input channel dimension (dim 3) is 2 but num_features is 3; \
             dim 1 is 3: is the tensor channels-first? set layout to BNORM_LAYOUT_NCHW",
        );
        assert_fails(
            function,
            |b| b.shape = Shape::new(&[24]),
            call,
            Status::INVALID_SHAPE,
            "rank is 1; it must be 2 to 5",
        );
        assert_fails(
            function,
            |b| b.shape = Shape::new(&[2, 3, 0, 4]),
            call,
            Status::INVALID_SHAPE,
            "dims[2] is 0; every dimension must be > 0",
        );
    }
}

#[test]
fn a_bad_descriptor_field_fails_every_call_before_anything_is_written() {
    for &(function, call) in CALLS.iter() {
        assert_fails(
            function,
            |b| b.desc = b.desc.with_eps(0.0),
            call,
            Status::INVALID_ARGUMENT,
            "eps is 0; it must be finite and > 0",
        );
        assert_fails(
            function,
            |b| b.desc = b.desc.with_momentum(-1.0),
            call,
            Status::INVALID_ARGUMENT,
            "momentum is -1; it must be in [0, 1]",
        );
        assert_fails(
            function,
            |b| b.desc = b.desc.with_flags(Flags::from_bits(0x40)),
            call,
            Status::INVALID_ARGUMENT,
            "flags 0x40 has unknown bits 0x40",
        );
        assert_fails(
            function,
            |b| b.desc = b.desc.with_num_threads(-2),
            call,
            Status::INVALID_ARGUMENT,
            "num_threads is -2; it must be >= 0",
        );
    }
}

#[test]
fn buffers_a_flag_requires_are_null_pointer_when_left_out() {
    for &(function, call) in CALLS.iter() {
        assert_fails(
            function,
            |b| b.with_affine = false,
            call,
            Status::NULL_POINTER,
            "gamma is NULL but BNORM_FLAG_AFFINE is set",
        );
    }
    for &(function, call) in CALLS[3..6].iter() {
        assert_fails(
            function,
            |b| b.with_running = false,
            call,
            Status::NULL_POINTER,
            "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set",
        );
    }
    for &(function, call) in CALLS[6..].iter() {
        assert_fails(
            function,
            |b| b.with_y = false,
            call,
            Status::NULL_POINTER,
            "y is NULL but BNORM_FLAG_FUSE_RELU is set",
        );
    }
    // Without the flags, the same arguments are optional.
    for &(function, call) in CALLS.iter() {
        let mut buffers = Buffers::new();
        buffers.with_affine = false;
        buffers.with_running = false;
        buffers.with_y = false;
        buffers.desc = buffers.desc.with_flags(Flags::empty());
        call(&mut buffers).unwrap_or_else(|err| panic!("{}: {}", function, err));
    }
}

#[test]
fn batch_statistics_need_two_values_per_channel() {
    // One sample of a BatchNorm1d layer: (1, 3), one value per channel.
    let one_value: Change = |b| {
        b.shape = Shape::new(&[1, 3]);
        for tensor in [
            &mut b.x,
            &mut b.residual,
            &mut b.y,
            &mut b.dy,
            &mut b.dx,
            &mut b.d_residual,
        ] {
            tensor.truncate(3);
        }
    };
    for &(function, call) in CALLS[3..6].iter() {
        assert_fails(
            function,
            one_value,
            call,
            Status::TOO_FEW_VALUES,
            "training needs more than 1 value per channel, got input of shape (1, 3)",
        );
    }
    for &(function, call) in CALLS[6..].iter() {
        assert_fails(
            function,
            one_value,
            call,
            Status::TOO_FEW_VALUES,
            "training-mode backward needs more than 1 value per channel, got input of shape \
             (1, 3)",
        );
    }
    // Given statistics need no batch: inference, and backward with frozen ones.
    for &(function, call) in CALLS[..3].iter().chain(CALLS[6..].iter()) {
        let mut buffers = Buffers::new();
        one_value(&mut buffers);
        buffers.desc = buffers
            .desc
            .with_flags(Flags::AFFINE | Flags::FUSE_RELU | Flags::USE_GLOBAL_STATS);
        call(&mut buffers).unwrap_or_else(|err| panic!("{}: {}", function, err));
    }
}

#[test]
fn errors_show_the_status_name_and_the_library_message() {
    let mut buffers = Buffers::new();
    buffers.shape = Shape::new(&[2, 4, 3, 1]);
    let err = buffers.backward().unwrap_err();
    assert_eq!(
        err.to_string(),
        "BNORM_ERR_FEATURE_MISMATCH: input channel dimension (dim 1) is 4 but num_features is 3"
    );
    let mut buffers = Buffers::new();
    buffers.residual.pop();
    let err = buffers.inference().unwrap_err();
    assert_eq!(
        err.to_string(),
        "BNORM_RUST_LENGTH_MISMATCH: residual has 23 elements but shape [2, 3, 2, 2] has 24"
    );
}

/// The raw inference with a residual on a 4x1 tensor (mean 1, var 1, no
/// gamma or beta), the tensors wherever the caller points.
fn raw_inference(
    desc: &sys::bnorm_desc,
    x: *const f32,
    residual: *const f32,
    y: *mut f32,
) -> sys::bnorm_status {
    let shape = sys::bnorm_shape {
        rank: 2,
        dims: [4, 1, 0, 0, 0],
    };
    let stats = [1.0f32];
    unsafe {
        sys::bnorm_forward_inference_residual(
            desc,
            &shape,
            x as *const c_void,
            residual as *const c_void,
            y as *mut c_void,
            stats.as_ptr(),
            stats.as_ptr(),
            ptr::null(),
            ptr::null(),
        )
    }
}

/// The raw backward with a residual on a 4x1 tensor (mean 1, invstd 1, no
/// y or gamma), the tensors wherever the caller points.
fn raw_backward(
    desc: &sys::bnorm_desc,
    x: *const f32,
    dy: *const f32,
    dx: *mut f32,
    d_residual: *mut f32,
) -> sys::bnorm_status {
    let shape = sys::bnorm_shape {
        rank: 2,
        dims: [4, 1, 0, 0, 0],
    };
    let stats = [1.0f32];
    unsafe {
        sys::bnorm_backward_residual(
            desc,
            &shape,
            x as *const c_void,
            dy as *const c_void,
            ptr::null(),
            ptr::null(),
            stats.as_ptr(),
            stats.as_ptr(),
            dx as *mut c_void,
            d_residual as *mut c_void,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    }
}

/// A raw call on three 4-element tensors `a`, `b` and `c` of one buffer.
type RawCall = fn(*mut f32, *mut f32, *mut f32) -> sys::bnorm_status;

#[test]
fn what_the_safe_api_cannot_express_is_rejected_by_the_library() {
    // Through the raw declarations only: the safe functions take slices
    // (never NULL), the borrow checker keeps outputs apart, and the in-place
    // pairs have their own calls.
    let mut memory = [
        1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0,
    ];
    let original = memory;
    let m = memory.as_mut_ptr();
    let (a, b, c) = (m, unsafe { m.add(4) }, unsafe { m.add(8) });
    let cases: [(&str, RawCall, sys::bnorm_status, &str); 7] = [
        (
            "residual NULL",
            |a, _, c| raw_inference(&raw_no_flags(), a, ptr::null(), c),
            sys::BNORM_ERR_NULL_POINTER,
            "residual is NULL",
        ),
        (
            "y one element past residual",
            |a, b, _| raw_inference(&raw_no_flags(), a, b, unsafe { b.add(1) }),
            sys::BNORM_ERR_ALIASING,
            "y overlaps residual (in place is allowed only with the same pointer)",
        ),
        (
            "dx NULL",
            |a, b, c| raw_backward(&raw_no_flags(), a, b, ptr::null_mut(), c),
            sys::BNORM_ERR_NULL_POINTER,
            "dx is NULL",
        ),
        (
            "d_residual NULL",
            |a, b, c| raw_backward(&raw_no_flags(), a, b, c, ptr::null_mut()),
            sys::BNORM_ERR_NULL_POINTER,
            "d_residual is NULL",
        ),
        (
            "dx and d_residual both over dy",
            |a, b, _| raw_backward(&raw_no_flags(), a, b, b, b),
            sys::BNORM_ERR_ALIASING,
            "dx overlaps d_residual",
        ),
        (
            "d_residual over x",
            |a, b, c| raw_backward(&raw_no_flags(), a, b, c, a),
            sys::BNORM_ERR_ALIASING,
            "d_residual overlaps x",
        ),
        (
            "d_residual one element past dy",
            |a, b, c| raw_backward(&raw_no_flags(), a, b, c, unsafe { b.add(1) }),
            sys::BNORM_ERR_ALIASING,
            "d_residual overlaps dy (in place is allowed only with the same pointer)",
        ),
    ];
    for &(what, call, status, message) in cases.iter() {
        assert_eq!(call(a, b, c), status, "{}: {}", what, raw_last_error());
        assert_eq!(raw_last_error(), message, "{}", what);
        assert_eq!(memory, original, "{} wrote before failing", what);
    }

    // A bf16 residual at an odd address: the safe API's `&[Bf16]` is always
    // 2-byte aligned.
    let mut bf16 = raw_no_flags();
    bf16.dtype = sys::BNORM_DTYPE_BF16;
    let odd = unsafe { (b as *mut u8).add(1) } as *mut f32;
    assert_eq!(
        raw_inference(&bf16, a, odd, c),
        sys::BNORM_ERR_INVALID_ARGUMENT,
        "{}",
        raw_last_error()
    );
    assert_eq!(memory, original, "bf16 wrote before failing");

    // y may be exactly x, exactly residual, or both at once (y = bn(x) + x).
    for (y, what) in [(a, "x"), (b, "residual")] {
        let status = raw_inference(&raw_no_flags(), a, b, y);
        assert_eq!(
            status,
            sys::BNORM_OK,
            "y over {}: {}",
            what,
            raw_last_error()
        );
        memory = original;
    }
    let status = raw_inference(&raw_no_flags(), a, a, a);
    assert_eq!(status, sys::BNORM_OK, "{}", raw_last_error());
    // (x - 1) / sqrt(1 + eps) + x for x = 1, 2, 3, 4.
    let expected: Vec<f64> = (1..=4)
        .map(|v| (v as f64 - 1.0) / (1.0f64 + 1e-5).sqrt() + v as f64)
        .collect();
    assert_close("y = bn(x) + x", &memory[..4], &expected, TOLERANCE);
    assert_eq!(memory[4..], original[4..]);
}

fn raw_no_flags() -> sys::bnorm_desc {
    let mut d = raw_desc(1);
    d.flags = 0;
    d
}

#[test]
fn a_hand_sized_training_step() {
    // The residual only shifts y; the statistics stay x's.
    let desc = Descriptor::new(2).unwrap().with_flags(Flags::empty());
    let shape = Shape::new(&[2, 2]);
    let x = [1.0f32, 10.0, 3.0, 20.0];
    let residual = [100.0f32, -100.0, 0.5, 0.25];
    let mut y = [f32::NAN; 4];
    let (mut mean, mut invstd) = ([f32::NAN; 2], [f32::NAN; 2]);
    bnorm::forward_training_residual(
        &desc,
        &shape,
        &x,
        &residual,
        &mut y,
        None,
        None,
        Some(SaveStats {
            mean: &mut mean,
            invstd: &mut invstd,
        }),
    )
    .unwrap();
    assert_close("mean", &mean, &[2.0, 15.0], 1e-6);
    // Channel 0: values 1 and 3, biased variance 1; channel 1: 10 and 20, 25.
    let invstd_expected = [1.0 / (1.0f64 + 1e-5).sqrt(), 1.0 / (25.0f64 + 1e-5).sqrt()];
    assert_close("invstd", &invstd, &invstd_expected, 1e-6);
    let expected: Vec<f64> = vec![
        -invstd_expected[0] + 100.0,
        -5.0 * invstd_expected[1] - 100.0,
        invstd_expected[0] + 0.5,
        5.0 * invstd_expected[1] + 0.25,
    ];
    assert_close("y", &y, &expected, TOLERANCE);
}
