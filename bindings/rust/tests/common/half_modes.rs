//! Every call that takes tensors, run on bf16 or f16 tensors and on the same
//! values as f32, with what the library promises between the two:
//! - forward calls: bit for bit, each tensor output of the 16-bit call is
//!   the f32 call's output rounded to the type (nearest, ties to even), and
//!   every per-channel output and exchanged block is the f32 call's; against
//!   a float64 reference rounded to the type, each tensor output is within 1
//!   ulp, except where the f32 arithmetic itself is off by more than half an
//!   ulp of the type (an output that cancels far below its terms); there the
//!   f32 output must meet the f32 bound;
//! - backward calls (since 1.4.0) compute in double, so they are not the f32
//!   call's: dx is within 1 ulp of the float64 reference rounded to the type,
//!   with no allowance, dgamma, dbeta and the grad sums are near the
//!   reference, d_residual is still the f32 call's (dy masked by the ReLU,
//!   exactly), and the split phases give `backward`'s bits;
//! - the in-place variants write the same bits as the out-of-place call.

use std::fmt::Debug;

use bnorm::{
    Affine, BackwardInput, Bf16, Descriptor, Element, Flags, Layout, ParamGrads, RunningStats,
    SaveStats, Shape, F16, SPLIT_VALUES_PER_CHANNEL,
};

use super::half_oracle::{self, Half};
use super::{BackwardReference, ReferenceParams, Rng, View};

/// The float32 contract's bound, relative to an output's largest magnitude.
pub const F32_TOLERANCE: f64 = 5e-5;

/// A tensor element type of the tests, with its bits to compare outputs
/// exactly and a NaN to prefill outputs with.
pub trait Bits: Element + Debug {
    fn bits(self) -> u32;
    fn nan() -> Self;
}

impl Bits for f32 {
    fn bits(self) -> u32 {
        self.to_bits()
    }
    fn nan() -> f32 {
        f32::NAN
    }
}

impl Bits for Bf16 {
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn nan() -> Bf16 {
        Bf16::from_bits(0x7fc0)
    }
}

impl Bits for F16 {
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn nan() -> F16 {
        F16::from_bits(0x7e00)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Inference,
    Training,
    Backward,
    ScaleShift,
    ResidualInference,
    ResidualTraining,
    ResidualBackward,
    LocalStats,
    Normalize,
    BackwardReduce,
    BackwardElementwise,
}

impl Mode {
    /// The backward calls, which on 16-bit tensors compute in double.
    pub fn is_backward(self) -> bool {
        matches!(
            self,
            Mode::Backward
                | Mode::ResidualBackward
                | Mode::BackwardReduce
                | Mode::BackwardElementwise
        )
    }
}

pub const MODES: [Mode; 11] = [
    Mode::Inference,
    Mode::Training,
    Mode::Backward,
    Mode::ScaleShift,
    Mode::ResidualInference,
    Mode::ResidualTraining,
    Mode::ResidualBackward,
    Mode::LocalStats,
    Mode::Normalize,
    Mode::BackwardReduce,
    Mode::BackwardElementwise,
];

/// A layer, a shape, and the per-channel vectors every mode reads (f32
/// whatever the tensors are).
pub struct Case {
    pub desc: Descriptor,
    pub shape: Shape,
    pub view: View,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

impl Case {
    pub fn new(rng: &mut Rng, shape: Shape, layout: Layout, flags: Flags) -> Case {
        let view = View::new(&shape, layout);
        let c = view.channels;
        let desc = Descriptor::new(c as i64)
            .unwrap()
            .with_layout(layout)
            .with_flags(flags);
        let (mean, var) = (rng.vec(c, -1.0, 1.0), rng.vec(c, 0.1, 2.0));
        let (gamma, beta) = (rng.vec(c, -2.0, 2.0), rng.vec(c, -1.0, 1.0));
        let (mut scale, mut shift) = (vec![0.0; c], vec![0.0; c]);
        let affine = super::affine_of(&desc, &gamma, &beta);
        bnorm::fold_scale_shift(&desc, &mean, &var, affine, &mut scale, &mut shift).unwrap();
        Case {
            desc,
            shape,
            view,
            mean,
            var,
            gamma,
            beta,
            scale,
            shift,
        }
    }

    fn has(&self, flag: Flags) -> bool {
        self.desc.flags().contains(flag)
    }

    pub fn affine(&self) -> Option<Affine<'_>> {
        super::affine_of(&self.desc, &self.gamma, &self.beta)
    }

    fn params(&self) -> ReferenceParams<'_> {
        ReferenceParams::of(&self.desc, self.affine())
    }

    pub fn describe(&self) -> String {
        format!("{:?} {:?}", self.desc, self.shape)
    }
}

/// The tensors a mode reads, in one element type. `y` is a training
/// forward's output, which the backward calls read for the ReLU mask, and
/// `mean` and `invstd` that forward's saved statistics.
pub struct Tensors<E> {
    pub x: Vec<E>,
    pub residual: Vec<E>,
    pub dy: Vec<E>,
    pub y: Vec<E>,
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
}

/// Random tensors of type T, and the same values as f32.
pub fn tensors<T: Half + Bits>(rng: &mut Rng, case: &Case) -> (Tensors<T>, Tensors<f32>) {
    let n = case.view.len();
    let round = |values: Vec<f32>| -> Vec<T> {
        values
            .iter()
            .map(|&v| T::from_bits(half_oracle::round::<T>(v as f64)))
            .collect()
    };
    let x = round(super::random_input(rng, &case.view));
    let residual = round(rng.vec(n, -2.0, 2.0));
    let dy = round(rng.vec(n, -1.0, 1.0));
    let c = case.view.channels;
    let (mut y, mut mean, mut invstd) = (vec![T::nan(); n], vec![0.0; c], vec![0.0; c]);
    let (mut running_mean, mut running_var) = (case.mean.clone(), case.var.clone());
    bnorm::forward_training(
        &case.desc,
        &case.shape,
        &x,
        &mut y,
        case.affine(),
        Some(RunningStats {
            mean: &mut running_mean,
            var: &mut running_var,
        }),
        Some(SaveStats {
            mean: &mut mean,
            invstd: &mut invstd,
        }),
    )
    .unwrap();
    let single = Tensors {
        x: upcast(&x),
        residual: upcast(&residual),
        dy: upcast(&dy),
        y: upcast(&y),
        mean: mean.clone(),
        invstd: invstd.clone(),
    };
    let half = Tensors {
        x,
        residual,
        dy,
        y,
        mean,
        invstd,
    };
    (half, single)
}

pub fn upcast<T: Half>(values: &[T]) -> Vec<f32> {
    values
        .iter()
        .map(|&v| half_oracle::value::<T>(v.to_bits()) as f32)
        .collect()
}

/// A call's outputs by name: tensors, per-channel vectors, exchanged blocks.
pub struct Outputs<E> {
    pub tensors: Vec<(&'static str, Vec<E>)>,
    pub channels: Vec<(&'static str, Vec<f32>)>,
    pub blocks: Vec<(&'static str, Vec<f64>)>,
}

impl<E> Outputs<E> {
    fn new() -> Outputs<E> {
        Outputs {
            tensors: Vec::new(),
            channels: Vec::new(),
            blocks: Vec::new(),
        }
    }
}

fn bits<E: Bits>(values: &[E]) -> Vec<u32> {
    values.iter().map(|&v| v.bits()).collect()
}

#[track_caller]
fn assert_same<E: Bits>(what: &str, a: &[E], b: &[E]) {
    assert!(bits(a) == bits(b), "{}: outputs differ", what);
}

/// Runs `mode` on tensors of type E, checking on the way that its in-place
/// variants write the same bits.
pub fn run<E: Bits>(mode: Mode, case: &Case, t: &Tensors<E>) -> Outputs<E> {
    let (desc, shape) = (&case.desc, &case.shape);
    let n = case.view.len();
    let c = case.view.channels;
    let affine = case.affine();
    let relu_y = if case.has(Flags::FUSE_RELU) {
        Some(&t.y[..])
    } else {
        None
    };
    let input = BackwardInput {
        x: &t.x,
        y: relu_y,
        gamma: affine.map(|a| a.gamma),
        mean: &t.mean,
        invstd: &t.invstd,
    };
    let tracks = case.has(Flags::TRACK_RUNNING_STATS);
    let mut out = Outputs::new();
    match mode {
        Mode::Inference => {
            let mut y = vec![E::nan(); n];
            bnorm::forward_inference(desc, shape, &t.x, &mut y, &case.mean, &case.var, affine)
                .unwrap();
            let mut xy = t.x.clone();
            bnorm::forward_inference_in_place(desc, shape, &mut xy, &case.mean, &case.var, affine)
                .unwrap();
            assert_same("inference in place", &xy, &y);
            out.tensors.push(("y", y));
        }
        Mode::Training | Mode::ResidualTraining => {
            let residual = mode == Mode::ResidualTraining;
            // Out of place, y over x, and (with a residual) y over residual.
            let variants = if residual { 3 } else { 2 };
            let mut first: Option<Outputs<E>> = None;
            for variant in 0..variants {
                let (mut rm, mut rv) = (case.mean.clone(), case.var.clone());
                let (mut sm, mut si) = (vec![f32::NAN; c], vec![f32::NAN; c]);
                let running = if tracks {
                    Some(RunningStats {
                        mean: &mut rm,
                        var: &mut rv,
                    })
                } else {
                    None
                };
                let save = Some(SaveStats {
                    mean: &mut sm,
                    invstd: &mut si,
                });
                let y = match (residual, variant) {
                    (false, 0) => {
                        let mut y = vec![E::nan(); n];
                        bnorm::forward_training(desc, shape, &t.x, &mut y, affine, running, save)
                            .unwrap();
                        y
                    }
                    (false, _) => {
                        let mut xy = t.x.clone();
                        bnorm::forward_training_in_place(
                            desc, shape, &mut xy, affine, running, save,
                        )
                        .unwrap();
                        xy
                    }
                    (true, 0) => {
                        let mut y = vec![E::nan(); n];
                        bnorm::forward_training_residual(
                            desc,
                            shape,
                            &t.x,
                            &t.residual,
                            &mut y,
                            affine,
                            running,
                            save,
                        )
                        .unwrap();
                        y
                    }
                    (true, 1) => {
                        let mut xy = t.x.clone();
                        bnorm::forward_training_residual_in_place(
                            desc,
                            shape,
                            &mut xy,
                            &t.residual,
                            affine,
                            running,
                            save,
                        )
                        .unwrap();
                        xy
                    }
                    (true, _) => {
                        let mut ry = t.residual.clone();
                        bnorm::forward_training_residual_over_residual(
                            desc, shape, &t.x, &mut ry, affine, running, save,
                        )
                        .unwrap();
                        ry
                    }
                };
                match &first {
                    None => {
                        let mut o = Outputs::new();
                        o.tensors.push(("y", y));
                        o.channels.push(("save_mean", sm));
                        o.channels.push(("save_invstd", si));
                        o.channels.push(("running_mean", rm));
                        o.channels.push(("running_var", rv));
                        first = Some(o);
                    }
                    Some(o) => {
                        let what = format!("{:?} variant {}", mode, variant);
                        assert_same(&what, &y, &o.tensors[0].1);
                        for (got, (_, want)) in [sm, si, rm, rv].iter().zip(&o.channels) {
                            assert_same(&what, got, want);
                        }
                    }
                }
            }
            out = first.unwrap();
        }
        Mode::Backward => {
            let (mut dx, mut dgamma, mut dbeta) = (vec![E::nan(); n], vec![0.0; c], vec![0.0; c]);
            let grads = ParamGrads {
                dgamma: Some(&mut dgamma),
                dbeta: Some(&mut dbeta),
            };
            bnorm::backward(desc, shape, input, &t.dy, Some(&mut dx), grads).unwrap();
            let mut dy_dx = t.dy.clone();
            bnorm::backward_in_place(desc, shape, input, &mut dy_dx, ParamGrads::default())
                .unwrap();
            assert_same("backward in place", &dy_dx, &dx);
            out.tensors.push(("dx", dx));
            out.channels.push(("dgamma", dgamma));
            out.channels.push(("dbeta", dbeta));
        }
        Mode::ScaleShift => {
            let mut y = vec![E::nan(); n];
            bnorm::forward_scale_shift(desc, shape, &t.x, &mut y, &case.scale, &case.shift)
                .unwrap();
            let mut xy = t.x.clone();
            bnorm::forward_scale_shift_in_place(desc, shape, &mut xy, &case.scale, &case.shift)
                .unwrap();
            assert_same("scale_shift in place", &xy, &y);
            out.tensors.push(("y", y));
        }
        Mode::ResidualInference => {
            let (mean, var) = (&case.mean, &case.var);
            let mut y = vec![E::nan(); n];
            bnorm::forward_inference_residual(
                desc,
                shape,
                &t.x,
                &t.residual,
                &mut y,
                mean,
                var,
                affine,
            )
            .unwrap();
            let mut xy = t.x.clone();
            bnorm::forward_inference_residual_in_place(
                desc,
                shape,
                &mut xy,
                &t.residual,
                mean,
                var,
                affine,
            )
            .unwrap();
            assert_same("residual inference over x", &xy, &y);
            let mut ry = t.residual.clone();
            bnorm::forward_inference_residual_over_residual(
                desc, shape, &t.x, &mut ry, mean, var, affine,
            )
            .unwrap();
            assert_same("residual inference over residual", &ry, &y);
            out.tensors.push(("y", y));
        }
        Mode::ResidualBackward => {
            let (mut dx, mut d_residual) = (vec![E::nan(); n], vec![E::nan(); n]);
            let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
            let grads = ParamGrads {
                dgamma: Some(&mut dgamma),
                dbeta: Some(&mut dbeta),
            };
            bnorm::backward_residual(desc, shape, input, &t.dy, &mut dx, &mut d_residual, grads)
                .unwrap();
            let (mut dy_dx, mut other) = (t.dy.clone(), vec![E::nan(); n]);
            bnorm::backward_residual_in_place(
                desc,
                shape,
                input,
                &mut dy_dx,
                &mut other,
                ParamGrads::default(),
            )
            .unwrap();
            assert_same("residual backward, dx over dy", &dy_dx, &dx);
            assert_same(
                "residual backward, dx over dy: d_residual",
                &other,
                &d_residual,
            );
            let mut dy_dr = t.dy.clone();
            bnorm::backward_residual_d_residual_in_place(
                desc,
                shape,
                input,
                &mut dy_dr,
                &mut other,
                ParamGrads::default(),
            )
            .unwrap();
            assert_same("residual backward, d_residual over dy", &dy_dr, &d_residual);
            assert_same("residual backward, d_residual over dy: dx", &other, &dx);
            out.tensors.push(("dx", dx));
            out.tensors.push(("d_residual", d_residual));
            out.channels.push(("dgamma", dgamma));
            out.channels.push(("dbeta", dbeta));
        }
        Mode::LocalStats => {
            let mut block = vec![f64::NAN; SPLIT_VALUES_PER_CHANNEL * c];
            bnorm::local_stats(desc, shape, &t.x, &mut block).unwrap();
            out.blocks.push(("partial_stats", block));
        }
        Mode::Normalize => {
            let (mean, invstd) = (&t.mean, &t.invstd);
            let mut y = vec![E::nan(); n];
            bnorm::forward_normalize(desc, shape, &t.x, &mut y, mean, invstd, affine).unwrap();
            let mut xy = t.x.clone();
            bnorm::forward_normalize_in_place(desc, shape, &mut xy, mean, invstd, affine).unwrap();
            assert_same("normalize in place", &xy, &y);
            out.tensors.push(("y", y));
        }
        Mode::BackwardReduce | Mode::BackwardElementwise => {
            let mut sums = vec![f64::NAN; SPLIT_VALUES_PER_CHANNEL * c];
            let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
            let grads = ParamGrads {
                dgamma: Some(&mut dgamma),
                dbeta: Some(&mut dbeta),
            };
            bnorm::backward_reduce(desc, shape, input, &t.dy, &mut sums, grads).unwrap();
            if mode == Mode::BackwardReduce {
                out.blocks.push(("grad_sums", sums));
                out.channels.push(("dgamma", dgamma));
                out.channels.push(("dbeta", dbeta));
            } else {
                let mut dx = vec![E::nan(); n];
                bnorm::backward_elementwise(desc, shape, input, &t.dy, Some(&sums), &mut dx)
                    .unwrap();
                let mut dy_dx = t.dy.clone();
                bnorm::backward_elementwise_in_place(desc, shape, input, &mut dy_dx, Some(&sums))
                    .unwrap();
                assert_same("backward_elementwise in place", &dy_dx, &dx);
                out.tensors.push(("dx", dx));
            }
        }
    }
    out
}

/// The float64 reference of the backward calls, from the f32 inputs.
pub fn backward_reference(case: &Case, t: &Tensors<f32>) -> BackwardReference {
    let relu_y = if case.has(Flags::FUSE_RELU) {
        Some(&t.y[..])
    } else {
        None
    };
    let gamma = case.affine().map(|a| a.gamma);
    let global = case.has(Flags::USE_GLOBAL_STATS);
    super::backward(
        &case.view, &t.x, &t.dy, relu_y, gamma, &t.mean, &t.invstd, global,
    )
}

/// The float64 reference of each tensor output of `mode`, from the f32
/// inputs (the 16-bit inputs' exact values).
pub fn reference(mode: Mode, case: &Case, t: &Tensors<f32>) -> Vec<Vec<f64>> {
    let view = &case.view;
    let params = case.params();
    let relu_y = if case.has(Flags::FUSE_RELU) {
        Some(&t.y[..])
    } else {
        None
    };
    let gamma = case.affine().map(|a| a.gamma);
    let dx = || backward_reference(case, t).dx;
    match mode {
        Mode::Inference => vec![super::inference(view, &t.x, &case.mean, &case.var, &params)],
        Mode::Training => vec![super::training(view, &t.x, &params).y],
        Mode::ResidualInference => {
            let params = params.with_residual(&t.residual);
            vec![super::inference(view, &t.x, &case.mean, &case.var, &params)]
        }
        Mode::ResidualTraining => {
            let params = params.with_residual(&t.residual);
            vec![super::training(view, &t.x, &params).y]
        }
        Mode::Backward | Mode::BackwardElementwise => vec![dx()],
        Mode::ResidualBackward => {
            // d_residual is dy, zeroed where the forward output is <= 0.
            let d_residual = (0..view.len())
                .map(|i| match relu_y {
                    Some(y) if y[i] <= 0.0 => 0.0,
                    _ => t.dy[i] as f64,
                })
                .collect();
            vec![dx(), d_residual]
        }
        Mode::ScaleShift | Mode::Normalize => {
            let relu = case.has(Flags::FUSE_RELU);
            let y = (0..view.len())
                .map(|i| {
                    let c = view.channel_of(i);
                    let x = t.x[i] as f64;
                    let out = if mode == Mode::ScaleShift {
                        x * case.scale[c] as f64 + case.shift[c] as f64
                    } else {
                        let g = gamma.map_or(1.0, |g| g[c] as f64);
                        let b = params.beta.map_or(0.0, |b| b[c] as f64);
                        (x - t.mean[c] as f64) * t.invstd[c] as f64 * g + b
                    };
                    if relu {
                        out.max(0.0)
                    } else {
                        out
                    }
                })
                .collect();
            vec![y]
        }
        Mode::LocalStats | Mode::BackwardReduce => Vec::new(),
    }
}

/// How a 16-bit run compared: outputs checked, and those where the f32
/// arithmetic itself was off by more than half an ulp of the type.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub elements: usize,
    pub cancelled: usize,
}

/// Runs `mode` on the 16-bit tensors and on their f32 values, and checks
/// every promise between the two and against the float64 reference.
pub fn check<T: Half + Bits>(
    mode: Mode,
    case: &Case,
    half: &Tensors<T>,
    single: &Tensors<f32>,
) -> Tally {
    let what = format!("{} {:?} {}", T::NAME, mode, case.describe());
    let got = run(mode, case, half);
    let want = run(mode, case, single);
    let mut tally = Tally::default();

    if mode.is_backward() {
        check_backward_grads(&what, mode, case, half, single, &got);
    } else {
        for ((name, g), (_, w)) in got.channels.iter().zip(&want.channels) {
            assert_eq!(bits(g), bits(w), "{}: {} is not the f32 call's", what, name);
        }
        for ((name, g), (_, w)) in got.blocks.iter().zip(&want.blocks) {
            let (g, w): (Vec<u64>, Vec<u64>) = (
                g.iter().map(|v| v.to_bits()).collect(),
                w.iter().map(|v| v.to_bits()).collect(),
            );
            assert_eq!(g, w, "{}: {} is not the f32 call's", what, name);
        }
    }
    assert_eq!(got.tensors.len(), want.tensors.len());
    let expected = reference(mode, case, single);
    assert_eq!(expected.len(), got.tensors.len(), "{}: references", what);
    for (((name, g), (_, w)), e) in got.tensors.iter().zip(&want.tensors).zip(&expected) {
        let what = format!("{} {}", what, name);
        if mode.is_backward() && *name == "dx" {
            // Computed in double: within 1 ulp everywhere, cancelling or not.
            for (i, (&g, &e)) in g.iter().zip(e).enumerate() {
                assert_within_one_ulp::<T>(&what, i, g, e);
            }
            tally.elements += g.len();
            continue;
        }
        assert_rounded_f32::<T>(&what, g, w);
        let t = assert_near_reference::<T>(&what, g, w, e);
        tally.elements += t.elements;
        tally.cancelled += t.cancelled;
    }
    tally
}

/// dgamma, dbeta and the grad sums of a backward call on 16-bit tensors:
/// computed in double, they are near the float64 reference rather than the
/// f32 call's; those of the split phases (`backward_reduce`, then
/// `backward_elementwise` on its sums) are `backward`'s, bit for bit.
fn check_backward_grads<T: Half + Bits>(
    what: &str,
    mode: Mode,
    case: &Case,
    half: &Tensors<T>,
    single: &Tensors<f32>,
    got: &Outputs<T>,
) {
    let expected = backward_reference(case, single);
    for (name, g) in &got.channels {
        let e = if *name == "dgamma" {
            &expected.dgamma
        } else {
            &expected.dbeta
        };
        super::assert_close(&format!("{} {}", what, name), g, e, F32_TOLERANCE);
    }
    for (name, sums) in &got.blocks {
        // Per channel: the count, sum(g) = dbeta, sum(g * (x - mean)) =
        // dgamma / invstd.
        let column = |j: usize| sums.iter().skip(j).step_by(SPLIT_VALUES_PER_CHANNEL);
        let count = case.view.count() as f64;
        assert!(
            column(0).all(|&n| n == count),
            "{} {}: counts are not {}",
            what,
            name,
            count
        );
        let as_f32 = |j: usize| column(j).map(|&v| v as f32).collect::<Vec<f32>>();
        let moments: Vec<f64> = expected
            .dgamma
            .iter()
            .zip(&single.invstd)
            .map(|(&dgamma, &invstd)| dgamma / invstd as f64)
            .collect();
        let what = format!("{} {}", what, name);
        super::assert_close(&what, &as_f32(1), &expected.dbeta, F32_TOLERANCE);
        super::assert_close(&what, &as_f32(2), &moments, F32_TOLERANCE);
    }
    if mode == Mode::BackwardReduce || mode == Mode::BackwardElementwise {
        let whole = run(Mode::Backward, case, half);
        for ((name, g), (_, w)) in got.channels.iter().zip(&whole.channels) {
            assert_same(&format!("{} {} against backward", what, name), g, w);
        }
        for ((name, g), (_, w)) in got.tensors.iter().zip(&whole.tensors) {
            assert_same(&format!("{} {} against backward", what, name), g, w);
        }
    }
}

/// `got` is `single` rounded to the type, element by element.
#[track_caller]
pub fn assert_rounded_f32<T: Half>(what: &str, got: &[T], single: &[f32]) {
    assert_eq!(got.len(), single.len(), "{}: length", what);
    for (i, (&g, &s)) in got.iter().zip(single).enumerate() {
        let g = g.to_bits();
        if s.is_nan() {
            assert!(
                half_oracle::is_nan::<T>(g) && g & T::quiet_bit() != 0,
                "{}[{}]: {:#06x} is not a quiet NaN",
                what,
                i,
                g
            );
        } else {
            let want = half_oracle::round::<T>(s as f64);
            assert_eq!(
                g, want,
                "{}[{}]: {:#06x}, but the f32 call's {:e} rounds to {:#06x}",
                what, i, g, s, want
            );
        }
    }
}

/// Within 1 ulp of the reference rounded to the type, unless the f32
/// output is itself more than half an ulp of the type away from the
/// reference; then the f32 output must be within the f32 bound.
#[track_caller]
fn assert_near_reference<T: Half>(
    what: &str,
    got: &[T],
    single: &[f32],
    expected: &[f64],
) -> Tally {
    let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let mut tally = Tally::default();
    for (i, ((&g, &s), &e)) in got.iter().zip(single).zip(expected).enumerate() {
        tally.elements += 1;
        let f32_error = (s as f64 - e).abs();
        if f32_error > half_oracle::ulp::<T>(e) / 2.0 {
            tally.cancelled += 1;
            assert!(
                f32_error <= F32_TOLERANCE * scale,
                "{}[{}]: the f32 call gives {:e}, reference {:e} (scale {})",
                what,
                i,
                s,
                e,
                scale
            );
        } else {
            assert_within_one_ulp::<T>(what, i, g, e);
        }
    }
    tally
}

/// Output `i` is within 1 ulp of the reference rounded to the type, and NaN
/// exactly where the reference is.
#[track_caller]
fn assert_within_one_ulp<T: Half>(what: &str, i: usize, got: T, expected: f64) {
    let g = got.to_bits();
    if expected.is_nan() || half_oracle::is_nan::<T>(g) {
        assert!(
            expected.is_nan() && half_oracle::is_nan::<T>(g),
            "{}[{}]: {:#06x}, reference {:e}",
            what,
            i,
            g,
            expected
        );
        return;
    }
    let rounded = half_oracle::round::<T>(expected);
    let apart = half_oracle::ulps_apart(g, rounded);
    assert!(
        apart <= 1,
        "{}[{}]: {:#06x} ({:e}) is {} ulps from the reference {:e} ({:#06x})",
        what,
        i,
        g,
        half_oracle::value::<T>(g),
        apart,
        expected,
        rounded
    );
}
