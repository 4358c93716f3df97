//! runtime_channels: build the descriptor from the tensor, not from a constant.
//!
//! A layer's channel count is often only known at run time (a model loaded
//! from a file, a shape from another library). Taking num_features from the
//! tensor's own channel dimension keeps the descriptor and the data in
//! agreement by construction.
//!
//!     cargo run --example runtime_channels                  a few shapes
//!     cargo run --example runtime_channels nchw 8 3 17 17   one shape, dims in memory order
//!     cargo run --example runtime_channels nhwc 4 9 9 16

use bnorm::{Affine, Descriptor, Layout, RunningStats, Shape};

/// Keeps a typo on the command line from asking for gigabytes.
const MAX_ELEMENTS: i64 = 1 << 27;

/// The shapes run without arguments: ranks 2 to 5, both layouts.
pub fn default_cases() -> Vec<(Layout, Shape)> {
    vec![
        (Layout::Nchw, Shape::new(&[8, 3, 17, 17])), // BatchNorm2d
        (Layout::Nhwc, Shape::new(&[8, 17, 17, 3])), // the same, channels last
        (Layout::Nchw, Shape::new(&[16, 10])),       // BatchNorm1d on features
        (Layout::Nchw, Shape::new(&[4, 6, 50])),     // BatchNorm1d on sequences
        (Layout::Nhwc, Shape::new(&[2, 3, 4, 5, 7])), // BatchNorm3d, channels last
        (Layout::Nchw, Shape::new(&[1, 5, 1, 1])),   // one value per channel
    ]
}

/// Mean and biased variance of every channel, through the `[outer][C][inner]`
/// view both layouts share.
fn channel_stats(t: &[f32], channels: usize, inner: usize) -> Vec<(f64, f64)> {
    (0..channels)
        .map(|c| {
            let values: Vec<f64> = t
                .iter()
                .enumerate()
                .filter(|(i, _)| i / inner % channels == c)
                .map(|(_, &v)| v as f64)
                .collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
            (mean, var)
        })
        .collect()
}

/// Training then inference on one shape; `Err` says what failed.
pub fn run_case(layout: Layout, shape: &Shape) -> Result<(), String> {
    let axis = layout.channel_axis(shape.rank());
    let channels = shape.channels(layout).ok_or("rank must be 2 to 5")?;
    println!(
        "{:?} {:?}: num_features = dims[{}] = {}",
        layout,
        shape.dims(),
        axis,
        channels
    );
    // The descriptor follows the data.
    let layer = Descriptor::new(channels)
        .map_err(|e| e.to_string())?
        .with_layout(layout);
    let elements = shape.element_count().ok_or("invalid shape")?;
    let c = channels as usize;
    let inner: usize = shape.dims()[axis + 1..]
        .iter()
        .map(|&d| d as usize)
        .product();

    let mut state = 2024u32;
    let x: Vec<f32> = (0..elements)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            3.0 + 2.0 * ((state >> 8) as f32 / 16_777_216.0 - 0.5)
        })
        .collect();
    let mut y = vec![0.0f32; elements];
    let (gamma, beta) = (vec![1.0f32; c], vec![0.0f32; c]);
    let affine = Affine {
        gamma: &gamma,
        beta: &beta,
    };
    let (mut running_mean, mut running_var) = (vec![0.0f32; c], vec![1.0f32; c]);
    let eps = layer.eps() as f64;

    if elements / c < 2 {
        // Batch statistics need two values per channel (the library would
        // answer TOO_FEW_VALUES), so go straight to inference.
        println!("  training:  skipped, one value per channel");
    } else {
        let running = RunningStats {
            mean: &mut running_mean,
            var: &mut running_var,
        };
        bnorm::forward_training(&layer, shape, &x, &mut y, Some(affine), Some(running), None)
            .map_err(|e| format!("training: {}", e))?;
        // y has mean 0 and variance var / (var + eps) in every channel.
        let (mut worst_mean, mut worst_var) = (0.0f64, 0.0f64);
        let x_stats = channel_stats(&x, c, inner);
        for (&(_, x_var), &(y_mean, y_var)) in x_stats.iter().zip(&channel_stats(&y, c, inner)) {
            worst_mean = worst_mean.max(y_mean.abs());
            worst_var = worst_var.max((y_var - x_var / (x_var + eps)).abs());
        }
        let ok = worst_mean <= 1e-3 && worst_var <= 1e-3;
        println!(
            "  training:  max |mean(y)| {:.2e}, max |var(y) - expected| {:.2e}  {}",
            worst_mean,
            worst_var,
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            return Err("training results off".into());
        }
    }

    bnorm::forward_inference(
        &layer,
        shape,
        &x,
        &mut y,
        &running_mean,
        &running_var,
        Some(affine),
    )
    .map_err(|e| format!("inference: {}", e))?;
    let (mut worst, mut largest) = (0.0f64, 0.0f64);
    for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
        let ch = i / inner % c;
        let expected =
            (xi as f64 - running_mean[ch] as f64) / (running_var[ch] as f64 + eps).sqrt();
        worst = worst.max((yi as f64 - expected).abs());
        largest = largest.max(expected.abs());
    }
    let ok = worst <= 1e-4 * largest.max(1.0);
    println!(
        "  inference: max |y - reference| {:.2e}  {}",
        worst,
        if ok { "ok" } else { "FAILED" }
    );
    if ok {
        Ok(())
    } else {
        Err("inference results off".into())
    }
}

/// Reads `nchw|nhwc D0 D1 [D2 [D3 [D4]]]`.
fn parse(args: &[String]) -> Option<(Layout, Shape)> {
    let layout = match args.first()?.as_str() {
        "nchw" => Layout::Nchw,
        "nhwc" => Layout::Nhwc,
        _ => return None,
    };
    let dims: Vec<i64> = args[1..]
        .iter()
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    let shape = Shape::new(&dims);
    match shape.element_count() {
        Some(count) if count as i64 <= MAX_ELEMENTS => Some((layout, shape)),
        _ => None,
    }
}

#[allow(dead_code)] // the tests include this file as a module
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases = if args.is_empty() {
        default_cases()
    } else {
        match parse(&args) {
            Some(case) => vec![case],
            None => {
                eprintln!("usage: runtime_channels [nchw|nhwc D0 D1 [D2 [D3 [D4]]]]");
                std::process::exit(2);
            }
        }
    };
    let mut failed = false;
    for (layout, shape) in &cases {
        if let Err(problem) = run_case(*layout, shape) {
            println!("  {}", problem);
            failed = true;
        }
    }
    println!(
        "runtime_channels: {}",
        if failed { "FAILED" } else { "all shapes ok" }
    );
    std::process::exit(if failed { 1 } else { 0 });
}
