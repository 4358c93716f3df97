//! feature_mismatch: what happens when a tensor does not fit the layer.
//!
//! The layer was built for 128 channels, but the input has 64 (a classic
//! mistake after editing a network). The shape travels with every call, so
//! instead of reading past the end of gamma or normalizing with the wrong
//! statistics, the call fails with `Status::FEATURE_MISMATCH`, the library
//! says which numbers disagree, and nothing is written.
//!
//!     cargo run --example feature_mismatch

use bnorm::{Affine, Descriptor, Error, RunningStats, SaveStats, Shape, Status};

const N: i64 = 32;
const C_INPUT: i64 = 64;
const H: i64 = 28;
const W: i64 = 28;
const C_LAYER: i64 = 128;
const SENTINEL: f32 = -12345.0;

/// Makes the mistake; returns the error the caller gets, or what went
/// differently from the documented behaviour.
pub fn run() -> Result<Error, String> {
    let layer = Descriptor::new(C_LAYER).map_err(|e| e.to_string())?;
    let input = Shape::new(&[N, C_INPUT, H, W]);

    let elements = (N * C_INPUT * H * W) as usize;
    let x: Vec<f32> = (0..elements).map(|i| (i % 17) as f32).collect();
    // Sentinels in every output, to show that nothing was written.
    let mut y = vec![SENTINEL; elements];
    // The per-channel vectors are sized for the layer, as a framework would.
    let channels = C_LAYER as usize;
    let (gamma, beta) = (vec![1.0; channels], vec![0.0; channels]);
    let (mut running_mean, mut running_var) = (vec![SENTINEL; channels], vec![SENTINEL; channels]);
    let (mut save_mean, mut save_invstd) = (vec![SENTINEL; channels], vec![SENTINEL; channels]);

    let result = bnorm::forward_training(
        &layer,
        &input,
        &x,
        &mut y,
        Some(Affine {
            gamma: &gamma,
            beta: &beta,
        }),
        Some(RunningStats {
            mean: &mut running_mean,
            var: &mut running_var,
        }),
        Some(SaveStats {
            mean: &mut save_mean,
            invstd: &mut save_invstd,
        }),
    );
    let err = match result {
        Ok(()) => return Err("a 64-channel input was accepted by a 128-channel layer".into()),
        Err(err) => err,
    };

    let untouched = [&y, &running_mean, &running_var, &save_mean, &save_invstd]
        .iter()
        .all(|buffer| buffer.iter().all(|&v| v == SENTINEL));
    println!("forward_training failed: {}", err);
    println!("  status:  {:?}", err.status());
    println!("  message: {}", err.message());
    println!(
        "  y, running and saved statistics untouched: {}",
        if untouched { "yes" } else { "NO" }
    );

    if err.status() != Status::FEATURE_MISMATCH {
        return Err(format!("expected FEATURE_MISMATCH, got {:?}", err.status()));
    }
    if !untouched {
        return Err("a failing call wrote to its outputs".into());
    }
    Ok(err)
}

#[allow(dead_code)] // the tests include this file as a module and call `run`
fn main() {
    if let Err(problem) = run() {
        eprintln!("feature_mismatch: FAILED: {}", problem);
        std::process::exit(1);
    }
}
