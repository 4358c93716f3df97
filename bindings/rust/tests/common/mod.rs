//! Shared by the integration tests: a deterministic PRNG, random tensors, a
//! float64 reference of batch normalization written from its definition
//! (optionally with a residual added before the ReLU), and the checks the
//! error tests repeat; for bf16 and f16 tensors, an independent rounding
//! oracle and every call checked against its f32 counterpart (forward calls)
//! and the float64 reference.

#![allow(dead_code)] // each test binary uses a different part

use std::ffi::CStr;
use std::mem::MaybeUninit;

use bnorm::{sys, Affine, Descriptor, Error, Layout, RunningStats, SaveStats, Shape, Status};

pub mod half_modes;
pub mod half_oracle;

/// SplitMix64: tiny, deterministic, and good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as i64 - 1) as usize]
    }

    pub fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len)
            .map(|_| lo + (hi - lo) * (self.unit() + 1.0) / 2.0)
            .collect()
    }
}

/// Any tensor in either layout is `[outer][C][inner]` in memory: NCHW has
/// outer = N and inner = the spatial size; NHWC has outer = N x spatial and
/// inner = 1. The reference walks that view.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub outer: usize,
    pub channels: usize,
    pub inner: usize,
}

impl View {
    pub fn new(shape: &Shape, layout: Layout) -> View {
        let dims: Vec<usize> = shape.dims().iter().map(|&d| d as usize).collect();
        let axis = layout.channel_axis(dims.len());
        View {
            outer: dims[..axis].iter().product(),
            channels: dims[axis],
            inner: dims[axis + 1..].iter().product(),
        }
    }

    pub fn len(&self) -> usize {
        self.outer * self.channels * self.inner
    }

    /// Values per channel.
    pub fn count(&self) -> usize {
        self.outer * self.inner
    }

    pub fn channel_of(&self, index: usize) -> usize {
        index / self.inner % self.channels
    }

    /// Indices of channel c's values.
    pub fn indices(&self, c: usize) -> impl Iterator<Item = usize> {
        let View {
            outer,
            channels,
            inner,
        } = *self;
        (0..outer).flat_map(move |o| (0..inner).map(move |i| (o * channels + c) * inner + i))
    }
}

/// A random shape of `rank` with `channels` channels and at least
/// `min_per_channel` values per channel, small enough for quick tests.
pub fn random_shape(
    rng: &mut Rng,
    layout: Layout,
    rank: usize,
    channels: i64,
    min_per_channel: i64,
) -> Shape {
    loop {
        let mut dims: Vec<i64> = (0..rank).map(|_| rng.range(1, 6)).collect();
        dims[0] = rng.range(1, 4);
        dims[layout.channel_axis(rank)] = channels;
        let per_channel: i64 = dims.iter().product::<i64>() / channels;
        if per_channel >= min_per_channel {
            return Shape::new(&dims);
        }
    }
}

/// Per-channel offsets and spreads, so normalization has something to undo.
pub fn random_input(rng: &mut Rng, view: &View) -> Vec<f32> {
    let center = rng.vec(view.channels, -3.0, 3.0);
    let spread = rng.vec(view.channels, 0.1, 2.0);
    (0..view.len())
        .map(|i| {
            let c = view.channel_of(i);
            center[c] + spread[c] * rng.unit()
        })
        .collect()
}

pub struct ReferenceParams<'a> {
    pub eps: f64,
    pub gamma: Option<&'a [f32]>,
    pub beta: Option<&'a [f32]>,
    /// Added to every output before the ReLU, as the `*_residual` calls do.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl<'a> ReferenceParams<'a> {
    /// What `desc` asks of the reference, given the layer's affine parameters.
    pub fn of(desc: &Descriptor, affine: Option<Affine<'a>>) -> ReferenceParams<'a> {
        ReferenceParams {
            eps: desc.eps() as f64,
            gamma: affine.map(|a| a.gamma),
            beta: affine.map(|a| a.beta),
            residual: None,
            relu: desc.flags().contains(bnorm::Flags::FUSE_RELU),
        }
    }

    /// The same with `residual` added before the ReLU.
    pub fn with_residual(self, residual: &'a [f32]) -> ReferenceParams<'a> {
        ReferenceParams {
            residual: Some(residual),
            ..self
        }
    }

    /// Output `i`, of channel `c`, from its normalized value.
    fn apply(&self, i: usize, c: usize, normalized: f64) -> f64 {
        let gamma = self.gamma.map_or(1.0, |g| g[c] as f64);
        let beta = self.beta.map_or(0.0, |b| b[c] as f64);
        let residual = self.residual.map_or(0.0, |r| r[i] as f64);
        let out = normalized * gamma + beta + residual;
        if self.relu {
            out.max(0.0)
        } else {
            out
        }
    }
}

pub fn inference(
    view: &View,
    x: &[f32],
    mean: &[f32],
    var: &[f32],
    params: &ReferenceParams<'_>,
) -> Vec<f64> {
    (0..view.len())
        .map(|i| {
            let c = view.channel_of(i);
            let invstd = 1.0 / (var[c] as f64 + params.eps).sqrt();
            params.apply(i, c, (x[i] as f64 - mean[c] as f64) * invstd)
        })
        .collect()
}

pub struct TrainingReference {
    pub y: Vec<f64>,
    pub mean: Vec<f64>,
    pub invstd: Vec<f64>,
    /// Batch variance unbiased by count / (count - 1), for the running update.
    pub unbiased_var: Vec<f64>,
}

pub fn training(view: &View, x: &[f32], params: &ReferenceParams<'_>) -> TrainingReference {
    let n = view.count() as f64;
    let mut mean = vec![0.0; view.channels];
    let mut var = vec![0.0; view.channels];
    for c in 0..view.channels {
        mean[c] = view.indices(c).map(|i| x[i] as f64).sum::<f64>() / n;
        var[c] = view
            .indices(c)
            .map(|i| (x[i] as f64 - mean[c]).powi(2))
            .sum::<f64>()
            / n;
    }
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + params.eps).sqrt()).collect();
    let y = (0..view.len())
        .map(|i| {
            let c = view.channel_of(i);
            params.apply(i, c, (x[i] as f64 - mean[c]) * invstd[c])
        })
        .collect();
    let unbiased_var = var.iter().map(|v| v * n / (n - 1.0)).collect();
    TrainingReference {
        y,
        mean,
        invstd,
        unbiased_var,
    }
}

pub struct BackwardReference {
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
}

/// PyTorch's native_batch_norm_backward. `relu_y` is the forward output when
/// ReLU was fused: dy only flows where it is > 0 (or NaN).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    view: &View,
    x: &[f32],
    dy: &[f32],
    relu_y: Option<&[f32]>,
    gamma: Option<&[f32]>,
    mean: &[f32],
    invstd: &[f32],
    global_stats: bool,
) -> BackwardReference {
    let grad = |i: usize| match relu_y {
        Some(y) if y[i] <= 0.0 => 0.0,
        _ => dy[i] as f64,
    };
    let n = view.count() as f64;
    let mut dx = vec![0.0; view.len()];
    let mut dgamma = vec![0.0; view.channels];
    let mut dbeta = vec![0.0; view.channels];
    for c in 0..view.channels {
        let (m, s) = (mean[c] as f64, invstd[c] as f64);
        let g = gamma.map_or(1.0, |g| g[c] as f64);
        dbeta[c] = view.indices(c).map(grad).sum::<f64>();
        dgamma[c] = view
            .indices(c)
            .map(|i| grad(i) * (x[i] as f64 - m))
            .sum::<f64>()
            * s;
        for i in view.indices(c) {
            dx[i] = if global_stats {
                grad(i) * g * s
            } else {
                let xhat = (x[i] as f64 - m) * s;
                g * s * (grad(i) - dbeta[c] / n - xhat * dgamma[c] / n)
            };
        }
    }
    BackwardReference { dx, dgamma, dbeta }
}

/// Asserts |actual - expected| <= tolerance * max(1, max |expected|), the
/// contract's way of measuring float32 results against float64.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{}: length", what);
    let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a as f64 - e).abs() <= tolerance * scale,
            "{}[{}]: got {}, expected {} (scale {})",
            what,
            i,
            a,
            e,
            scale
        );
    }
}

pub fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// The layer's gamma and beta as the safe API takes them: `Some` exactly when
/// `desc` has `Flags::AFFINE`.
pub fn affine_of<'a>(desc: &Descriptor, gamma: &'a [f32], beta: &'a [f32]) -> Option<Affine<'a>> {
    if desc.flags().contains(bnorm::Flags::AFFINE) {
        Some(Affine { gamma, beta })
    } else {
        None
    }
}

/// Every output of a training forward that keeps all its statistics.
#[derive(Debug, PartialEq)]
pub struct Training {
    pub y: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    pub save_mean: Vec<f32>,
    pub save_invstd: Vec<f32>,
}

impl Training {
    /// `forward_training` with running statistics that start at `running`
    /// and `y` and the saved statistics prefilled with `fill`.
    pub fn run(
        desc: &Descriptor,
        shape: &Shape,
        x: &[f32],
        affine: Option<Affine<'_>>,
        running: (Vec<f32>, Vec<f32>),
        fill: f32,
    ) -> Result<Training, Error> {
        let channels = running.0.len();
        let mut out = Training {
            y: vec![fill; x.len()],
            running_mean: running.0,
            running_var: running.1,
            save_mean: vec![fill; channels],
            save_invstd: vec![fill; channels],
        };
        bnorm::forward_training(
            desc,
            shape,
            x,
            &mut out.y,
            affine,
            Some(RunningStats {
                mean: &mut out.running_mean,
                var: &mut out.running_var,
            }),
            Some(SaveStats {
                mean: &mut out.save_mean,
                invstd: &mut out.save_invstd,
            }),
        )?;
        Ok(out)
    }
}

/// What the error tests fill buffers with, to see that nothing was written.
pub const SENTINEL: f32 = -12345.0;

#[track_caller]
pub fn assert_error(result: Result<(), Error>, status: Status, message: &str) {
    let err = result.expect_err("the call should fail");
    assert_eq!(err.status(), status, "{}", err);
    assert_eq!(err.message(), message);
}

/// Every buffer some functions take, filled with `SENTINEL`.
pub trait Sentinels {
    fn new() -> Self;

    /// The buffers to check after a failing call.
    fn all(&self) -> Vec<&[f32]>;

    fn untouched(&self) -> bool {
        self.all().iter().all(|b| b.iter().all(|&v| v == SENTINEL))
    }
}

/// One call on fresh buffers: `change` spoils them, `call` must then fail
/// with `status` and `message` and leave every buffer untouched.
#[track_caller]
pub fn assert_call_fails<B: Sentinels>(
    function: &str,
    change: impl FnOnce(&mut B),
    call: fn(&mut B) -> Result<(), Error>,
    status: Status,
    message: &str,
) {
    let mut buffers = B::new();
    change(&mut buffers);
    let err = call(&mut buffers).expect_err(function);
    assert_eq!(err.status(), status, "{}: {}", function, err);
    assert_eq!(err.message(), message, "{}", function);
    assert!(buffers.untouched(), "{} wrote before failing", function);
}

/// `bnorm_desc_init` through the raw declarations.
pub fn raw_desc(num_features: i64) -> sys::bnorm_desc {
    let mut desc = MaybeUninit::<sys::bnorm_desc>::uninit();
    let status = unsafe { sys::bnorm_desc_init(desc.as_mut_ptr(), num_features) };
    assert_eq!(status, sys::BNORM_OK);
    unsafe { desc.assume_init() }
}

/// This thread's `bnorm_last_error()`.
pub fn raw_last_error() -> String {
    unsafe { CStr::from_ptr(sys::bnorm_last_error()) }
        .to_string_lossy()
        .into_owned()
}
