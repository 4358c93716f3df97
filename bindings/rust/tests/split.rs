//! Split phases (bnorm 1.2): a batch cut into unequal parts, one of them a
//! single sample, run through `local_stats`, `merge_stats`,
//! `forward_normalize`, `backward_reduce` and `backward_elementwise` as the
//! processes of a data-parallel job would (the "collective" is a
//! concatenation here), compared with the whole batch's `forward_training`
//! and `backward` and with the float64 reference; the merges' bit-identity;
//! and every error the safe API can reach, with nothing written on failure.

mod common;

use std::os::raw::c_void;

use bnorm::{
    sys, Affine, BackwardInput, BatchStats, Descriptor, Error, Flags, Layout, ParamGrads,
    RunningStats, Shape, Status, SPLIT_VALUES_PER_CHANNEL,
};
use common::{
    assert_close, raw_desc, raw_last_error, to_f64, ReferenceParams, Rng, Training, View,
};

/// The contract's bound for float32 outputs, relative to their largest magnitude.
const TOLERANCE: f64 = 5e-5;

/// Asserts |actual - expected| <= tolerance * max(1, max |expected|) for f64
/// results, as `assert_close` does for f32 ones.
#[track_caller]
fn assert_close_f64(what: &str, actual: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{}: length", what);
    let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * scale,
            "{}[{}]: got {}, expected {} (scale {})",
            what,
            i,
            a,
            e,
            scale
        );
    }
}

/// Value `j` (0 count, 1 mean or sum(g), 2 M2 or sum(g * (x - mean))) of
/// every channel of a block.
fn column(block: &[f64], j: usize) -> Vec<f64> {
    block
        .chunks(SPLIT_VALUES_PER_CHANNEL)
        .map(|v| v[j])
        .collect()
}

/// Compares two blocks value by value: counts exactly, the rest each
/// relative to its own kind's largest magnitude.
#[track_caller]
fn assert_block(what: &str, actual: &[f64], expected: &[f64], tolerances: [f64; 2]) {
    assert_eq!(column(actual, 0), column(expected, 0), "counts of {}", what);
    assert_close_f64(
        &format!("values 1 of {}", what),
        &column(actual, 1),
        &column(expected, 1),
        tolerances[0],
    );
    assert_close_f64(
        &format!("values 2 of {}", what),
        &column(actual, 2),
        &column(expected, 2),
        tolerances[1],
    );
}

/// Bits, so that NaN compares equal to itself and -0 differs from 0.
fn bits32(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn bits64(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Per channel (count, mean, M2) of `x` in float64, straight from the
/// definition: what a stats block holds.
fn reference_moments(view: &View, x: &[f32]) -> Vec<f64> {
    let n = view.count() as f64;
    let mut block = Vec::with_capacity(SPLIT_VALUES_PER_CHANNEL * view.channels);
    for c in 0..view.channels {
        let mean = view.indices(c).map(|i| x[i] as f64).sum::<f64>() / n;
        let m2 = view
            .indices(c)
            .map(|i| (x[i] as f64 - mean).powi(2))
            .sum::<f64>();
        block.extend_from_slice(&[n, mean, m2]);
    }
    block
}

/// One process's samples: its shape and its elements' range in the batch.
struct Part {
    shape: Shape,
    start: usize,
    end: usize,
}

/// Cuts a batch into parts of `samples` samples each, in order. Samples
/// are contiguous in both layouts (N is the outermost dimension).
fn split_batch(shape: &Shape, samples: &[i64]) -> Vec<Part> {
    let dims = shape.dims().to_vec();
    assert_eq!(samples.iter().sum::<i64>(), dims[0]);
    let per_sample = shape.element_count().unwrap() / dims[0] as usize;
    let mut start = 0;
    samples
        .iter()
        .map(|&n| {
            let mut part_dims = dims.clone();
            part_dims[0] = n;
            let end = start + n as usize * per_sample;
            let part = Part {
                shape: Shape::new(&part_dims),
                start,
                end,
            };
            start = end;
            part
        })
        .collect()
}

/// One layer, one batch, its gradient and its split into processes.
struct Case {
    desc: Descriptor,
    shape: Shape,
    view: View,
    x: Vec<f32>,
    dy: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running: (Vec<f32>, Vec<f32>),
    parts: Vec<Part>,
}

/// The forward phases' results, every process's put together.
struct SplitForward {
    /// Every process's stats block, gathered in process order.
    gathered: Vec<f64>,
    merged: Vec<f64>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    y: Vec<f32>,
}

/// The backward phases' results, every process's put together.
struct SplitBackward {
    /// Every process's grad sums block, gathered in process order.
    gathered: Vec<f64>,
    /// Each process's dgamma and dbeta, summed (as data-parallel training
    /// sums parameter gradients).
    dgamma: Vec<f64>,
    dbeta: Vec<f64>,
    /// dx from the gathered blocks.
    dx: Vec<f32>,
}

impl Case {
    /// A random batch of at least 6 samples in `layout` and `rank`, split
    /// into unequal parts, one a single sample, by `pattern`.
    fn random(
        rng: &mut Rng,
        layout: Layout,
        rank: usize,
        channels: i64,
        flags: Flags,
        pattern: usize,
    ) -> Case {
        let desc = Descriptor::new(channels)
            .unwrap()
            .with_layout(layout)
            .with_flags(flags)
            .with_eps(rng.pick(&[1e-5, 1e-3, 0.5]))
            .with_momentum(rng.pick(&[0.1, 0.0, 1.0, 0.37]))
            .with_num_threads(rng.pick(&[0, 1, 2]));
        let mut dims = common::random_shape(rng, layout, rank, channels, 1)
            .dims()
            .to_vec();
        let n = rng.range(6, 9);
        dims[0] = n;
        let shape = Shape::new(&dims);
        let view = View::new(&shape, layout);
        let x = common::random_input(rng, &view);
        let dy = rng.vec(x.len(), -1.0, 1.0);
        let c = channels as usize;
        let samples = match pattern % 3 {
            0 => vec![1, n - 1],
            1 => vec![2, 1, n - 3],
            _ => vec![n - 3, 2, 1],
        };
        Case {
            desc,
            parts: split_batch(&shape, &samples),
            shape,
            view,
            x,
            dy,
            gamma: rng.vec(c, -2.0, 2.0),
            beta: rng.vec(c, -1.0, 1.0),
            running: (rng.vec(c, -1.0, 1.0), rng.vec(c, 0.5, 2.0)),
        }
    }

    fn affine(&self) -> Option<Affine<'_>> {
        common::affine_of(&self.desc, &self.gamma, &self.beta)
    }

    fn flag(&self, flag: Flags) -> bool {
        self.desc.flags().contains(flag)
    }

    fn channels(&self) -> usize {
        self.view.channels
    }

    fn describe(&self) -> String {
        let samples: Vec<i64> = self.parts.iter().map(|p| p.shape.dims()[0]).collect();
        format!("{:?} {:?} split {:?}", self.desc, self.shape, samples)
    }

    /// Every process's `local_stats`, gathered in process order.
    fn gathered_stats(&self) -> Vec<f64> {
        let mut gathered = Vec::new();
        for part in &self.parts {
            let mut block = vec![f64::NAN; SPLIT_VALUES_PER_CHANNEL * self.channels()];
            bnorm::local_stats(
                &self.desc,
                &part.shape,
                &self.x[part.start..part.end],
                &mut block,
            )
            .unwrap();
            gathered.extend_from_slice(&block);
        }
        gathered
    }

    fn split_forward(&self) -> SplitForward {
        let c = self.channels();
        let gathered = self.gathered_stats();
        let mut out = SplitForward {
            merged: vec![f64::NAN; SPLIT_VALUES_PER_CHANNEL * c],
            mean: vec![f32::NAN; c],
            invstd: vec![f32::NAN; c],
            running_mean: self.running.0.clone(),
            running_var: self.running.1.clone(),
            y: vec![f32::NAN; self.x.len()],
            gathered,
        };
        bnorm::merge_stats(
            &self.desc,
            &out.gathered,
            Some(&mut out.merged),
            BatchStats {
                mean: Some(&mut out.mean),
                invstd: Some(&mut out.invstd),
            },
            Some(RunningStats {
                mean: &mut out.running_mean,
                var: &mut out.running_var,
            }),
        )
        .unwrap();
        for part in &self.parts {
            bnorm::forward_normalize(
                &self.desc,
                &part.shape,
                &self.x[part.start..part.end],
                &mut out.y[part.start..part.end],
                &out.mean,
                &out.invstd,
                self.affine(),
            )
            .unwrap();
        }
        out
    }

    /// What a process passes to the backward phases: its part of x and of
    /// the forward output, and the whole batch's statistics.
    fn backward_input<'a>(&'a self, part: &Part, fwd: &'a SplitForward) -> BackwardInput<'a> {
        BackwardInput {
            x: &self.x[part.start..part.end],
            y: if self.flag(Flags::FUSE_RELU) {
                Some(&fwd.y[part.start..part.end])
            } else {
                None
            },
            gamma: self.affine().map(|a| a.gamma),
            mean: &fwd.mean,
            invstd: &fwd.invstd,
        }
    }

    fn split_backward(&self, fwd: &SplitForward) -> SplitBackward {
        let c = self.channels();
        let mut out = SplitBackward {
            gathered: Vec::new(),
            dgamma: vec![0.0; c],
            dbeta: vec![0.0; c],
            dx: vec![f32::NAN; self.x.len()],
        };
        for part in &self.parts {
            let mut block = vec![f64::NAN; SPLIT_VALUES_PER_CHANNEL * c];
            let (mut dgamma, mut dbeta) = (vec![f32::NAN; c], vec![f32::NAN; c]);
            bnorm::backward_reduce(
                &self.desc,
                &part.shape,
                self.backward_input(part, fwd),
                &self.dy[part.start..part.end],
                &mut block,
                ParamGrads {
                    dgamma: Some(&mut dgamma),
                    dbeta: Some(&mut dbeta),
                },
            )
            .unwrap();
            out.gathered.extend_from_slice(&block);
            for k in 0..c {
                out.dgamma[k] += dgamma[k] as f64;
                out.dbeta[k] += dbeta[k] as f64;
            }
        }
        for part in &self.parts {
            bnorm::backward_elementwise(
                &self.desc,
                &part.shape,
                self.backward_input(part, fwd),
                &self.dy[part.start..part.end],
                Some(&out.gathered),
                &mut out.dx[part.start..part.end],
            )
            .unwrap();
        }
        out
    }
}

/// What an allreduce(sum) makes of the gathered grad sums: one block, summed
/// in block order.
fn allreduce(gathered: &[f64], block_len: usize) -> Vec<f64> {
    let mut sum = vec![0.0; block_len];
    for block in gathered.chunks(block_len) {
        for (s, v) in sum.iter_mut().zip(block) {
            *s += v;
        }
    }
    sum
}

fn flag_sets() -> [Flags; 4] {
    [
        Flags::AFFINE | Flags::TRACK_RUNNING_STATS,
        Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU,
        Flags::empty(),
        Flags::FUSE_RELU | Flags::TRACK_RUNNING_STATS,
    ]
}

/// Odd channel counts, from one to past a few SIMD vectors.
const CHANNELS: [i64; 4] = [1, 3, 17, 67];

#[test]
fn split_phases_match_the_whole_batch_and_the_reference() {
    let mut rng = Rng::new(21);
    let mut index = 0;
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for rank in 2..=5 {
            for &channels in CHANNELS.iter() {
                for flags in flag_sets() {
                    let case = Case::random(&mut rng, layout, rank, channels, flags, index);
                    index += 1;
                    check_case(&case);
                }
            }
        }
    }
}

fn check_case(case: &Case) {
    let what = case.describe();
    let c = case.channels();
    let block_len = SPLIT_VALUES_PER_CHANNEL * c;
    let relu = case.flag(Flags::FUSE_RELU);
    let params = ReferenceParams::of(&case.desc, case.affine());
    let expected = common::training(&case.view, &case.x, &params);

    // ---- forward, split
    let fwd = case.split_forward();
    assert_eq!(fwd.gathered.len(), case.parts.len() * block_len, "{}", what);
    // Each process's block is its part's (count, mean, M2).
    for (part, block) in case.parts.iter().zip(fwd.gathered.chunks(block_len)) {
        let view = View::new(&part.shape, case.desc.layout());
        let x = &case.x[part.start..part.end];
        let want = reference_moments(&view, x);
        assert_block(
            &format!("stats block of {}", what),
            block,
            &want,
            [1e-6, 1e-5],
        );
    }
    // The merged block is the whole batch's.
    let whole_moments = reference_moments(&case.view, &case.x);
    assert_block(
        &format!("merged stats of {}", what),
        &fwd.merged,
        &whole_moments,
        [1e-6, 1e-5],
    );
    assert_close(
        &format!("mean of {}", what),
        &fwd.mean,
        &expected.mean,
        1e-5,
    );
    assert_close(
        &format!("invstd of {}", what),
        &fwd.invstd,
        &expected.invstd,
        1e-5,
    );
    assert_close(&format!("y of {}", what), &fwd.y, &expected.y, TOLERANCE);
    if relu {
        assert!(fwd.y.iter().all(|&v| v >= 0.0), "ReLU of {}", what);
    }

    // ---- forward, whole batch: the same statistics and output.
    let whole = Training::run(
        &case.desc,
        &case.shape,
        &case.x,
        case.affine(),
        case.running.clone(),
        f32::NAN,
    )
    .unwrap();
    assert_close(
        &format!("mean against forward_training, {}", what),
        &fwd.mean,
        &to_f64(&whole.save_mean),
        1e-6,
    );
    assert_close(
        &format!("invstd against forward_training, {}", what),
        &fwd.invstd,
        &to_f64(&whole.save_invstd),
        1e-6,
    );
    assert_close(
        &format!("y against forward_training, {}", what),
        &fwd.y,
        &to_f64(&whole.y),
        TOLERANCE,
    );
    if case.flag(Flags::TRACK_RUNNING_STATS) {
        assert_close(
            &format!("running mean of {}", what),
            &fwd.running_mean,
            &to_f64(&whole.running_mean),
            1e-6,
        );
        assert_close(
            &format!("running var of {}", what),
            &fwd.running_var,
            &to_f64(&whole.running_var),
            1e-6,
        );
    } else {
        // Not the library's to touch.
        assert_eq!(fwd.running_mean, case.running.0, "{}", what);
        assert_eq!(fwd.running_var, case.running.1, "{}", what);
    }

    // ---- forward in place: the same bits.
    for part in &case.parts {
        let mut xy = case.x[part.start..part.end].to_vec();
        bnorm::forward_normalize_in_place(
            &case.desc,
            &part.shape,
            &mut xy,
            &fwd.mean,
            &fwd.invstd,
            case.affine(),
        )
        .unwrap();
        assert_eq!(
            bits32(&xy),
            bits32(&fwd.y[part.start..part.end]),
            "in place, {}",
            what
        );
    }

    // ---- backward, split
    let bwd = case.split_backward(&fwd);
    for (part, block) in case.parts.iter().zip(bwd.gathered.chunks(block_len)) {
        let count = (part.end - part.start) / c;
        for k in 0..c {
            assert_eq!(block[3 * k], count as f64, "grad sums count, {}", what);
        }
    }
    let relu_y = if relu { Some(&fwd.y[..]) } else { None };
    let gamma = case.affine().map(|a| a.gamma);
    let reference = common::backward(
        &case.view,
        &case.x,
        &case.dy,
        relu_y,
        gamma,
        &fwd.mean,
        &fwd.invstd,
        false,
    );
    assert_close(
        &format!("dx of {}", what),
        &bwd.dx,
        &reference.dx,
        TOLERANCE,
    );
    assert_close_f64(
        &format!("summed dgamma of {}", what),
        &bwd.dgamma,
        &reference.dgamma,
        TOLERANCE,
    );
    assert_close_f64(
        &format!("summed dbeta of {}", what),
        &bwd.dbeta,
        &reference.dbeta,
        TOLERANCE,
    );
    // The summed grad sums are sum(g) and sum(g * (x - mean)) of the batch.
    let summed = allreduce(&bwd.gathered, block_len);
    let mut want_sums = Vec::with_capacity(block_len);
    for k in 0..c {
        let invstd = fwd.invstd[k] as f64;
        want_sums.extend_from_slice(&[
            case.view.count() as f64,
            reference.dbeta[k],
            reference.dgamma[k] / invstd,
        ]);
    }
    assert_block(
        &format!("summed grad sums of {}", what),
        &summed,
        &want_sums,
        [TOLERANCE, TOLERANCE],
    );

    // ---- backward, whole batch
    let mut dx = vec![f32::NAN; case.x.len()];
    let (mut dgamma, mut dbeta) = (vec![f32::NAN; c], vec![f32::NAN; c]);
    bnorm::backward(
        &case.desc,
        &case.shape,
        BackwardInput {
            x: &case.x,
            y: if relu { Some(&whole.y) } else { None },
            gamma,
            mean: &whole.save_mean,
            invstd: &whole.save_invstd,
        },
        &case.dy,
        Some(&mut dx),
        ParamGrads {
            dgamma: Some(&mut dgamma),
            dbeta: Some(&mut dbeta),
        },
    )
    .unwrap();
    assert_close(
        &format!("dx against backward, {}", what),
        &bwd.dx,
        &to_f64(&dx),
        TOLERANCE,
    );
    assert_close_f64(
        &format!("dgamma against backward, {}", what),
        &bwd.dgamma,
        &to_f64(&dgamma),
        TOLERANCE,
    );
    assert_close_f64(
        &format!("dbeta against backward, {}", what),
        &bwd.dbeta,
        &to_f64(&dbeta),
        TOLERANCE,
    );

    // ---- the allreduced block gives the gathered blocks' bits, in place too.
    for part in &case.parts {
        let input = case.backward_input(part, &fwd);
        let dy = &case.dy[part.start..part.end];
        let mut from_sum = vec![f32::NAN; dy.len()];
        bnorm::backward_elementwise(
            &case.desc,
            &part.shape,
            input,
            dy,
            Some(&summed),
            &mut from_sum,
        )
        .unwrap();
        let want = bits32(&bwd.dx[part.start..part.end]);
        assert_eq!(bits32(&from_sum), want, "allreduced sums, {}", what);
        let mut dy_dx = dy.to_vec();
        bnorm::backward_elementwise_in_place(
            &case.desc,
            &part.shape,
            input,
            &mut dy_dx,
            Some(&bwd.gathered),
        )
        .unwrap();
        assert_eq!(bits32(&dy_dx), want, "in place, {}", what);
    }
}

#[test]
fn a_single_sample_of_rank_2_is_one_value_per_channel_and_takes_part() {
    // A process with one sample of a BatchNorm1d layer: (1, C).
    let desc = Descriptor::new(3).unwrap().with_flags(Flags::empty());
    let x = [0.75f32, -2.5, 1e-3];
    let mut block = [f64::NAN; 9];
    bnorm::local_stats(&desc, &Shape::new(&[1, 3]), &x, &mut block).unwrap();
    assert_eq!(
        block,
        [1.0, 0.75, 0.0, 1.0, -2.5, 0.0, 1.0, 1e-3f32 as f64, 0.0]
    );
    // Its grad sums, with any statistics, count one value per channel.
    let (mean, invstd) = ([0.0; 3], [1.0; 3]);
    let dy = [1.0f32, 2.0, -4.0];
    let input = BackwardInput {
        x: &x,
        y: None,
        gamma: None,
        mean: &mean,
        invstd: &invstd,
    };
    let mut sums = [f64::NAN; 9];
    bnorm::backward_reduce(
        &desc,
        &Shape::new(&[1, 3]),
        input,
        &dy,
        &mut sums,
        ParamGrads::default(),
    )
    .unwrap();
    assert_eq!(
        sums,
        [
            1.0,
            1.0,
            0.75,
            1.0,
            2.0,
            -5.0,
            1.0,
            -4.0,
            -4.0 * (1e-3f32 as f64)
        ]
    );
}

#[test]
fn merges_of_the_same_blocks_are_bit_identical() {
    let mut rng = Rng::new(22);
    let mut index = 0;
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for &channels in CHANNELS.iter() {
            let flags = Flags::AFFINE | Flags::TRACK_RUNNING_STATS;
            let case = Case::random(&mut rng, layout, 4, channels, flags, index);
            index += 1;
            let what = case.describe();
            let c = case.channels();
            let block_len = SPLIT_VALUES_PER_CHANNEL * c;

            // Every process merges the same gathered blocks, each with its
            // own thread count: the same bits everywhere.
            let merge = |desc: &Descriptor, gathered: &[f64]| {
                let mut merged = vec![f64::NAN; block_len];
                let (mut mean, mut invstd) = (vec![f32::NAN; c], vec![f32::NAN; c]);
                let (mut rm, mut rv) = case.running.clone();
                bnorm::merge_stats(
                    desc,
                    gathered,
                    Some(&mut merged),
                    BatchStats {
                        mean: Some(&mut mean),
                        invstd: Some(&mut invstd),
                    },
                    Some(RunningStats {
                        mean: &mut rm,
                        var: &mut rv,
                    }),
                )
                .unwrap();
                (
                    bits64(&merged),
                    bits32(&mean),
                    bits32(&invstd),
                    bits32(&rm),
                    bits32(&rv),
                )
            };
            let gathered = case.gathered_stats();
            let first = merge(&case.desc, &gathered);
            for threads in [0, 1, 2, 3, 7] {
                let desc = case.desc.with_num_threads(threads);
                // local_stats, too, is the same for every thread count.
                assert_eq!(
                    bits64(
                        &Case {
                            desc,
                            ..clone_case(&case)
                        }
                        .gathered_stats()
                    ),
                    bits64(&gathered),
                    "local stats with {} threads, {}",
                    threads,
                    what
                );
                assert_eq!(
                    merge(&desc, &gathered),
                    first,
                    "{} threads, {}",
                    threads,
                    what
                );
            }

            // In place: the merged block lands over the first block, the
            // other blocks stay, and every output has the same bits.
            let mut in_place = gathered.clone();
            let (mut mean, mut invstd) = (vec![f32::NAN; c], vec![f32::NAN; c]);
            let (mut rm, mut rv) = case.running.clone();
            bnorm::merge_stats_in_place(
                &case.desc,
                &mut in_place,
                BatchStats {
                    mean: Some(&mut mean),
                    invstd: Some(&mut invstd),
                },
                Some(RunningStats {
                    mean: &mut rm,
                    var: &mut rv,
                }),
            )
            .unwrap();
            assert_eq!(bits64(&in_place[..block_len]), first.0, "{}", what);
            assert_eq!(
                bits64(&in_place[block_len..]),
                bits64(&gathered[block_len..]),
                "{}",
                what
            );
            assert_eq!(
                (bits32(&mean), bits32(&invstd), bits32(&rm), bits32(&rv)),
                (
                    first.1.clone(),
                    first.2.clone(),
                    first.3.clone(),
                    first.4.clone()
                ),
                "in place, {}",
                what
            );

            // Hierarchical, grouped from the left: merging the first blocks,
            // then that merged block with the rest, is the same fold.
            let k = case.parts.len();
            for split_at in 1..k {
                let mut head = vec![f64::NAN; block_len];
                // An inner node of the merge tree: no running statistics.
                bnorm::merge_stats(
                    &case.desc.with_flags(Flags::AFFINE),
                    &gathered[..split_at * block_len],
                    Some(&mut head),
                    BatchStats::default(),
                    None,
                )
                // One block may hold one value per channel: too few alone.
                .or_else(|err| {
                    assert_eq!(err.status(), Status::TOO_FEW_VALUES, "{}", err);
                    head.copy_from_slice(&gathered[..block_len]);
                    Ok::<(), Error>(())
                })
                .unwrap();
                let mut two_level = head.clone();
                two_level.extend_from_slice(&gathered[split_at * block_len..]);
                assert_eq!(
                    merge(&case.desc, &two_level),
                    first,
                    "merged after {} blocks, {}",
                    split_at,
                    what
                );
            }

            // A block of count 0 (a process without samples) is skipped,
            // whatever its mean.
            let mut empty = vec![0.0; block_len];
            for v in empty.chunks_mut(3) {
                v[1] = 1e30;
            }
            for at in 0..=k {
                let mut with_empty = gathered[..at * block_len].to_vec();
                with_empty.extend_from_slice(&empty);
                with_empty.extend_from_slice(&gathered[at * block_len..]);
                assert_eq!(
                    merge(&case.desc, &with_empty),
                    first,
                    "empty block at {}, {}",
                    at,
                    what
                );
            }
        }
    }
}

#[test]
fn every_phase_gives_the_same_bits_for_every_thread_count() {
    // Large enough (about 600 KB) that the library splits the work over
    // threads (it gives each at least 64 KiB).
    let mut rng = Rng::new(27);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let dims = match layout {
            Layout::Nchw => [16, 17, 24, 24],
            Layout::Nhwc => [16, 24, 24, 17],
        };
        let shape = Shape::new(&dims);
        let view = View::new(&shape, layout);
        let x = common::random_input(&mut rng, &view);
        let dy = rng.vec(x.len(), -1.0, 1.0);
        let gamma = rng.vec(17, -2.0, 2.0);
        let beta = rng.vec(17, -1.0, 1.0);
        let run = |threads: i32| {
            let desc = Descriptor::new(17)
                .unwrap()
                .with_layout(layout)
                .with_flags(Flags::AFFINE | Flags::FUSE_RELU)
                .with_num_threads(threads);
            let mut stats = vec![f64::NAN; 51];
            bnorm::local_stats(&desc, &shape, &x, &mut stats).unwrap();
            let (mut mean, mut invstd) = (vec![f32::NAN; 17], vec![f32::NAN; 17]);
            // Another process's block, so that this one is a part.
            let mut gathered = stats.clone();
            gathered.extend_from_slice(&stats);
            bnorm::merge_stats(
                &desc,
                &gathered,
                None,
                BatchStats {
                    mean: Some(&mut mean),
                    invstd: Some(&mut invstd),
                },
                None,
            )
            .unwrap();
            let affine = Affine {
                gamma: &gamma,
                beta: &beta,
            };
            let mut y = vec![f32::NAN; x.len()];
            bnorm::forward_normalize(&desc, &shape, &x, &mut y, &mean, &invstd, Some(affine))
                .unwrap();
            let input = BackwardInput {
                x: &x,
                y: Some(&y),
                gamma: Some(&gamma),
                mean: &mean,
                invstd: &invstd,
            };
            let mut sums = vec![f64::NAN; 51];
            let (mut dgamma, mut dbeta) = (vec![f32::NAN; 17], vec![f32::NAN; 17]);
            bnorm::backward_reduce(
                &desc,
                &shape,
                input,
                &dy,
                &mut sums,
                ParamGrads {
                    dgamma: Some(&mut dgamma),
                    dbeta: Some(&mut dbeta),
                },
            )
            .unwrap();
            let summed = allreduce(&[&sums[..], &sums[..]].concat(), 51);
            let mut dx = vec![f32::NAN; x.len()];
            bnorm::backward_elementwise(&desc, &shape, input, &dy, Some(&summed), &mut dx).unwrap();
            (
                bits64(&stats),
                bits32(&mean),
                bits32(&invstd),
                bits32(&y),
                bits64(&sums),
                bits32(&dgamma),
                bits32(&dbeta),
                bits32(&dx),
            )
        };
        let one = run(1);
        for threads in [0, 2, 3, 4, 8] {
            assert!(run(threads) == one, "{:?} with {} threads", layout, threads);
        }
    }
}

/// A copy of `case` (its fields are not all Clone).
fn clone_case(case: &Case) -> Case {
    Case {
        desc: case.desc,
        shape: case.shape,
        view: case.view,
        x: case.x.clone(),
        dy: case.dy.clone(),
        gamma: case.gamma.clone(),
        beta: case.beta.clone(),
        running: case.running.clone(),
        parts: case
            .parts
            .iter()
            .map(|p| Part {
                shape: p.shape,
                start: p.start,
                end: p.end,
            })
            .collect(),
    }
}

#[test]
fn merge_outputs_are_optional_and_the_running_stats_follow_the_flag() {
    let mut rng = Rng::new(23);
    let case = Case::random(
        &mut rng,
        Layout::Nchw,
        3,
        5,
        Flags::AFFINE | Flags::TRACK_RUNNING_STATS,
        1,
    );
    let gathered = case.gathered_stats();
    let fwd = case.split_forward();
    // mean alone, invstd alone: the same values as both together.
    let mut mean = vec![f32::NAN; 5];
    bnorm::merge_stats(
        &case.desc,
        &gathered,
        None,
        BatchStats {
            mean: Some(&mut mean),
            invstd: None,
        },
        Some(RunningStats {
            mean: &mut case.running.0.clone(),
            var: &mut case.running.1.clone(),
        }),
    )
    .unwrap();
    assert_eq!(bits32(&mean), bits32(&fwd.mean));
    let mut invstd = vec![f32::NAN; 5];
    bnorm::merge_stats(
        &case.desc.with_flags(Flags::AFFINE),
        &gathered,
        None,
        BatchStats {
            mean: None,
            invstd: Some(&mut invstd),
        },
        None,
    )
    .unwrap();
    assert_eq!(bits32(&invstd), bits32(&fwd.invstd));
    // Without TRACK_RUNNING_STATS the running statistics are ignored.
    let (mut rm, mut rv) = case.running.clone();
    bnorm::merge_stats(
        &case.desc.with_flags(Flags::AFFINE),
        &gathered,
        None,
        BatchStats::default(),
        Some(RunningStats {
            mean: &mut rm,
            var: &mut rv,
        }),
    )
    .unwrap();
    assert_eq!((rm, rv), case.running);
}

#[test]
fn frozen_statistics_need_no_grad_sums() {
    let mut rng = Rng::new(24);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for &channels in CHANNELS.iter() {
            let flags = Flags::AFFINE | Flags::USE_GLOBAL_STATS | Flags::FUSE_RELU;
            let case = Case::random(&mut rng, layout, 3, channels, flags, 2);
            let what = case.describe();
            let c = case.channels();
            let eps = case.desc.eps();
            let mean = rng.vec(c, -1.0, 1.0);
            let invstd: Vec<f32> = rng
                .vec(c, 0.5, 2.0)
                .iter()
                .map(|v| 1.0 / (v + eps).sqrt())
                .collect();
            let y = rng.vec(case.x.len(), -1.0, 1.0);
            let input = |part: &Part| BackwardInput {
                x: &case.x[part.start..part.end],
                y: Some(&y[part.start..part.end]),
                gamma: Some(&case.gamma),
                mean: &mean,
                invstd: &invstd,
            };
            let mut dx = vec![f32::NAN; case.x.len()];
            for part in &case.parts {
                bnorm::backward_elementwise(
                    &case.desc,
                    &part.shape,
                    input(part),
                    &case.dy[part.start..part.end],
                    None,
                    &mut dx[part.start..part.end],
                )
                .unwrap();
                // Sums that are not read may be anything, even invalid.
                let garbage = vec![0.5; 3 * c];
                let mut again = vec![f32::NAN; part.end - part.start];
                bnorm::backward_elementwise(
                    &case.desc,
                    &part.shape,
                    input(part),
                    &case.dy[part.start..part.end],
                    Some(&garbage),
                    &mut again,
                )
                .unwrap();
                assert_eq!(bits32(&again), bits32(&dx[part.start..part.end]));
            }
            let expected = common::backward(
                &case.view,
                &case.x,
                &case.dy,
                Some(&y),
                Some(&case.gamma),
                &mean,
                &invstd,
                true,
            );
            assert_close(&format!("dx of {}", what), &dx, &expected.dx, TOLERANCE);
        }
    }
}

#[test]
fn split_forward_when_the_mean_dwarfs_the_spread() {
    // Channels whose mean is 1e4 times their spread, as in tests/reference.rs.
    // forward_training keeps the mean's low bits there (its float mean's
    // rounding error is moved into the shift) and stays within the contract's
    // 5e-5; forward_normalize receives the mean as a float (the C API's
    // `const float* mean`), so y carries that rounding times invstd: about
    // 7e-4 on this data. The statistics themselves are as exact as
    // forward_training's. This pins down the size of the difference.
    let mut rng = Rng::new(25);
    for &layout in &[Layout::Nchw, Layout::Nhwc] {
        let mut dims = common::random_shape(&mut rng, layout, 4, 3, 64)
            .dims()
            .to_vec();
        dims[0] = 4;
        let shape = Shape::new(&dims);
        let view = View::new(&shape, layout);
        let x: Vec<f32> = (0..view.len()).map(|_| 1e4 + rng.unit()).collect();
        let desc = Descriptor::new(3)
            .unwrap()
            .with_layout(layout)
            .with_flags(Flags::empty());
        let case = Case {
            desc,
            parts: split_batch(&shape, &[1, 3]),
            shape,
            view,
            dy: vec![0.0; x.len()],
            x,
            gamma: vec![1.0; 3],
            beta: vec![0.0; 3],
            running: (vec![0.0; 3], vec![1.0; 3]),
        };
        let fwd = case.split_forward();
        let expected = common::training(&case.view, &case.x, &ReferenceParams::of(&desc, None));
        // The statistics themselves are exact to float rounding.
        assert_close("mean", &fwd.mean, &expected.mean, 1e-6);
        let invstd_error: Vec<f64> = to_f64(&fwd.invstd)
            .iter()
            .zip(&expected.invstd)
            .map(|(a, e)| (a - e) / e)
            .collect();
        assert_close("relative invstd error", &[0.0; 3], &invstd_error, 1e-4);
        // y is off by at most the float mean's rounding (half an ulp of 1e4,
        // 2^-11) times invstd, plus the usual float error.
        let bound = expected.invstd.iter().fold(0.0f64, |m, &v| m.max(v)) * 2f64.powi(-11);
        for (i, (&a, &e)) in fwd.y.iter().zip(&expected.y).enumerate() {
            assert!(
                (a as f64 - e).abs() <= 1.01 * bound + TOLERANCE,
                "y[{}]: got {}, expected {} (bound {})",
                i,
                a,
                e,
                bound
            );
        }
    }
}

// ------------------------------------------------------------------ errors

/// Every buffer of the split phases for a 3-channel layer with every flag
/// that adds one (AFFINE, TRACK_RUNNING_STATS, FUSE_RELU) and a 2x3x2x2 NCHW
/// part (8 values per channel). The inputs are valid, so that each call
/// succeeds until a test spoils one thing; outputs start as NaN.
struct Buffers {
    desc: Descriptor,
    shape: Shape,
    x: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    /// local_stats' output, one block.
    stats: Vec<f64>,
    /// merge_stats' input, two blocks.
    gathered: Vec<f64>,
    /// merge_stats' output, one block.
    merged: Vec<f64>,
    /// backward_reduce's output, one block.
    sums: Vec<f64>,
    /// backward_elementwise's input, two blocks.
    gathered_sums: Vec<f64>,
    /// Which optional arguments are passed.
    with_running: bool,
    with_affine: bool,
    with_y: bool,
    with_sums: bool,
}

impl Buffers {
    fn new() -> Buffers {
        let tensor = |seed: u64| Rng::new(seed).vec(24, -1.0, 1.0);
        Buffers {
            desc: Descriptor::new(3)
                .unwrap()
                .with_flags(Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU),
            shape: Shape::new(&[2, 3, 2, 2]),
            x: tensor(1),
            y: tensor(2),
            dy: tensor(3),
            dx: vec![f32::NAN; 24],
            gamma: vec![1.5, -0.5, 2.0],
            beta: vec![0.25, 0.0, -1.0],
            mean: vec![0.1, -0.2, 0.3],
            invstd: vec![2.0, 1.0, 0.5],
            running_mean: vec![0.0; 3],
            running_var: vec![1.0; 3],
            dgamma: vec![f32::NAN; 3],
            dbeta: vec![f32::NAN; 3],
            stats: vec![f64::NAN; 9],
            gathered: vec![
                8.0, 0.5, 2.0, 8.0, -0.5, 1.0, 8.0, 0.0, 4.0, // block 0
                1.0, -1.0, 0.0, 1.0, 2.0, 0.0, 1.0, 3.0, 0.0, // block 1
            ],
            merged: vec![f64::NAN; 9],
            sums: vec![f64::NAN; 9],
            gathered_sums: vec![
                8.0, 1.0, -2.0, 8.0, 0.5, 0.25, 8.0, -3.0, 1.0, // block 0
                3.0, 0.5, 0.5, 3.0, -1.0, 2.0, 3.0, 0.0, 0.0, // block 1
            ],
            with_running: true,
            with_affine: true,
            with_y: true,
            with_sums: true,
        }
    }

    /// Every buffer's bits, to see that a failing call wrote nothing.
    fn snapshot(&self) -> (Vec<Vec<u32>>, Vec<Vec<u64>>) {
        let floats = [
            &self.x,
            &self.y,
            &self.dy,
            &self.dx,
            &self.gamma,
            &self.beta,
            &self.mean,
            &self.invstd,
            &self.running_mean,
            &self.running_var,
            &self.dgamma,
            &self.dbeta,
        ];
        let doubles = [
            &self.stats,
            &self.gathered,
            &self.merged,
            &self.sums,
            &self.gathered_sums,
        ];
        (
            floats.iter().map(|v| bits32(v)).collect(),
            doubles.iter().map(|v| bits64(v)).collect(),
        )
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

    fn local_stats(&mut self) -> Result<(), Error> {
        bnorm::local_stats(&self.desc, &self.shape, &self.x, &mut self.stats)
    }

    fn merge(&mut self) -> Result<(), Error> {
        let running = running_stats(
            self.with_running,
            &mut self.running_mean,
            &mut self.running_var,
        );
        bnorm::merge_stats(
            &self.desc,
            &self.gathered,
            Some(&mut self.merged),
            BatchStats {
                mean: Some(&mut self.mean),
                invstd: Some(&mut self.invstd),
            },
            running,
        )
    }

    fn merge_in_place(&mut self) -> Result<(), Error> {
        let desc = self.desc;
        let mut gathered = std::mem::take(&mut self.gathered);
        let result = bnorm::merge_stats_in_place(
            &desc,
            &mut gathered,
            BatchStats {
                mean: Some(&mut self.mean),
                invstd: None,
            },
            running_stats(
                self.with_running,
                &mut self.running_mean,
                &mut self.running_var,
            ),
        );
        self.gathered = gathered;
        result
    }

    fn normalize(&mut self) -> Result<(), Error> {
        let affine = if self.with_affine {
            Some(Affine {
                gamma: &self.gamma,
                beta: &self.beta,
            })
        } else {
            None
        };
        bnorm::forward_normalize(
            &self.desc,
            &self.shape,
            &self.x,
            &mut self.y,
            &self.mean,
            &self.invstd,
            affine,
        )
    }

    fn normalize_in_place(&mut self) -> Result<(), Error> {
        let mut x = std::mem::take(&mut self.x);
        let result = bnorm::forward_normalize_in_place(
            &self.desc,
            &self.shape,
            &mut x,
            &self.mean,
            &self.invstd,
            self.affine(),
        );
        self.x = x;
        result
    }

    fn input(&self) -> BackwardInput<'_> {
        BackwardInput {
            x: &self.x,
            y: if self.with_y { Some(&self.y) } else { None },
            gamma: if self.with_affine {
                Some(&self.gamma)
            } else {
                None
            },
            mean: &self.mean,
            invstd: &self.invstd,
        }
    }

    fn reduce(&mut self) -> Result<(), Error> {
        let mut sums = std::mem::take(&mut self.sums);
        let (mut dgamma, mut dbeta) = (
            std::mem::take(&mut self.dgamma),
            std::mem::take(&mut self.dbeta),
        );
        let result = bnorm::backward_reduce(
            &self.desc,
            &self.shape,
            self.input(),
            &self.dy,
            &mut sums,
            ParamGrads {
                dgamma: Some(&mut dgamma),
                dbeta: Some(&mut dbeta),
            },
        );
        self.sums = sums;
        self.dgamma = dgamma;
        self.dbeta = dbeta;
        result
    }

    fn grad_sums(&self) -> Option<&[f64]> {
        if self.with_sums {
            Some(&self.gathered_sums)
        } else {
            None
        }
    }

    fn elementwise(&mut self) -> Result<(), Error> {
        let mut dx = std::mem::take(&mut self.dx);
        let result = bnorm::backward_elementwise(
            &self.desc,
            &self.shape,
            self.input(),
            &self.dy,
            self.grad_sums(),
            &mut dx,
        );
        self.dx = dx;
        result
    }

    fn elementwise_in_place(&mut self) -> Result<(), Error> {
        let mut dy = std::mem::take(&mut self.dy);
        let result = bnorm::backward_elementwise_in_place(
            &self.desc,
            &self.shape,
            self.input(),
            &mut dy,
            self.grad_sums(),
        );
        self.dy = dy;
        result
    }
}

fn running_stats<'a>(
    with: bool,
    mean: &'a mut [f32],
    var: &'a mut [f32],
) -> Option<RunningStats<'a>> {
    if with {
        Some(RunningStats { mean, var })
    } else {
        None
    }
}

type Call = fn(&mut Buffers) -> Result<(), Error>;
type Change = fn(&mut Buffers);

const CALLS: [(&str, Call); 8] = [
    ("local_stats", Buffers::local_stats),
    ("merge_stats", Buffers::merge),
    ("merge_stats_in_place", Buffers::merge_in_place),
    ("forward_normalize", Buffers::normalize),
    ("forward_normalize_in_place", Buffers::normalize_in_place),
    ("backward_reduce", Buffers::reduce),
    ("backward_elementwise", Buffers::elementwise),
    (
        "backward_elementwise_in_place",
        Buffers::elementwise_in_place,
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
        call(&mut buffers).unwrap_or_else(|err| panic!("{}: {}", function, err));
    }
    // And the calls wrote their outputs.
    let mut b = Buffers::new();
    b.local_stats().unwrap();
    assert!(b.stats.iter().all(|v| v.is_finite()));
    b.merge().unwrap();
    // Counts 8 and 1: a total of 9 per channel.
    assert_eq!([b.merged[0], b.merged[3], b.merged[6]], [9.0; 3]);
    assert!(b.mean.iter().chain(&b.invstd).all(|v| v.is_finite()));
}

#[test]
fn every_slice_length_is_checked_before_calling_c() {
    let cases: [(&str, Change, Call, &str); 38] = [
        (
            "local_stats",
            |b| b.x.truncate(23),
            Buffers::local_stats,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "local_stats",
            |b| b.stats.truncate(8),
            Buffers::local_stats,
            "partial stats has 8 elements but 3 * num_features is 9",
        ),
        (
            "local_stats",
            |b| b.stats.push(0.0),
            Buffers::local_stats,
            "partial stats has 10 elements but 3 * num_features is 9",
        ),
        (
            "merge_stats",
            |b| {
                b.gathered.pop();
            },
            Buffers::merge,
            "partial stats has 17 elements, not a multiple of 3 * num_features = 9 \
             (blocks of 3 values per channel, one block per process)",
        ),
        (
            "merge_stats",
            |b| b.gathered.truncate(3),
            Buffers::merge,
            "partial stats has 3 elements, not a multiple of 3 * num_features = 9 \
             (blocks of 3 values per channel, one block per process)",
        ),
        (
            "merge_stats",
            |b| b.merged.truncate(8),
            Buffers::merge,
            "merged stats has 8 elements but 3 * num_features is 9",
        ),
        (
            // The merged block is one block, not the gathered array's size.
            "merge_stats",
            |b| b.merged.resize(18, f64::NAN),
            Buffers::merge,
            "merged stats has 18 elements but 3 * num_features is 9",
        ),
        (
            "merge_stats",
            |b| b.mean.truncate(2),
            Buffers::merge,
            "mean has 2 elements but num_features is 3",
        ),
        (
            "merge_stats",
            |b| b.invstd.push(1.0),
            Buffers::merge,
            "invstd has 4 elements but num_features is 3",
        ),
        (
            "merge_stats",
            |b| b.running_mean.truncate(2),
            Buffers::merge,
            "running mean has 2 elements but num_features is 3",
        ),
        (
            "merge_stats",
            |b| b.running_var.clear(),
            Buffers::merge,
            "running var has 0 elements but num_features is 3",
        ),
        (
            "merge_stats_in_place",
            |b| b.gathered.truncate(10),
            Buffers::merge_in_place,
            "partial stats has 10 elements, not a multiple of 3 * num_features = 9 \
             (blocks of 3 values per channel, one block per process)",
        ),
        (
            "merge_stats_in_place",
            |b| b.mean.truncate(1),
            Buffers::merge_in_place,
            "mean has 1 elements but num_features is 3",
        ),
        (
            "merge_stats_in_place",
            |b| b.running_var.truncate(2),
            Buffers::merge_in_place,
            "running var has 2 elements but num_features is 3",
        ),
        (
            "forward_normalize",
            |b| b.x.truncate(23),
            Buffers::normalize,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "forward_normalize",
            |b| b.y.push(0.0),
            Buffers::normalize,
            "y has 25 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "forward_normalize",
            |b| b.mean.truncate(2),
            Buffers::normalize,
            "mean has 2 elements but num_features is 3",
        ),
        (
            "forward_normalize",
            |b| b.invstd.truncate(2),
            Buffers::normalize,
            "invstd has 2 elements but num_features is 3",
        ),
        (
            "forward_normalize",
            |b| b.gamma.truncate(2),
            Buffers::normalize,
            "gamma has 2 elements but num_features is 3",
        ),
        (
            "forward_normalize",
            |b| b.beta.push(0.0),
            Buffers::normalize,
            "beta has 4 elements but num_features is 3",
        ),
        (
            "forward_normalize_in_place",
            |b| b.x.truncate(12),
            Buffers::normalize_in_place,
            "x has 12 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "forward_normalize_in_place",
            |b| b.invstd.clear(),
            Buffers::normalize_in_place,
            "invstd has 0 elements but num_features is 3",
        ),
        (
            "backward_reduce",
            |b| b.dy.truncate(23),
            Buffers::reduce,
            "dy has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_reduce",
            |b| b.x.push(0.0),
            Buffers::reduce,
            "x has 25 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_reduce",
            |b| b.y.truncate(23),
            Buffers::reduce,
            "y has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_reduce",
            |b| b.mean.truncate(2),
            Buffers::reduce,
            "mean has 2 elements but num_features is 3",
        ),
        (
            "backward_reduce",
            |b| b.invstd.push(1.0),
            Buffers::reduce,
            "invstd has 4 elements but num_features is 3",
        ),
        (
            "backward_reduce",
            |b| b.sums.truncate(8),
            Buffers::reduce,
            "grad sums has 8 elements but 3 * num_features is 9",
        ),
        (
            "backward_reduce",
            |b| b.dgamma.truncate(2),
            Buffers::reduce,
            "dgamma has 2 elements but num_features is 3",
        ),
        (
            "backward_reduce",
            |b| b.dbeta.push(0.0),
            Buffers::reduce,
            "dbeta has 4 elements but num_features is 3",
        ),
        (
            "backward_elementwise",
            |b| b.dy.truncate(23),
            Buffers::elementwise,
            "dy has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_elementwise",
            |b| b.dx.truncate(23),
            Buffers::elementwise,
            "dx has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_elementwise",
            |b| b.x.truncate(23),
            Buffers::elementwise,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_elementwise",
            |b| b.y.push(0.0),
            Buffers::elementwise,
            "y has 25 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward_elementwise",
            |b| b.gamma.truncate(2),
            Buffers::elementwise,
            "gamma has 2 elements but num_features is 3",
        ),
        (
            "backward_elementwise",
            |b| b.mean.truncate(2),
            Buffers::elementwise,
            "mean has 2 elements but num_features is 3",
        ),
        (
            "backward_elementwise",
            |b| b.gathered_sums.push(0.0),
            Buffers::elementwise,
            "grad sums has 19 elements, not a multiple of 3 * num_features = 9 \
             (blocks of 3 values per channel, one block per process)",
        ),
        (
            "backward_elementwise_in_place",
            |b| b.gathered_sums.truncate(8),
            Buffers::elementwise_in_place,
            "grad sums has 8 elements, not a multiple of 3 * num_features = 9 \
             (blocks of 3 values per channel, one block per process)",
        ),
    ];
    for &(function, change, call, message) in cases.iter() {
        assert_fails(function, change, call, Status::LENGTH_MISMATCH, message);
    }
}

#[test]
fn a_tensor_whose_channels_differ_from_the_layer_is_feature_mismatch() {
    // 4 channels against num_features 3; 24 elements, so the lengths pass
    // and the library names both numbers.
    for &(function, call) in CALLS.iter() {
        if function.starts_with("merge") {
            continue; // no tensor
        }
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
    }
}

#[test]
fn merged_stats_are_validated() {
    let cases: [(Change, Status, &str); 5] = [
        (
            |b| b.gathered[3] = 2.5,
            Status::INVALID_ARGUMENT,
            "partial_stats block 0, channel 1: count is 2.5; it must be a whole number from 0 to 2^53 \
             (is the array laid out as (count, ...) per channel, num_features channels per block?)",
        ),
        (
            |b| b.gathered[15] = -1.0,
            Status::INVALID_ARGUMENT,
            "partial_stats block 1, channel 2: count is -1; it must be a whole number from 0 to 2^53 \
             (is the array laid out as (count, ...) per channel, num_features channels per block?)",
        ),
        (
            |b| b.gathered[9] = f64::NAN,
            Status::INVALID_ARGUMENT,
            "partial_stats block 1, channel 0: count is nan; it must be a whole number from 0 to 2^53 \
             (is the array laid out as (count, ...) per channel, num_features channels per block?)",
        ),
        (
            |b| b.gathered[11] = -0.5,
            Status::INVALID_ARGUMENT,
            "partial_stats block 1, channel 0: M2 is -0.5; it must be >= 0",
        ),
        (
            // One value in all: channel 1 of block 0 empty, block 1 has one.
            |b| b.gathered[3] = 0.0,
            Status::TOO_FEW_VALUES,
            "merging statistics needs more than 1 value per channel in all, got 1 in \
             channel 1 over 2 blocks",
        ),
    ];
    for &(change, status, message) in cases.iter() {
        assert_fails("merge_stats", change, Buffers::merge, status, message);
        assert_fails(
            "merge_stats_in_place",
            change,
            Buffers::merge_in_place,
            status,
            message,
        );
    }
    // Only the second block (one sample of (1, 3)): one value per channel.
    assert_fails(
        "merge_stats",
        |b| {
            b.gathered.drain(..9);
        },
        Buffers::merge,
        Status::TOO_FEW_VALUES,
        "merging statistics needs more than 1 value per channel in all, got 1 in \
         channel 0 over 1 blocks",
    );
    // No block at all.
    assert_fails(
        "merge_stats",
        |b| b.gathered.clear(),
        Buffers::merge,
        Status::INVALID_ARGUMENT,
        "num_partials is 0 with num_features 3; it must be >= 1 and the partial_stats \
         array's size must not overflow",
    );
    assert_fails(
        "merge_stats_in_place",
        |b| b.gathered.clear(),
        Buffers::merge_in_place,
        Status::INVALID_ARGUMENT,
        "num_partials is 0 with num_features 3; it must be >= 1 and the partial_stats \
         array's size must not overflow",
    );
}

#[test]
fn grad_sums_are_validated() {
    for &(function, call) in &CALLS[6..] {
        assert_fails(
            function,
            |b| b.gathered_sums[15] = 0.5,
            call,
            Status::INVALID_ARGUMENT,
            "grad_sums block 1, channel 2: count is 0.5; it must be a whole number from 0 to 2^53 \
             (is the array laid out as (count, ...) per channel, num_features channels per block?)",
        );
        assert_fails(
            function,
            |b| b.gathered_sums[0] = -8.0,
            call,
            Status::INVALID_ARGUMENT,
            "grad_sums block 0, channel 0: count is -8; it must be a whole number from 0 to 2^53 \
             (is the array laid out as (count, ...) per channel, num_features channels per block?)",
        );
        // Only another process's block: 3 values, fewer than this part's 8.
        assert_fails(
            function,
            |b| {
                b.gathered_sums.drain(..9);
            },
            call,
            Status::INVALID_ARGUMENT,
            "grad_sums channel 0: the total count is 3 but this part, of shape (2, 3, 2, 2), \
             alone has 8 values per channel; pass the sums of every process (allreduced, or \
             all blocks gathered)",
        );
        assert_fails(
            function,
            |b| b.gathered_sums.clear(),
            call,
            Status::INVALID_ARGUMENT,
            "num_partials is 0 with num_features 3; it must be >= 1 and the grad_sums \
             array's size must not overflow",
        );
    }
}

/// A shape as the library's messages print it: "(2, 3, 4)".
fn c_shape(shape: &Shape) -> String {
    let dims: Vec<String> = shape.dims().iter().map(|d| d.to_string()).collect();
    format!("({})", dims.join(", "))
}

#[test]
fn grad_sums_must_count_at_least_this_part_in_every_layout_and_rank() {
    let mut rng = Rng::new(26);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for rank in 2..=5 {
            // Two values per channel at least: channels 0 and 1 keep their whole
            // count, so that the total of channel 2 is what fails.
            let shape = common::random_shape(&mut rng, layout, rank, 3, 2);
            let view = View::new(&shape, layout);
            let desc = Descriptor::new(3)
                .unwrap()
                .with_layout(layout)
                .with_flags(Flags::empty());
            let x = common::random_input(&mut rng, &view);
            let (mean, invstd) = ([0.0f32; 3], [1.0f32; 3]);
            let input = BackwardInput {
                x: &x,
                y: None,
                gamma: None,
                mean: &mean,
                invstd: &invstd,
            };
            // This part's own sums count its values per channel...
            let mut sums = vec![f64::NAN; 9];
            bnorm::backward_reduce(&desc, &shape, input, &x, &mut sums, ParamGrads::default())
                .unwrap();
            let n = view.count() as f64;
            assert_eq!(column(&sums, 0), [n; 3], "{:?}", shape);
            // ... and one value fewer in all is not the whole batch's.
            let mut short = sums.clone();
            short[6] = n - 1.0;
            let mut dx = vec![f32::NAN; x.len()];
            let err = bnorm::backward_elementwise(&desc, &shape, input, &x, Some(&short), &mut dx)
                .unwrap_err();
            assert_eq!(
                err.status(),
                Status::INVALID_ARGUMENT,
                "{:?}: {}",
                shape,
                err
            );
            let message = format!(
                "grad_sums channel 2: the total count is {} but this part, of shape {}, alone \
                 has {} values per channel; pass the sums of every process (allreduced, or all \
                 blocks gathered)",
                n - 1.0,
                c_shape(&shape),
                n
            );
            assert_eq!(err.message(), message);
            assert!(dx.iter().all(|v| v.is_nan()));
        }
    }
}

#[test]
fn a_whole_batch_of_one_value_is_too_few_for_backward() {
    // One process, one sample of a BatchNorm1d layer, nobody else: its sums
    // count one value per channel in all.
    let desc = Descriptor::new(3).unwrap().with_flags(Flags::empty());
    let shape = Shape::new(&[1, 3]);
    let x = [1.0f32, 2.0, 3.0];
    let ones = [1.0f32; 3];
    let input = BackwardInput {
        x: &x,
        y: None,
        gamma: None,
        mean: &ones,
        invstd: &ones,
    };
    let mut sums = [f64::NAN; 9];
    bnorm::backward_reduce(&desc, &shape, input, &x, &mut sums, ParamGrads::default()).unwrap();
    let mut dx = [f32::NAN; 3];
    let err =
        bnorm::backward_elementwise(&desc, &shape, input, &x, Some(&sums), &mut dx).unwrap_err();
    assert_eq!(err.status(), Status::TOO_FEW_VALUES, "{}", err);
    assert_eq!(
        err.message(),
        "training-mode backward needs more than 1 value per channel in all, got 1 in channel 0"
    );
    let mut dy_dx = x;
    let err = bnorm::backward_elementwise_in_place(&desc, &shape, input, &mut dy_dx, Some(&sums))
        .unwrap_err();
    assert_eq!(err.status(), Status::TOO_FEW_VALUES, "{}", err);
    assert_eq!(bits32(&dx), bits32(&[f32::NAN; 3]));
    assert_eq!(dy_dx, x);
    // The same part with another process's block: fine.
    let mut gathered = sums.to_vec();
    gathered.extend_from_slice(&sums);
    bnorm::backward_elementwise(&desc, &shape, input, &x, Some(&gathered), &mut dx).unwrap();
}

#[test]
fn buffers_a_flag_requires_are_null_pointer_when_left_out() {
    let cases: [(&str, Change, Call, &str); 9] = [
        (
            "merge_stats",
            |b| b.with_running = false,
            Buffers::merge,
            "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set",
        ),
        (
            "merge_stats_in_place",
            |b| b.with_running = false,
            Buffers::merge_in_place,
            "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set",
        ),
        (
            "forward_normalize",
            |b| b.with_affine = false,
            Buffers::normalize,
            "gamma is NULL but BNORM_FLAG_AFFINE is set",
        ),
        (
            "forward_normalize_in_place",
            |b| b.with_affine = false,
            Buffers::normalize_in_place,
            "gamma is NULL but BNORM_FLAG_AFFINE is set",
        ),
        (
            "backward_reduce",
            |b| b.with_y = false,
            Buffers::reduce,
            "y is NULL but BNORM_FLAG_FUSE_RELU is set",
        ),
        (
            "backward_elementwise",
            |b| b.with_y = false,
            Buffers::elementwise,
            "y is NULL but BNORM_FLAG_FUSE_RELU is set",
        ),
        (
            "backward_elementwise",
            |b| b.with_affine = false,
            Buffers::elementwise,
            "gamma is NULL but BNORM_FLAG_AFFINE is set",
        ),
        (
            "backward_elementwise",
            |b| b.with_sums = false,
            Buffers::elementwise,
            "grad_sums is NULL",
        ),
        (
            "backward_elementwise_in_place",
            |b| b.with_sums = false,
            Buffers::elementwise_in_place,
            "grad_sums is NULL",
        ),
    ];
    for &(function, change, call, message) in cases.iter() {
        assert_fails(function, change, call, Status::NULL_POINTER, message);
    }
    // Without the flags, the same arguments are optional.
    let calls: [(Change, Call); 6] = [
        (
            |b| {
                b.with_running = false;
                b.desc = b.desc.with_flags(Flags::empty());
            },
            Buffers::merge,
        ),
        (
            |b| {
                b.with_running = false;
                b.desc = b.desc.with_flags(Flags::empty());
            },
            Buffers::merge_in_place,
        ),
        (
            |b| {
                b.with_affine = false;
                b.desc = b.desc.with_flags(Flags::empty());
            },
            Buffers::normalize,
        ),
        (
            |b| {
                b.with_y = false;
                b.desc = b.desc.with_flags(Flags::empty());
            },
            Buffers::reduce,
        ),
        (
            |b| {
                b.with_y = false;
                b.with_affine = false;
                b.desc = b.desc.with_flags(Flags::empty());
            },
            Buffers::elementwise,
        ),
        (
            |b| {
                b.with_sums = false;
                b.desc = b.desc.with_flags(Flags::AFFINE | Flags::USE_GLOBAL_STATS);
            },
            Buffers::elementwise_in_place,
        ),
    ];
    for &(change, call) in calls.iter() {
        let mut buffers = Buffers::new();
        change(&mut buffers);
        call(&mut buffers).unwrap();
    }
}

#[test]
fn the_split_constant_and_block_sizes_match_the_library() {
    assert_eq!(sys::BNORM_SPLIT_VALUES_PER_CHANNEL, 3);
    assert_eq!(SPLIT_VALUES_PER_CHANNEL, 3);
    // The raw calls write exactly 3 * num_features doubles: a longer buffer
    // keeps its tail.
    let desc = raw_desc(3);
    let shape = sys::bnorm_shape {
        rank: 2,
        dims: [4, 3, 0, 0, 0],
    };
    let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let mut stats = [f64::NAN; 12];
    stats[9..].copy_from_slice(&[7.0; 3]);
    let status = unsafe {
        sys::bnorm_local_stats(
            &desc,
            &shape,
            x.as_ptr() as *const c_void,
            stats.as_mut_ptr(),
        )
    };
    assert_eq!(status, sys::BNORM_OK, "{}", raw_last_error());
    // Channel c holds c, c + 3, c + 6, c + 9: mean c + 4.5, M2 4 * 3^2 * 1.25.
    assert_eq!(
        &stats[..9],
        &[4.0, 4.5, 45.0, 4.0, 5.5, 45.0, 4.0, 6.5, 45.0]
    );
    assert_eq!(&stats[9..], &[7.0; 3]);

    let (mean, invstd) = ([0.0f32; 3], [1.0f32; 3]);
    let mut sums = [7.0f64; 12];
    let status = unsafe {
        sys::bnorm_backward_reduce(
            &desc,
            &shape,
            x.as_ptr() as *const c_void,
            x.as_ptr() as *const c_void,
            std::ptr::null(),
            mean.as_ptr(),
            invstd.as_ptr(),
            sums.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, sys::BNORM_OK, "{}", raw_last_error());
    // dy = x and mean 0: sum(g) = 4c + 18, sum(g * x) = sum of squares.
    let squares = |c: f64| (0..4).map(|i| (c + 3.0 * i as f64).powi(2)).sum::<f64>();
    assert_eq!(
        &sums[..9],
        &[
            4.0,
            18.0,
            squares(0.0),
            4.0,
            22.0,
            squares(1.0),
            4.0,
            26.0,
            squares(2.0)
        ]
    );
    assert_eq!(&sums[9..], &[7.0; 3]);
}

#[test]
fn overlaps_the_safe_api_cannot_express_are_aliasing() {
    // Through the raw declarations only: the borrow checker keeps the safe
    // functions' outputs apart, and the in-place pairs have their own calls.
    let no_track = {
        let mut d = raw_desc(1);
        d.flags = 0;
        d
    };
    // Two blocks of (count, mean, M2), and the merged block written one
    // value into them: an overlap that is not the allowed same pointer.
    let mut gathered = [2.0, 0.0, 1.0, 2.0, 1.0, 1.0, 0.0];
    let base = gathered.as_mut_ptr();
    let null = std::ptr::null_mut();
    let status =
        unsafe { sys::bnorm_merge_stats(&no_track, 2, base, base.add(1), null, null, null, null) };
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());
    assert_eq!(
        raw_last_error(),
        "merged_stats overlaps partial_stats (in place is allowed only with the same pointer)"
    );
    assert_eq!(gathered, [2.0, 0.0, 1.0, 2.0, 1.0, 1.0, 0.0]);
    // The same pointer is the in-place merge.
    let status =
        unsafe { sys::bnorm_merge_stats(&no_track, 2, base, base, null, null, null, null) };
    assert_eq!(status, sys::BNORM_OK, "{}", raw_last_error());
    // (2, 0, 1) and (2, 1, 1): 4 values, mean 0.5, M2 1 + 1 + 1 = 3.
    assert_eq!(&gathered[..3], &[4.0, 0.5, 3.0]);

    // y one element past x.
    let shape = sys::bnorm_shape {
        rank: 2,
        dims: [4, 1, 0, 0, 0],
    };
    let mut tensor = [1.0f32, 2.0, 3.0, 4.0, 5.0];
    let t = tensor.as_mut_ptr();
    let stats = [1.0f32];
    let status = unsafe {
        sys::bnorm_forward_normalize(
            &no_track,
            &shape,
            t as *const c_void,
            t.add(1) as *mut c_void,
            std::ptr::null(),
            std::ptr::null(),
            stats.as_ptr(),
            stats.as_ptr(),
        )
    };
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());
    // dx one element past dy.
    let sums = [8.0f64, 0.0, 0.0];
    let status = unsafe {
        sys::bnorm_backward_elementwise(
            &no_track,
            &shape,
            t as *const c_void,
            t as *const c_void,
            std::ptr::null(),
            std::ptr::null(),
            stats.as_ptr(),
            stats.as_ptr(),
            1,
            sums.as_ptr(),
            t.add(1) as *mut c_void,
        )
    };
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());
    // The grad sums overlapping dgamma.
    let mut wide = [0.0f64; 4];
    let w = wide.as_mut_ptr();
    let status = unsafe {
        sys::bnorm_backward_reduce(
            &no_track,
            &shape,
            t as *const c_void,
            t as *const c_void,
            std::ptr::null(),
            stats.as_ptr(),
            stats.as_ptr(),
            w,
            (w as *mut f32).add(2),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, sys::BNORM_ERR_ALIASING, "{}", raw_last_error());
    assert_eq!(tensor, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(wide, [0.0; 4]);
}
