//! split_phases: one training step of a BatchNorm2d layer whose batch is
//! spread over three processes (PyTorch's SyncBatchNorm), with the split
//! phases of bnorm 1.2.
//!
//! The "processes" are threads here and the collective is a few lines over
//! shared memory (`Comm`); with MPI, `all_gather` is `MPI_Allgather` and
//! `all_reduce_sum` is `MPI_Allreduce` with `MPI_SUM`. The processes hold 1, 2
//! and 4 samples of a 7-sample batch. Their results are checked against
//! `forward_training` and `backward` on the whole batch.
//!
//!     cargo run --example split_phases

use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use bnorm::{
    Affine, BackwardInput, BatchStats, Descriptor, ParamGrads, RunningStats, SaveStats, Shape,
    SPLIT_VALUES_PER_CHANNEL,
};

const C: usize = 8;
const H: usize = 5;
const W: usize = 5;
/// Samples per process.
const SAMPLES: [usize; 3] = [1, 2, 4];

/// An in-memory stand-in for a communicator.
struct Comm {
    rank: usize,
    size: usize,
    barrier: Arc<Barrier>,
    board: Arc<Mutex<Vec<Vec<f64>>>>,
}

impl Comm {
    /// Every rank's `local`, block after block in rank order, into `gathered`.
    fn all_gather(&self, local: &[f64], gathered: &mut [f64]) {
        self.board.lock().unwrap()[self.rank] = local.to_vec();
        self.barrier.wait();
        for (rank, block) in self.board.lock().unwrap().iter().enumerate() {
            gathered[rank * local.len()..(rank + 1) * local.len()].copy_from_slice(block);
        }
        // Nobody writes the board again before everyone has read it.
        self.barrier.wait();
    }

    /// Every rank's `values`, summed in rank order.
    fn all_reduce_sum(&self, values: &mut [f64]) {
        let mut gathered = vec![0.0; self.size * values.len()];
        self.all_gather(values, &mut gathered);
        values.iter_mut().for_each(|v| *v = 0.0);
        for block in gathered.chunks(values.len()) {
            for (v, b) in values.iter_mut().zip(block) {
                *v += b;
            }
        }
    }
}

/// What one process ends the step with.
struct RankResult {
    y: Vec<f32>,
    dx: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

/// One process's training step on its samples `x` (and their gradient `dy`).
fn train_step(
    comm: &Comm,
    layer: &Descriptor,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> Result<RankResult, bnorm::Error> {
    let n_local = x.len() / (C * H * W);
    let shape = Shape::new(&[n_local as i64, C as i64, H as i64, W as i64]);
    let world_size = comm.size;
    let affine = Affine { gamma, beta };
    let mut r = RankResult {
        y: vec![0.0; x.len()],
        dx: vec![0.0; x.len()],
        mean: vec![0.0; C],
        invstd: vec![0.0; C],
        running_mean: vec![0.0; C],
        running_var: vec![1.0; C],
        dgamma: vec![0.0; C],
        dbeta: vec![0.0; C],
    };

    let block = SPLIT_VALUES_PER_CHANNEL * layer.num_features() as usize; // 3 f64 per channel

    // Forward: local (count, mean, M2) per channel -> allgather -> merge -> normalize.
    let mut local = vec![0.0f64; block];
    bnorm::local_stats(layer, &shape, x, &mut local)?;
    let mut gathered = vec![0.0f64; world_size * block];
    comm.all_gather(&local, &mut gathered); // <- collective
    bnorm::merge_stats(
        layer,
        &gathered,
        None,
        BatchStats {
            mean: Some(&mut r.mean),
            invstd: Some(&mut r.invstd),
        },
        Some(RunningStats {
            mean: &mut r.running_mean,
            var: &mut r.running_var,
        }),
    )?;
    bnorm::forward_normalize(layer, &shape, x, &mut r.y, &r.mean, &r.invstd, Some(affine))?;

    // Backward: local (count, sum(g), sum(g * (x - mean))) -> allreduce(sum) -> dx.
    let input = BackwardInput {
        x,
        y: Some(&r.y),
        gamma: Some(gamma),
        mean: &r.mean,
        invstd: &r.invstd,
    };
    let mut sums = vec![0.0f64; block];
    bnorm::backward_reduce(
        layer,
        &shape,
        input,
        dy,
        &mut sums,
        ParamGrads {
            dgamma: Some(&mut r.dgamma),
            dbeta: Some(&mut r.dbeta),
        },
    )?;
    comm.all_reduce_sum(&mut sums); // <- collective
    bnorm::backward_elementwise(layer, &shape, input, dy, Some(&sums), &mut r.dx)?;
    Ok(r)
}

/// A fixed LCG in [-1, 1): the same data on every run.
fn data(len: usize, seed: u32, offset: f32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            offset * (i / (H * W) % C) as f32 + (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = Descriptor::new(C as i64)?;
    let n: usize = SAMPLES.iter().sum();
    let per_sample = C * H * W;
    let x = Arc::new(data(n * per_sample, 7, 0.5));
    let dy = Arc::new(data(n * per_sample, 11, 0.0));
    let gamma: Arc<Vec<f32>> = Arc::new((0..C).map(|c| 0.5 + 0.25 * c as f32).collect());
    let beta: Arc<Vec<f32>> = Arc::new((0..C).map(|c| 0.1 * c as f32 - 0.3).collect());

    let barrier = Arc::new(Barrier::new(SAMPLES.len()));
    let board = Arc::new(Mutex::new(vec![Vec::new(); SAMPLES.len()]));
    let mut start = 0;
    let mut ranks = Vec::new();
    for (rank, &samples) in SAMPLES.iter().enumerate() {
        let range = start * per_sample..(start + samples) * per_sample;
        start += samples;
        let comm = Comm {
            rank,
            size: SAMPLES.len(),
            barrier: Arc::clone(&barrier),
            board: Arc::clone(&board),
        };
        let (x, dy, gamma, beta) = (x.clone(), dy.clone(), gamma.clone(), beta.clone());
        ranks.push(thread::spawn(move || {
            train_step(&comm, &layer, &x[range.clone()], &dy[range], &gamma, &beta)
        }));
    }
    let results: Vec<RankResult> = ranks
        .into_iter()
        .map(|t| t.join().expect("rank panicked"))
        .collect::<Result<_, _>>()?;

    // The whole batch in one process, for comparison.
    let shape = Shape::new(&[n as i64, C as i64, H as i64, W as i64]);
    let mut y = vec![0.0; x.len()];
    let (mut running_mean, mut running_var) = (vec![0.0; C], vec![1.0; C]);
    let (mut mean, mut invstd) = (vec![0.0; C], vec![0.0; C]);
    bnorm::forward_training(
        &layer,
        &shape,
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
            mean: &mut mean,
            invstd: &mut invstd,
        }),
    )?;
    let mut dx = vec![0.0; x.len()];
    let (mut dgamma, mut dbeta) = (vec![0.0; C], vec![0.0; C]);
    let input = BackwardInput {
        x: &x,
        y: None,
        gamma: Some(&gamma),
        mean: &mean,
        invstd: &invstd,
    };
    bnorm::backward(
        &layer,
        &shape,
        input,
        &dy,
        Some(&mut dx),
        ParamGrads {
            dgamma: Some(&mut dgamma),
            dbeta: Some(&mut dbeta),
        },
    )?;

    let first = &results[0];
    let same_bits = results.iter().all(|r| {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        bits(&r.mean) == bits(&first.mean)
            && bits(&r.invstd) == bits(&first.invstd)
            && bits(&r.running_mean) == bits(&first.running_mean)
            && bits(&r.running_var) == bits(&first.running_var)
    });
    let y_split: Vec<f32> = results.iter().flat_map(|r| r.y.iter().copied()).collect();
    let dx_split: Vec<f32> = results.iter().flat_map(|r| r.dx.iter().copied()).collect();
    // Data-parallel training all-reduces the parameter gradients.
    let sum = |f: fn(&RankResult) -> &Vec<f32>| -> Vec<f32> {
        (0..C)
            .map(|c| results.iter().map(|r| f(r)[c]).sum())
            .collect()
    };
    let (dgamma_split, dbeta_split) = (sum(|r| &r.dgamma), sum(|r| &r.dbeta));

    println!(
        "{} processes holding {:?} samples of a {:?} batch",
        SAMPLES.len(),
        SAMPLES,
        shape.dims()
    );
    println!("  statistics bit-identical on every process: {}", same_bits);
    let rows = [
        ("mean", max_diff(&first.mean, &mean)),
        ("invstd", max_diff(&first.invstd, &invstd)),
        ("running mean", max_diff(&first.running_mean, &running_mean)),
        ("running var", max_diff(&first.running_var, &running_var)),
        ("y", max_diff(&y_split, &y)),
        ("dx", max_diff(&dx_split, &dx)),
        ("dgamma", max_diff(&dgamma_split, &dgamma)),
        ("dbeta", max_diff(&dbeta_split, &dbeta)),
    ];
    let mut ok = same_bits;
    for (name, diff) in rows {
        println!("  max |split - whole batch| of {:<12} {:.2e}", name, diff);
        ok &= diff <= 1e-4;
    }
    if !ok {
        return Err("the split phases disagree with the whole batch".into());
    }
    println!("  agree with forward_training and backward: yes");
    Ok(())
}
