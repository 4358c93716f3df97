//! Folding (bnorm 1.1): `fold_scale_shift`, `forward_scale_shift` and
//! `fold_into_layer` against a float64 reference of the header's formulas,
//! against `forward_inference` with the same statistics, in place, folded
//! into a small convolution, and on every error path the binding adds or
//! passes through.

mod common;

use bnorm::{sys, Affine, Descriptor, Error, Flags, Layout, Shape, Status};
use common::{
    assert_call_fails, assert_close, assert_error, raw_desc, raw_last_error, Rng, Sentinels, View,
    SENTINEL,
};

/// Largest rounding error of one float32 rounding, relative to the value.
const HALF_ULP: f64 = 1.0 / (1u64 << 24) as f64;

/// The layer's folded pair in float64, straight from the header:
/// `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale`.
fn reference_scale_shift(
    desc: &Descriptor,
    mean: &[f32],
    var: &[f32],
    affine: Option<Affine<'_>>,
) -> (Vec<f64>, Vec<f64>) {
    let eps = desc.eps() as f64;
    (0..mean.len())
        .map(|c| {
            let gamma = affine.map_or(1.0, |a| a.gamma[c] as f64);
            let beta = affine.map_or(0.0, |a| a.beta[c] as f64);
            let scale = gamma / (var[c] as f64 + eps).sqrt();
            (scale, beta - mean[c] as f64 * scale)
        })
        .unzip()
}

/// Each float32 result is its float64 value rounded once: within half an ulp,
/// plus what float64 itself may lose on `terms` (the magnitude of what was
/// summed), which only matters when the sum cancels.
#[track_caller]
fn assert_rounded_once(what: &str, actual: &[f32], expected: &[f64], terms: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{}: length", what);
    for i in 0..actual.len() {
        let (a, e) = (actual[i] as f64, expected[i]);
        let bound = e.abs() * HALF_ULP * (1.0 + 1e-9) + 8.0 * f64::EPSILON * terms[i];
        assert!(
            (a - e).abs() <= bound,
            "{}[{}]: got {}, expected {} (off by {:e}, bound {:e})",
            what,
            i,
            a,
            e,
            (a - e).abs(),
            bound
        );
    }
}

/// The terms of results that are one product each: their own magnitudes.
fn magnitudes(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| v.abs()).collect()
}

/// A random layer of `channels` channels: statistics and parameters.
struct Layer {
    desc: Descriptor,
    mean: Vec<f32>,
    var: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Layer {
    fn random(rng: &mut Rng, channels: i64, flags: Flags) -> Layer {
        let c = channels as usize;
        Layer {
            desc: Descriptor::new(channels)
                .unwrap()
                .with_flags(flags)
                .with_eps(rng.pick(&[1e-5, 1e-3, 0.5]))
                .with_num_threads(rng.pick(&[0, 1, 2])),
            mean: rng.vec(c, -2.0, 2.0),
            var: rng.vec(c, 0.0, 3.0),
            gamma: rng.vec(c, -2.0, 2.0),
            beta: rng.vec(c, -1.0, 1.0),
        }
    }

    fn affine(&self) -> Option<Affine<'_>> {
        common::affine_of(&self.desc, &self.gamma, &self.beta)
    }

    fn channels(&self) -> usize {
        self.mean.len()
    }

    fn fold(&self) -> (Vec<f32>, Vec<f32>) {
        let mut scale = vec![f32::NAN; self.channels()];
        let mut shift = vec![f32::NAN; self.channels()];
        bnorm::fold_scale_shift(
            &self.desc,
            &self.mean,
            &self.var,
            self.affine(),
            &mut scale,
            &mut shift,
        )
        .unwrap();
        (scale, shift)
    }

    /// Folds the layer into one with `weights` (`channels` rows) and `bias`.
    fn fold_into_layer(&self, weights: &[f32], bias: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
        let mut folded_weights = vec![f32::NAN; weights.len()];
        let mut folded_bias = vec![f32::NAN; self.channels()];
        bnorm::fold_into_layer(
            &self.desc,
            weights,
            bias,
            &self.mean,
            &self.var,
            self.affine(),
            &mut folded_weights,
            &mut folded_bias,
        )
        .unwrap();
        (folded_weights, folded_bias)
    }
}

/// Odd channel counts, and 1, 2 and 16 for the edges of the SIMD paths.
const CHANNELS: [i64; 8] = [1, 3, 5, 7, 17, 33, 2, 16];

#[test]
fn fold_scale_shift_matches_reference() {
    let mut rng = Rng::new(11);
    for &channels in CHANNELS.iter() {
        for flags in [
            Flags::AFFINE,
            Flags::empty(),
            Flags::AFFINE | Flags::FUSE_RELU,
        ] {
            let layer = Layer::random(&mut rng, channels, flags);
            let (scale, shift) = layer.fold();
            let (want_scale, want_shift) =
                reference_scale_shift(&layer.desc, &layer.mean, &layer.var, layer.affine());
            let what = format!("{:?}", layer.desc);
            let shift_terms: Vec<f64> = (0..layer.channels())
                .map(|c| {
                    let beta = layer.affine().map_or(0.0, |a| a.beta[c] as f64);
                    beta.abs() + (layer.mean[c] as f64 * want_scale[c]).abs()
                })
                .collect();
            assert_rounded_once(
                &format!("scale of {}", what),
                &scale,
                &want_scale,
                &magnitudes(&want_scale),
            );
            assert_rounded_once(
                &format!("shift of {}", what),
                &shift,
                &want_shift,
                &shift_terms,
            );
        }
    }
}

#[test]
fn without_affine_the_pair_is_invstd_and_minus_mean_times_it() {
    let desc = Descriptor::new(2).unwrap().with_flags(Flags::empty());
    let (mut scale, mut shift) = ([0.0; 2], [0.0; 2]);
    // var + eps = 4 and 0.25 exactly (eps 1e-5 would not be exact).
    let desc = desc.with_eps(0.5);
    bnorm::fold_scale_shift(
        &desc,
        &[1.0, -3.0],
        &[3.5, -0.25],
        None,
        &mut scale,
        &mut shift,
    )
    .unwrap();
    assert_eq!(scale, [0.5, 2.0]);
    assert_eq!(shift, [-0.5, 6.0]);
}

#[test]
fn forward_scale_shift_matches_forward_inference() {
    let mut rng = Rng::new(12);
    let mut case = 0;
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for rank in 2..=5 {
            for flags in [
                Flags::AFFINE,
                Flags::empty(),
                Flags::AFFINE | Flags::FUSE_RELU,
                Flags::FUSE_RELU,
            ] {
                let channels = CHANNELS[case % CHANNELS.len()];
                case += 1;
                let mut layer = Layer::random(&mut rng, channels, flags);
                layer.desc = layer.desc.with_layout(layout);
                let shape = common::random_shape(&mut rng, layout, rank, channels, 1);
                let view = View::new(&shape, layout);
                let x = common::random_input(&mut rng, &view);
                let what = format!("{:?} {:?}", layer.desc, shape);

                let mut with_stats = vec![f32::NAN; x.len()];
                bnorm::forward_inference(
                    &layer.desc,
                    &shape,
                    &x,
                    &mut with_stats,
                    &layer.mean,
                    &layer.var,
                    layer.affine(),
                )
                .unwrap();
                let (scale, shift) = layer.fold();
                let mut folded = vec![f32::NAN; x.len()];
                bnorm::forward_scale_shift(&layer.desc, &shape, &x, &mut folded, &scale, &shift)
                    .unwrap();

                // Both are a few float32 roundings away from the exact value;
                // each rounding errs by at most half an ulp of an intermediate,
                // and no intermediate exceeds x * scale, mean * scale, beta or y.
                for i in 0..x.len() {
                    let c = view.channel_of(i);
                    let s = scale[c] as f64;
                    let beta = layer.affine().map_or(0.0, |a| a.beta[c] as f64);
                    let terms = (x[i] as f64 * s).abs()
                        + (layer.mean[c] as f64 * s).abs()
                        + beta.abs()
                        + (with_stats[i] as f64).abs();
                    let diff = (folded[i] as f64 - with_stats[i] as f64).abs();
                    assert!(
                        diff <= 8.0 * HALF_ULP * terms,
                        "y[{}] of {}: scale-shift {} but inference {} (off by {:e})",
                        i,
                        what,
                        folded[i],
                        with_stats[i],
                        diff
                    );
                }
                if flags.contains(Flags::FUSE_RELU) {
                    assert!(folded.iter().all(|&v| v >= 0.0), "ReLU of {}", what);
                }
                // And both agree with the float64 reference of batch norm.
                let params = common::ReferenceParams::of(&layer.desc, layer.affine());
                let expected = common::inference(&view, &x, &layer.mean, &layer.var, &params);
                assert_close(&format!("y of {}", what), &folded, &expected, 5e-5);

                // In place: the same bits.
                let mut in_place = x.clone();
                bnorm::forward_scale_shift_in_place(
                    &layer.desc,
                    &shape,
                    &mut in_place,
                    &scale,
                    &shift,
                )
                .unwrap();
                assert_eq!(in_place, folded, "in place, {}", what);
            }
        }
    }
}

/// `(N, C, H, W)` input, OIHW weights, stride 1, zero padding `pad`, summed
/// in float64 and rounded once.
struct Conv {
    n: usize,
    in_channels: usize,
    out_channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    pad: usize,
}

impl Conv {
    fn out_height(&self) -> usize {
        self.height + 2 * self.pad - self.kernel + 1
    }

    fn out_width(&self) -> usize {
        self.width + 2 * self.pad - self.kernel + 1
    }

    fn out_shape(&self) -> Shape {
        let dims = [
            self.n,
            self.out_channels,
            self.out_height(),
            self.out_width(),
        ];
        Shape::new(&dims.map(|d| d as i64))
    }

    fn row_length(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    fn run(&self, x: &[f32], weights: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (k, pad) = (self.kernel as isize, self.pad as isize);
        let (oh, ow) = (self.out_height(), self.out_width());
        let mut y = Vec::with_capacity(self.n * self.out_channels * oh * ow);
        for n in 0..self.n {
            for o in 0..self.out_channels {
                for i in 0..oh as isize {
                    for j in 0..ow as isize {
                        let mut sum = bias.map_or(0.0, |b| b[o] as f64);
                        for c in 0..self.in_channels {
                            for ki in 0..k {
                                for kj in 0..k {
                                    let (r, s) = (i + ki - pad, j + kj - pad);
                                    if r < 0
                                        || s < 0
                                        || r >= self.height as isize
                                        || s >= self.width as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * self.in_channels + c) * self.height
                                        + r as usize)
                                        * self.width
                                        + s as usize;
                                    let wi = ((o * self.in_channels + c) * self.kernel
                                        + ki as usize)
                                        * self.kernel
                                        + kj as usize;
                                    sum += x[xi] as f64 * weights[wi] as f64;
                                }
                            }
                        }
                        y.push(sum as f32);
                    }
                }
            }
        }
        y
    }
}

#[test]
fn conv_with_folded_weights_equals_batch_norm_of_the_conv() {
    let mut rng = Rng::new(13);
    let convs = [
        Conv {
            n: 2,
            in_channels: 3,
            out_channels: 5,
            height: 6,
            width: 5,
            kernel: 3,
            pad: 1,
        },
        Conv {
            n: 1,
            in_channels: 4,
            out_channels: 3,
            height: 4,
            width: 4,
            kernel: 1,
            pad: 0,
        },
        Conv {
            n: 3,
            in_channels: 2,
            out_channels: 7,
            height: 5,
            width: 7,
            kernel: 3,
            pad: 0,
        },
    ];
    for conv in convs.iter() {
        for flags in [Flags::AFFINE, Flags::empty()] {
            for with_bias in [true, false] {
                let x = rng.vec(
                    conv.n * conv.in_channels * conv.height * conv.width,
                    -1.0,
                    1.0,
                );
                let weights = rng.vec(conv.out_channels * conv.row_length(), -0.5, 0.5);
                let bias = rng.vec(conv.out_channels, -0.5, 0.5);
                let bias = if with_bias { Some(&bias[..]) } else { None };
                let mut layer = Layer::random(&mut rng, conv.out_channels as i64, flags);
                // Statistics in the conv output's range, as a trained layer has.
                layer.mean = rng.vec(conv.out_channels, -0.5, 0.5);
                layer.var = rng.vec(conv.out_channels, 0.1, 2.0);
                let what = format!("{:?}, bias {}", layer.desc, with_bias);

                // Batch norm in eval mode of the conv output.
                let shape = conv.out_shape();
                let mut expected = conv.run(&x, &weights, bias);
                bnorm::forward_inference_in_place(
                    &layer.desc,
                    &shape,
                    &mut expected,
                    &layer.mean,
                    &layer.var,
                    layer.affine(),
                )
                .unwrap();

                // The conv with the folded weights and bias.
                let (folded_weights, folded_bias) = layer.fold_into_layer(&weights, bias);
                let folded = conv.run(&x, &folded_weights, Some(&folded_bias));
                assert_close(
                    &format!("folded conv of {}", what),
                    &folded,
                    &common::to_f64(&expected),
                    2e-6,
                );

                // The same fold in place over the layer's own buffers; a
                // layer without a bias passes zeros.
                let mut in_place_weights = weights.clone();
                let mut in_place_bias = bias.map_or(vec![0.0; conv.out_channels], |b| b.to_vec());
                bnorm::fold_into_layer_in_place(
                    &layer.desc,
                    &mut in_place_weights,
                    &mut in_place_bias,
                    &layer.mean,
                    &layer.var,
                    layer.affine(),
                )
                .unwrap();
                assert_eq!(in_place_weights, folded_weights, "in place, {}", what);
                assert_eq!(in_place_bias, folded_bias, "in place, {}", what);
            }
        }
    }
}

#[test]
fn fold_into_layer_matches_reference() {
    let mut rng = Rng::new(14);
    for &channels in CHANNELS.iter() {
        for row_length in [1usize, 4, 9, 27] {
            for flags in [Flags::AFFINE, Flags::empty()] {
                let layer = Layer::random(&mut rng, channels, flags);
                let c = layer.channels();
                let weights = rng.vec(c * row_length, -1.0, 1.0);
                let bias = rng.vec(c, -1.0, 1.0);
                for bias in [Some(&bias[..]), None] {
                    let (folded_weights, folded_bias) = layer.fold_into_layer(&weights, bias);

                    let (scale, _) =
                        reference_scale_shift(&layer.desc, &layer.mean, &layer.var, layer.affine());
                    let want_weights: Vec<f64> = (0..weights.len())
                        .map(|i| weights[i] as f64 * scale[i / row_length])
                        .collect();
                    let mut want_bias = vec![0.0; c];
                    let mut bias_terms = vec![0.0; c];
                    for o in 0..c {
                        let b = bias.map_or(0.0, |b| b[o] as f64);
                        let beta = layer.affine().map_or(0.0, |a| a.beta[o] as f64);
                        let m = layer.mean[o] as f64;
                        want_bias[o] = (b - m) * scale[o] + beta;
                        bias_terms[o] = ((b.abs() + m.abs()) * scale[o]).abs() + beta.abs();
                    }
                    let what = format!(
                        "{:?}, row_length {}, bias {}",
                        layer.desc,
                        row_length,
                        bias.is_some()
                    );
                    assert_rounded_once(
                        &format!("folded weights of {}", what),
                        &folded_weights,
                        &want_weights,
                        &magnitudes(&want_weights),
                    );
                    assert_rounded_once(
                        &format!("folded bias of {}", what),
                        &folded_bias,
                        &want_bias,
                        &bias_terms,
                    );
                }
            }
        }
    }
}

#[test]
fn a_linear_layer_folds_with_row_length_in_features() {
    // Linear(2 -> 3) then BatchNorm1d(3), no affine, eps 0.5 so that
    // var + eps is a square: scale = 1/2, 1, 2.
    let desc = Descriptor::new(3)
        .unwrap()
        .with_flags(Flags::empty())
        .with_eps(0.5);
    let weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let (mean, var) = ([1.0, 0.0, -1.0], [3.5, 0.5, -0.25]);
    let mut folded_weights = [0.0; 6];
    let mut folded_bias = [0.0; 3];
    bnorm::fold_into_layer(
        &desc,
        &weights,
        Some(&[0.0, 1.0, 2.0][..]),
        &mean,
        &var,
        None,
        &mut folded_weights,
        &mut folded_bias,
    )
    .unwrap();
    assert_eq!(folded_weights, [0.5, 1.0, 3.0, 4.0, 10.0, 12.0]);
    assert_eq!(folded_bias, [-0.5, 1.0, 6.0]);
}

/// Every buffer of the folding functions, sized for a 3-channel layer, a
/// 2x3x2x2 NCHW tensor and weights of row_length 4, filled with a sentinel.
struct Buffers {
    desc: Descriptor,
    shape: Shape,
    x: Vec<f32>,
    y: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
    weights: Vec<f32>,
    bias: Vec<f32>,
    folded_weights: Vec<f32>,
    folded_bias: Vec<f32>,
}

impl Sentinels for Buffers {
    fn new() -> Buffers {
        let channel = || vec![SENTINEL; 3];
        Buffers {
            desc: Descriptor::new(3)
                .unwrap()
                .with_flags(Flags::AFFINE | Flags::FUSE_RELU),
            shape: Shape::new(&[2, 3, 2, 2]),
            x: vec![SENTINEL; 24],
            y: vec![SENTINEL; 24],
            mean: channel(),
            var: channel(),
            gamma: channel(),
            beta: channel(),
            scale: channel(),
            shift: channel(),
            weights: vec![SENTINEL; 12],
            bias: channel(),
            folded_weights: vec![SENTINEL; 12],
            folded_bias: channel(),
        }
    }

    fn all(&self) -> Vec<&[f32]> {
        vec![
            &self.x,
            &self.y,
            &self.mean,
            &self.var,
            &self.gamma,
            &self.beta,
            &self.scale,
            &self.shift,
            &self.weights,
            &self.bias,
            &self.folded_weights,
            &self.folded_bias,
        ]
    }
}

impl Buffers {
    fn fold_scale_shift(&mut self) -> Result<(), Error> {
        let affine = Affine {
            gamma: &self.gamma,
            beta: &self.beta,
        };
        bnorm::fold_scale_shift(
            &self.desc,
            &self.mean,
            &self.var,
            Some(affine),
            &mut self.scale,
            &mut self.shift,
        )
    }

    fn forward(&mut self) -> Result<(), Error> {
        bnorm::forward_scale_shift(
            &self.desc,
            &self.shape,
            &self.x,
            &mut self.y,
            &self.scale,
            &self.shift,
        )
    }

    fn forward_in_place(&mut self) -> Result<(), Error> {
        bnorm::forward_scale_shift_in_place(
            &self.desc,
            &self.shape,
            &mut self.x,
            &self.scale,
            &self.shift,
        )
    }

    fn fold_into_layer(&mut self) -> Result<(), Error> {
        let affine = Affine {
            gamma: &self.gamma,
            beta: &self.beta,
        };
        bnorm::fold_into_layer(
            &self.desc,
            &self.weights,
            Some(&self.bias),
            &self.mean,
            &self.var,
            Some(affine),
            &mut self.folded_weights,
            &mut self.folded_bias,
        )
    }

    fn fold_into_layer_in_place(&mut self) -> Result<(), Error> {
        let affine = Affine {
            gamma: &self.gamma,
            beta: &self.beta,
        };
        bnorm::fold_into_layer_in_place(
            &self.desc,
            &mut self.weights,
            &mut self.bias,
            &self.mean,
            &self.var,
            Some(affine),
        )
    }
}

type Call = fn(&mut Buffers) -> Result<(), Error>;
type Resize = fn(&mut Buffers);

#[test]
fn every_slice_length_is_checked_before_calling_c() {
    let cases: [(&str, Resize, Call, &str); 21] = [
        (
            "fold_scale_shift",
            |b| b.mean.truncate(2),
            Buffers::fold_scale_shift,
            "mean has 2 elements but num_features is 3",
        ),
        (
            "fold_scale_shift",
            |b| b.var.push(SENTINEL),
            Buffers::fold_scale_shift,
            "var has 4 elements but num_features is 3",
        ),
        (
            "fold_scale_shift",
            |b| b.gamma.clear(),
            Buffers::fold_scale_shift,
            "gamma has 0 elements but num_features is 3",
        ),
        (
            "fold_scale_shift",
            |b| b.beta.truncate(1),
            Buffers::fold_scale_shift,
            "beta has 1 elements but num_features is 3",
        ),
        (
            "fold_scale_shift",
            |b| b.scale.truncate(2),
            Buffers::fold_scale_shift,
            "scale has 2 elements but num_features is 3",
        ),
        (
            "fold_scale_shift",
            |b| b.shift.push(SENTINEL),
            Buffers::fold_scale_shift,
            "shift has 4 elements but num_features is 3",
        ),
        (
            "forward_scale_shift",
            |b| b.x.truncate(23),
            Buffers::forward,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "forward_scale_shift",
            |b| b.y.push(SENTINEL),
            Buffers::forward,
            "y has 25 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "forward_scale_shift",
            |b| b.scale.truncate(2),
            Buffers::forward,
            "scale has 2 elements but num_features is 3",
        ),
        (
            "forward_scale_shift",
            |b| b.shift.clear(),
            Buffers::forward,
            "shift has 0 elements but num_features is 3",
        ),
        (
            "forward_scale_shift_in_place",
            |b| b.x.truncate(12),
            Buffers::forward_in_place,
            "x has 12 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "forward_scale_shift_in_place",
            |b| b.shift.truncate(2),
            Buffers::forward_in_place,
            "shift has 2 elements but num_features is 3",
        ),
        (
            "fold_into_layer",
            |b| b.weights.truncate(11),
            Buffers::fold_into_layer,
            "weights has 11 elements, not a multiple of num_features 3 \
             (num_features rows of row_length each)",
        ),
        (
            // A multiple of num_features, so a valid row_length (3), but not
            // the folded weights' length.
            "fold_into_layer",
            |b| b.weights.truncate(9),
            Buffers::fold_into_layer,
            "folded weights has 12 elements but weights has 9",
        ),
        (
            "fold_into_layer",
            |b| b.folded_weights.push(SENTINEL),
            Buffers::fold_into_layer,
            "folded weights has 13 elements but weights has 12",
        ),
        (
            "fold_into_layer",
            |b| b.bias.truncate(2),
            Buffers::fold_into_layer,
            "bias has 2 elements but num_features is 3",
        ),
        (
            "fold_into_layer",
            |b| b.folded_bias.push(SENTINEL),
            Buffers::fold_into_layer,
            "folded bias has 4 elements but num_features is 3",
        ),
        (
            "fold_into_layer",
            |b| b.var.truncate(2),
            Buffers::fold_into_layer,
            "var has 2 elements but num_features is 3",
        ),
        (
            "fold_into_layer",
            |b| b.beta.push(SENTINEL),
            Buffers::fold_into_layer,
            "beta has 4 elements but num_features is 3",
        ),
        (
            "fold_into_layer_in_place",
            |b| b.weights.push(SENTINEL),
            Buffers::fold_into_layer_in_place,
            "weights has 13 elements, not a multiple of num_features 3 \
             (num_features rows of row_length each)",
        ),
        (
            "fold_into_layer_in_place",
            |b| b.bias.clear(),
            Buffers::fold_into_layer_in_place,
            "bias has 0 elements but num_features is 3",
        ),
    ];
    for &(function, resize, call, message) in cases.iter() {
        assert_call_fails(function, resize, call, Status::LENGTH_MISMATCH, message);
    }
    // At their right lengths the same buffers pass the checks and the
    // library accepts every call.
    let calls: [Call; 5] = [
        Buffers::fold_scale_shift,
        Buffers::forward,
        Buffers::forward_in_place,
        Buffers::fold_into_layer,
        Buffers::fold_into_layer_in_place,
    ];
    for call in calls.iter() {
        let mut buffers = Buffers::new();
        buffers.var = vec![1.0; 3];
        call(&mut buffers).unwrap();
    }
}

const CALLS: [(&str, Call); 5] = [
    ("fold_scale_shift", Buffers::fold_scale_shift),
    ("forward_scale_shift", Buffers::forward),
    ("forward_scale_shift_in_place", Buffers::forward_in_place),
    ("fold_into_layer", Buffers::fold_into_layer),
    (
        "fold_into_layer_in_place",
        Buffers::fold_into_layer_in_place,
    ),
];

#[test]
fn eps_must_be_positive_and_a_failing_call_writes_nothing() {
    let cases = [
        (0.0, "eps is 0; it must be finite and > 0"),
        (-1e-5, "eps is -1e-05; it must be finite and > 0"),
        (f32::NAN, "eps is nan; it must be finite and > 0"),
    ];
    for &(function, call) in CALLS.iter() {
        for &(eps, message) in cases.iter() {
            assert_call_fails(
                &format!("{} with eps {}", function, eps),
                |b: &mut Buffers| b.desc = b.desc.with_eps(eps),
                call,
                Status::INVALID_ARGUMENT,
                message,
            );
        }
    }
}

#[test]
fn other_descriptor_fields_are_validated_as_everywhere() {
    for &(function, call) in CALLS.iter() {
        assert_call_fails(
            function,
            |b: &mut Buffers| b.desc = b.desc.with_momentum(1.5),
            call,
            Status::INVALID_ARGUMENT,
            "momentum is 1.5; it must be in [0, 1]",
        );
    }
}

#[test]
fn affine_without_gamma_and_beta_is_null_pointer() {
    let desc = Descriptor::new(3).unwrap();
    let ones = [1.0; 3];
    let (mut scale, mut shift) = ([SENTINEL; 3], [SENTINEL; 3]);
    assert_error(
        bnorm::fold_scale_shift(&desc, &ones, &ones, None, &mut scale, &mut shift),
        Status::NULL_POINTER,
        "gamma is NULL but BNORM_FLAG_AFFINE is set",
    );
    let weights = [1.0; 6];
    let mut folded_weights = [SENTINEL; 6];
    assert_error(
        bnorm::fold_into_layer(
            &desc,
            &weights,
            None,
            &ones,
            &ones,
            None,
            &mut folded_weights,
            &mut shift,
        ),
        Status::NULL_POINTER,
        "gamma is NULL but BNORM_FLAG_AFFINE is set",
    );
    assert_eq!(scale, [SENTINEL; 3]);
    assert_eq!(shift, [SENTINEL; 3]);
    assert_eq!(folded_weights, [SENTINEL; 6]);
}

#[test]
fn empty_weights_are_row_length_zero_for_the_library() {
    let desc = Descriptor::new(3).unwrap().with_flags(Flags::empty());
    let ones = [1.0; 3];
    let mut folded_bias = [SENTINEL; 3];
    let err = bnorm::fold_into_layer(
        &desc,
        &[],
        None,
        &ones,
        &ones,
        None,
        &mut [],
        &mut folded_bias,
    )
    .unwrap_err();
    assert_eq!(err.status(), Status::INVALID_ARGUMENT, "{}", err);
    assert!(
        err.message().contains("row_length is 0"),
        "{}",
        err.message()
    );
    assert_eq!(folded_bias, [SENTINEL; 3]);
}

#[test]
fn forward_scale_shift_checks_the_shape_like_forward_inference() {
    let desc = Descriptor::new(3).unwrap();
    let ones = [1.0; 3];
    let x = [1.0; 24];
    let mut y = [SENTINEL; 24];
    assert_error(
        bnorm::forward_scale_shift(&desc, &Shape::new(&[2, 4, 3]), &x, &mut y, &ones, &ones),
        Status::FEATURE_MISMATCH,
        "input channel dimension (dim 1) is 4 but num_features is 3; \
         dim 2 is 3: is the tensor channels-last? set layout to BNORM_LAYOUT_NHWC",
    );
    assert_error(
        bnorm::forward_scale_shift(&desc, &Shape::new(&[24]), &x, &mut y, &ones, &ones),
        Status::INVALID_SHAPE,
        "rank is 1; it must be 2 to 5",
    );
    assert_eq!(y, [SENTINEL; 24]);
}

#[test]
fn overlaps_the_safe_api_cannot_express_are_aliasing() {
    // Reached through the raw declarations only: the borrow checker keeps
    // the safe functions' outputs apart.
    let desc = raw_desc(3);
    let stats = [1.0f32; 3];
    let weights = [1.0f32; 6];
    let mut buffer = [1.0f32; 16];
    let base = buffer.as_mut_ptr();
    // Folded weights (3 rows of 2) whose last element is the folded bias's first.
    let status = unsafe {
        sys::bnorm_fold_into_layer(
            &desc,
            2,
            weights.as_ptr(),
            std::ptr::null(),
            stats.as_ptr(),
            stats.as_ptr(),
            stats.as_ptr(),
            stats.as_ptr(),
            base,
            base.add(5),
        )
    };
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());
    assert_eq!(raw_last_error(), "folded_weights overlaps folded_bias");

    let status = unsafe {
        sys::bnorm_fold_scale_shift(
            &desc,
            stats.as_ptr(),
            stats.as_ptr(),
            stats.as_ptr(),
            stats.as_ptr(),
            base,
            base.add(1),
        )
    };
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());
    assert_eq!(buffer, [1.0f32; 16]);
}
