//! The binding's results agree with a float64 reference computed from the
//! same float32 inputs, for random shapes of rank 2 to 5 in both layouts,
//! odd channel counts, every flag combination and all three modes.

mod common;

use bnorm::{
    Affine, BackwardInput, Descriptor, Flags, Layout, ParamGrads, RunningStats, SaveStats, Shape,
};
use common::{assert_close, to_f64, ReferenceParams, Rng, Training, View};

/// The contract's bound for float32 outputs, relative to their largest magnitude.
const TOLERANCE: f64 = 5e-5;

/// One random layer and input: what every mode below starts from.
struct Case {
    desc: Descriptor,
    shape: Shape,
    view: View,
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Case {
    /// Case `index` of `CASES`: every combination of the four flag bits,
    /// both layouts and ranks 2 to 5 appears once, with 1, 3, 17 or a random
    /// channel count.
    fn random(rng: &mut Rng, index: u32) -> Case {
        let flags = Flags::from_bits(index % 16);
        let layout = if index / 16 % 2 == 0 {
            Layout::Nchw
        } else {
            Layout::Nhwc
        };
        let rank = 2 + (index / 32 % 4) as usize;
        let channels = [1, 3, 17, rng.range(2, 9)][((index % 4) + index / 16) as usize % 4];
        let desc = Descriptor::new(channels)
            .unwrap()
            .with_layout(layout)
            .with_flags(flags)
            .with_eps(rng.pick(&[1e-5, 1e-3, 0.5]))
            .with_momentum(rng.pick(&[0.1, 0.0, 1.0, 0.37]))
            .with_num_threads(rng.pick(&[0, 1, 2]));
        // Two values per channel at least, so that training is defined.
        let shape = common::random_shape(rng, layout, rank, channels, 2);
        let view = View::new(&shape, layout);
        let x = common::random_input(rng, &view);
        let gamma = rng.vec(view.channels, -2.0, 2.0);
        let beta = rng.vec(view.channels, -1.0, 1.0);
        Case {
            desc,
            shape,
            view,
            x,
            gamma,
            beta,
        }
    }

    fn affine(&self) -> Option<Affine<'_>> {
        common::affine_of(&self.desc, &self.gamma, &self.beta)
    }

    fn params(&self) -> ReferenceParams<'_> {
        ReferenceParams::of(&self.desc, self.affine())
    }

    fn describe(&self) -> String {
        format!("{:?} {:?}", self.desc, self.shape)
    }
}

const CASES: u32 = 128;

#[test]
fn inference_matches_reference() {
    let mut rng = Rng::new(1);
    for index in 0..CASES {
        let case = Case::random(&mut rng, index);
        let mean = rng.vec(case.view.channels, -2.0, 2.0);
        let var = rng.vec(case.view.channels, 0.0, 3.0);
        let mut y = vec![f32::NAN; case.x.len()];
        bnorm::forward_inference(
            &case.desc,
            &case.shape,
            &case.x,
            &mut y,
            &mean,
            &var,
            case.affine(),
        )
        .unwrap();
        let expected = common::inference(&case.view, &case.x, &mean, &var, &case.params());
        assert_close(
            &format!("y of {}", case.describe()),
            &y,
            &expected,
            TOLERANCE,
        );

        let mut in_place = case.x.clone();
        bnorm::forward_inference_in_place(
            &case.desc,
            &case.shape,
            &mut in_place,
            &mean,
            &var,
            case.affine(),
        )
        .unwrap();
        assert_eq!(in_place, y, "in place, {}", case.describe());
    }
}

#[test]
fn training_matches_reference() {
    let mut rng = Rng::new(2);
    for index in 0..CASES {
        let case = Case::random(&mut rng, index);
        let what = case.describe();
        let channels = case.view.channels;
        let old_mean = rng.vec(channels, -1.0, 1.0);
        let old_var = rng.vec(channels, 0.5, 2.0);
        // Every output starts as NaN but the running statistics, which blend.
        let Training {
            y,
            running_mean,
            running_var,
            save_mean,
            save_invstd,
        } = Training::run(
            &case.desc,
            &case.shape,
            &case.x,
            case.affine(),
            (old_mean.clone(), old_var.clone()),
            f32::NAN,
        )
        .unwrap();

        let expected = common::training(&case.view, &case.x, &case.params());
        assert_close(&format!("y of {}", what), &y, &expected.y, TOLERANCE);
        assert_close(
            &format!("save mean of {}", what),
            &save_mean,
            &expected.mean,
            1e-5,
        );
        assert_close(
            &format!("save invstd of {}", what),
            &save_invstd,
            &expected.invstd,
            1e-5,
        );
        if case.desc.flags().contains(Flags::TRACK_RUNNING_STATS) {
            let m = case.desc.momentum() as f64;
            let blend = |old: &[f32], batch: &[f64]| -> Vec<f64> {
                old.iter()
                    .zip(batch)
                    .map(|(&o, &b)| (1.0 - m) * o as f64 + m * b)
                    .collect()
            };
            let expected_mean = blend(&old_mean, &expected.mean);
            let expected_var = blend(&old_var, &expected.unbiased_var);
            assert_close(
                &format!("running mean of {}", what),
                &running_mean,
                &expected_mean,
                1e-5,
            );
            assert_close(
                &format!("running var of {}", what),
                &running_var,
                &expected_var,
                1e-5,
            );
        } else {
            // Without tracking, the running statistics are not the library's to touch.
            assert_eq!(running_mean, old_mean, "{}", what);
            assert_eq!(running_var, old_var, "{}", what);
        }

        // In place, without the optional saved statistics: same bits.
        let mut in_place = case.x.clone();
        let (mut mean_again, mut var_again) = (old_mean.clone(), old_var.clone());
        bnorm::forward_training_in_place(
            &case.desc,
            &case.shape,
            &mut in_place,
            case.affine(),
            Some(RunningStats {
                mean: &mut mean_again,
                var: &mut var_again,
            }),
            None,
        )
        .unwrap();
        assert_eq!(in_place, y, "in place, {}", what);
        assert_eq!(
            (mean_again, var_again),
            (running_mean, running_var),
            "{}",
            what
        );
    }
}

#[test]
fn backward_matches_reference() {
    let mut rng = Rng::new(3);
    for index in 0..CASES {
        let case = Case::random(&mut rng, index);
        let what = case.describe();
        let flags = case.desc.flags();
        let channels = case.view.channels;

        // The forward pass whose output and statistics backward consumes.
        let Training {
            y,
            running_mean,
            running_var,
            save_mean,
            save_invstd,
        } = Training::run(
            &case.desc,
            &case.shape,
            &case.x,
            case.affine(),
            (vec![0.0; channels], vec![1.0; channels]),
            0.0,
        )
        .unwrap();
        let global = flags.contains(Flags::USE_GLOBAL_STATS);
        let (mean, invstd) = if global {
            // Frozen BN: the running statistics, passed as mean and 1/std.
            let eps = case.desc.eps();
            let invstd = running_var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
            (running_mean.clone(), invstd)
        } else {
            (save_mean.clone(), save_invstd.clone())
        };

        let dy = rng.vec(case.x.len(), -1.0, 1.0);
        let relu = flags.contains(Flags::FUSE_RELU);
        let input = BackwardInput {
            x: &case.x,
            y: if relu { Some(&y) } else { None },
            gamma: case.affine().map(|a| a.gamma),
            mean: &mean,
            invstd: &invstd,
        };
        let mut dx = vec![f32::NAN; case.x.len()];
        let (mut dgamma, mut dbeta) = (vec![f32::NAN; channels], vec![f32::NAN; channels]);
        bnorm::backward(
            &case.desc,
            &case.shape,
            input,
            &dy,
            Some(&mut dx),
            ParamGrads {
                dgamma: Some(&mut dgamma),
                dbeta: Some(&mut dbeta),
            },
        )
        .unwrap();

        let expected = common::backward(
            &case.view,
            &case.x,
            &dy,
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

        // In place, skipping the parameter gradients: dx alone, same bits.
        let mut dy_dx = dy.clone();
        bnorm::backward_in_place(
            &case.desc,
            &case.shape,
            input,
            &mut dy_dx,
            ParamGrads::default(),
        )
        .unwrap();
        assert_eq!(dy_dx, dx, "in place, {}", what);
    }
}

#[test]
fn inference_accepts_one_value_per_channel() {
    // Eval mode uses given statistics, so even a single sample is fine.
    let desc = Descriptor::new(5).unwrap();
    let shape = Shape::new(&[1, 5, 1, 1]);
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let (mean, var) = ([1.0; 5], [4.0; 5]);
    let (gamma, beta) = ([2.0; 5], [0.5; 5]);
    let mut y = [0.0; 5];
    let affine = Affine {
        gamma: &gamma,
        beta: &beta,
    };
    bnorm::forward_inference(&desc, &shape, &x, &mut y, &mean, &var, Some(affine)).unwrap();
    let expected: Vec<f64> = x
        .iter()
        .map(|&v| (v as f64 - 1.0) / (4.0f64 + 1e-5).sqrt() * 2.0 + 0.5)
        .collect();
    assert_close("y", &y, &expected, TOLERANCE);
}

#[test]
fn training_keeps_precision_when_mean_dwarfs_spread() {
    // A channel whose mean is 1e4 times its standard deviation: a one-pass
    // naive sum of squares would lose the variance entirely.
    let mut rng = Rng::new(4);
    for &layout in &[Layout::Nchw, Layout::Nhwc] {
        let shape = common::random_shape(&mut rng, layout, 4, 3, 64);
        let view = View::new(&shape, layout);
        let x: Vec<f32> = (0..view.len()).map(|_| 1e4 + rng.unit()).collect();
        let desc = Descriptor::new(3)
            .unwrap()
            .with_layout(layout)
            .with_flags(Flags::empty());
        let mut y = vec![0.0; x.len()];
        let (mut mean, mut invstd) = ([0.0; 3], [0.0; 3]);
        let save = SaveStats {
            mean: &mut mean,
            invstd: &mut invstd,
        };
        bnorm::forward_training(&desc, &shape, &x, &mut y, None, None, Some(save)).unwrap();
        let params = ReferenceParams::of(&desc, None);
        let expected = common::training(&view, &x, &params);
        assert_close("y", &y, &expected.y, TOLERANCE);
        assert_close("mean", &mean, &expected.mean, 1e-6);
        let invstd_error: Vec<f64> = to_f64(&invstd)
            .iter()
            .zip(&expected.invstd)
            .map(|(a, e)| (a - e) / e)
            .collect();
        assert_close("relative invstd error", &[0.0; 3], &invstd_error, 1e-4);
    }
}
