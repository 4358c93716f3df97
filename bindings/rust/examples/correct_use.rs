//! correct_use: one BatchNorm2d layer driven through the binding, the way a
//! framework drives it.
//!
//! 1. Describe the layer once (64 channels, PyTorch's defaults: eps 1e-5,
//!    momentum 0.1, affine, tracking running statistics).
//! 2. Training step: normalize a 32x64x28x28 NCHW batch with its own
//!    statistics, update the running statistics, keep the batch mean and 1/std
//!    for the backward pass.
//! 3. Inference: normalize with the running statistics.
//!
//! Every result is checked against a double-precision computation from the
//! same inputs.
//!
//!     cargo run --release --example correct_use

use bnorm::{Affine, Descriptor, RunningStats, SaveStats, Shape};

const N: usize = 32;
const C: usize = 64;
const H: usize = 28;
const W: usize = 28;
const SPATIAL: usize = H * W;
const COUNT: usize = N * SPATIAL; // values per channel

/// Channel c holds values around (c % 7) - 3 with a channel-dependent spread,
/// so normalization has something to undo. A fixed LCG: the same data on
/// every run.
fn input() -> Vec<f32> {
    let mut state = 12345u32;
    let mut x = Vec::with_capacity(N * C * SPATIAL);
    for _ in 0..N {
        for c in 0..C {
            let center = (c % 7) as f32 - 3.0;
            let spread = 0.5 + 0.5 * (c % 5) as f32;
            for _ in 0..SPATIAL {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (state >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0;
                x.push(center + spread * u);
            }
        }
    }
    x
}

/// Mean and biased variance of channel c of an NCHW tensor, in double.
fn channel_stats(t: &[f32], c: usize) -> (f64, f64) {
    let values = || {
        (0..N).flat_map(move |n| {
            t[(n * C + c) * SPATIAL..][..SPATIAL]
                .iter()
                .map(|&v| v as f64)
        })
    };
    let mean = values().sum::<f64>() / COUNT as f64;
    let var = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / COUNT as f64;
    (mean, var)
}

fn check(failures: &mut Vec<String>, ok: bool, what: &str, value: f64) {
    println!(
        "  {:<48} {:.3e}  {}",
        what,
        value,
        if ok { "ok" } else { "FAILED" }
    );
    if !ok {
        failures.push(what.to_string());
    }
}

/// Runs the layer; `Err` lists the checks that failed.
pub fn run() -> Result<(), String> {
    // A binary may load a different library than the one it was built for.
    if bnorm::version() / 10000 != bnorm::sys::BNORM_VERSION_MAJOR {
        return Err(format!(
            "loaded bnorm {} is not major version 1",
            bnorm::version_string()
        ));
    }
    let layer = Descriptor::new(C as i64).map_err(|e| e.to_string())?;
    // Dims in memory order; for NCHW the channel dimension is dims[1].
    let shape = Shape::new(&[N as i64, C as i64, H as i64, W as i64]);

    let x = input();
    let mut y = vec![0.0f32; x.len()];
    // gamma = 1 and beta = 0 make the layer a pure normalization, easy to
    // check. Running statistics start where PyTorch starts them.
    let (gamma, beta) = (vec![1.0f32; C], vec![0.0f32; C]);
    let affine = Affine {
        gamma: &gamma,
        beta: &beta,
    };
    let (mut running_mean, mut running_var) = (vec![0.0f32; C], vec![1.0f32; C]);
    let (mut save_mean, mut save_invstd) = (vec![0.0f32; C], vec![0.0f32; C]);
    println!(
        "bnorm {}, SIMD target {}",
        bnorm::version_string(),
        bnorm::active_target()
    );

    bnorm::forward_training(
        &layer,
        &shape,
        &x,
        &mut y,
        Some(affine),
        Some(RunningStats {
            mean: &mut running_mean,
            var: &mut running_var,
        }),
        Some(SaveStats {
            mean: &mut save_mean,
            invstd: &mut save_invstd,
        }),
    )
    .map_err(|e| e.to_string())?;

    let (mut worst_y_mean, mut worst_y_var, mut worst_save, mut worst_running) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let eps = layer.eps() as f64;
    let m = layer.momentum() as f64;
    for c in 0..C {
        let (x_mean, x_var) = channel_stats(&x, c);
        let (y_mean, y_var) = channel_stats(&y, c);
        worst_y_mean = worst_y_mean.max(y_mean.abs());
        worst_y_var = worst_y_var.max((y_var - 1.0).abs());
        // save_mean / save_invstd: the batch's mean and 1/sqrt(biased var + eps).
        let invstd = 1.0 / (x_var + eps).sqrt();
        worst_save = worst_save.max((save_mean[c] as f64 - x_mean).abs() / x_mean.abs().max(1.0));
        worst_save = worst_save.max((save_invstd[c] as f64 - invstd).abs() / invstd);
        // running = (1 - m) * running + m * batch, the batch variance unbiased
        // by count / (count - 1) as in PyTorch.
        let unbiased = x_var * COUNT as f64 / (COUNT - 1) as f64;
        worst_running = worst_running.max((running_mean[c] as f64 - m * x_mean).abs());
        worst_running =
            worst_running.max((running_var[c] as f64 - ((1.0 - m) + m * unbiased)).abs());
    }
    let mut failures = Vec::new();
    println!("training forward, {}x{}x{}x{} NCHW:", N, C, H, W);
    // var(y) is var / (var + eps), a hair under 1, hence the tolerance.
    check(
        &mut failures,
        worst_y_mean <= 1e-3,
        "max over channels |mean(y)|",
        worst_y_mean,
    );
    check(
        &mut failures,
        worst_y_var <= 1e-3,
        "max over channels |var(y) - 1|",
        worst_y_var,
    );
    check(
        &mut failures,
        worst_save <= 1e-5,
        "save_mean, save_invstd: max relative error",
        worst_save,
    );
    check(
        &mut failures,
        worst_running <= 1e-5,
        "running_mean, running_var: max error",
        worst_running,
    );

    bnorm::forward_inference(
        &layer,
        &shape,
        &x,
        &mut y,
        &running_mean,
        &running_var,
        Some(affine),
    )
    .map_err(|e| e.to_string())?;
    let (mut worst, mut largest) = (0.0f64, 0.0f64);
    for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
        let c = i / SPATIAL % C;
        let invstd = 1.0 / (running_var[c] as f64 + eps).sqrt();
        let expected = (xi as f64 - running_mean[c] as f64) * invstd;
        worst = worst.max((yi as f64 - expected).abs());
        largest = largest.max(expected.abs());
    }
    println!("inference with the running statistics:");
    check(
        &mut failures,
        worst <= 1e-4 * largest,
        "max |y - reference| / max |reference|",
        worst / largest,
    );

    if failures.is_empty() {
        println!("correct_use: all checks passed");
        Ok(())
    } else {
        Err(format!("failed: {}", failures.join("; ")))
    }
}

#[allow(dead_code)] // the tests include this file as a module and call `run`
fn main() {
    if let Err(problem) = run() {
        eprintln!("correct_use: {}", problem);
        std::process::exit(1);
    }
}
