//! Training batch norm split into phases for a batch spread across processes
//! (bnorm 1.2; PyTorch's SyncBatchNorm). Each process runs the local phase
//! on its part of the batch, the caller exchanges the small `f64` arrays with
//! any collective engine (MPI, an NCCL-style allreduce, gloo, ...), and each
//! process finishes with the whole batch's numbers:
//!
//! ```text
//! forward:  local_stats -> allgather -> merge_stats -> forward_normalize
//! backward: backward_reduce -> allgather or allreduce(sum) -> backward_elementwise
//! ```
//!
//! The exchanged arrays hold `SPLIT_VALUES_PER_CHANNEL` (3) values per
//! channel, `3 * num_features` per process (a "block"):
//! - stats, from `local_stats`: `[3c]` count, `[3c + 1]` mean, `[3c + 2]` M2
//!   (the sum of squared deviations from that mean). Stats are merged, not
//!   summed: gather every process's block, in a fixed order, and pass them
//!   all to `merge_stats`.
//! - grad sums, from `backward_reduce`: `[3c]` count, `[3c + 1]` sum(g),
//!   `[3c + 2]` sum(g * (x - mean)), g being dy zeroed where y <= 0 with
//!   `Flags::FUSE_RELU`. Plain sums: gather them all, or sum them
//!   (allreduce) and pass the one block.
//!
//! A gathered array is blocks one after another, as `MPI_Allgather` lays
//! them out; the number of blocks is its length divided by
//! `3 * num_features`. The library combines blocks in index order, so every
//! process that passes the same blocks gets bit-identical results.
//!
//! As in `ops`, every slice's length is checked before calling C
//! (`Status::LENGTH_MISMATCH`) and the rest, including the exchanged values
//! (whole counts, M2 >= 0, enough values in all), is the library's to check.
//! The in-place pairs the C API allows (`y == x`, `dx == dy`, and the merged
//! stats over the first gathered block) have their own `*_in_place`
//! functions; any other overlap cannot be expressed.

use std::os::raw::c_void;
use std::ptr;

use crate::descriptor::Descriptor;
use crate::element::Element;
use crate::error::Error;
use crate::ops::{
    check_affine, check_channels, check_tensor, length_error, optional_channels_mut, Affine,
    BackwardInput, ParamGrads, RunningStats,
};
use crate::shape::Shape;
use crate::sys;

/// Values per channel in the exchanged `f64` arrays:
/// `sys::BNORM_SPLIT_VALUES_PER_CHANNEL`.
pub const SPLIT_VALUES_PER_CHANNEL: usize = sys::BNORM_SPLIT_VALUES_PER_CHANNEL as usize;

/// Where `merge_stats` writes the whole batch's mean and
/// `invstd = 1 / sqrt(biased_var + eps)`, each `num_features` long, for
/// `forward_normalize` and the backward phases. `None` skips one.
#[derive(Debug, Default)]
pub struct BatchStats<'a> {
    pub mean: Option<&'a mut [f32]>,
    pub invstd: Option<&'a mut [f32]>,
}

/// This process's part of the batch statistics: `partial_stats`
/// (`3 * num_features` long) gets each channel's count, mean and M2 over
/// `x`. One value per channel (a single sample of a rank-2 tensor) is fine.
pub fn local_stats<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    partial_stats: &mut [f64],
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_block("partial stats", desc, partial_stats)?;
    // SAFETY: x holds the shape's element count and partial_stats one block,
    // or the shape is one the library rejects before accessing any buffer;
    // the output is an exclusive borrow, so it overlaps nothing.
    let status = unsafe {
        sys::bnorm_local_stats(
            &desc.raw_for::<T>(),
            shape.as_raw(),
            x.as_ptr() as *const c_void,
            partial_stats.as_mut_ptr(),
        )
    };
    Error::check(status)
}

/// Merges the gathered stats blocks (every process's `local_stats`, block
/// after block; the length must be a multiple of `3 * num_features`) into
/// the whole batch's statistics, with Chan's parallel formula in block
/// order:
/// - `merged_stats` (`3 * num_features`): the merged (count, mean, M2)
///   block, itself a valid block for a further (hierarchical) merge;
/// - `stats`: the mean and invstd;
/// - `running`, required with `Flags::TRACK_RUNNING_STATS` (ignored
///   without): updated as `forward_training` does (momentum, the variance
///   unbiased by count / (count - 1)).
///
/// Counts must be whole numbers >= 0 (a block of count 0 is skipped) and
/// every M2 must be >= 0, else `Status::INVALID_ARGUMENT` naming the block
/// and channel; a channel with a total count <= 1 is
/// `Status::TOO_FEW_VALUES`. An empty
/// `partial_stats` reaches the library, which rejects 0 blocks with
/// `Status::INVALID_ARGUMENT`. From `desc` it uses num_features, eps,
/// momentum and `Flags::TRACK_RUNNING_STATS`.
pub fn merge_stats(
    desc: &Descriptor,
    partial_stats: &[f64],
    merged_stats: Option<&mut [f64]>,
    stats: BatchStats<'_>,
    running: Option<RunningStats<'_>>,
) -> Result<(), Error> {
    let num_partials = count_blocks("partial stats", desc, partial_stats)?;
    let merged_stats = match merged_stats {
        Some(merged) => {
            check_block("merged stats", desc, merged)?;
            merged.as_mut_ptr()
        }
        None => ptr::null_mut(),
    };
    merge(
        desc,
        num_partials,
        partial_stats.as_ptr(),
        merged_stats,
        stats,
        running,
    )
}

/// `merge_stats` writing the merged block over the first gathered block
/// (`partial_stats[..3 * num_features]`); the other blocks are left as they
/// were.
pub fn merge_stats_in_place(
    desc: &Descriptor,
    partial_stats: &mut [f64],
    stats: BatchStats<'_>,
    running: Option<RunningStats<'_>>,
) -> Result<(), Error> {
    let num_partials = count_blocks("partial stats", desc, partial_stats)?;
    let partials = partial_stats.as_mut_ptr();
    merge(desc, num_partials, partials, partials, stats, running)
}

fn merge(
    desc: &Descriptor,
    num_partials: i32,
    partial_stats: *const f64,
    merged_stats: *mut f64,
    stats: BatchStats<'_>,
    running: Option<RunningStats<'_>>,
) -> Result<(), Error> {
    let mean = optional_channels_mut("mean", desc, stats.mean)?;
    let invstd = optional_channels_mut("invstd", desc, stats.invstd)?;
    let (running_mean, running_var) = match running {
        Some(running) => {
            check_channels("running mean", desc, running.mean)?;
            check_channels("running var", desc, running.var)?;
            (running.mean.as_mut_ptr(), running.var.as_mut_ptr())
        }
        None => (ptr::null_mut(), ptr::null_mut()),
    };
    // SAFETY: partial_stats holds num_partials blocks of 3 * num_features
    // doubles, merged_stats (NULL or) one block, the per-channel buffers
    // (NULL or) num_features floats, all checked by the callers and above.
    // The outputs are exclusive borrows, or merged_stats is exactly
    // partial_stats, the in-place pair the C API allows. 0 blocks are
    // rejected by the library before it accesses any buffer.
    let status = unsafe {
        sys::bnorm_merge_stats(
            desc.as_raw(),
            num_partials,
            partial_stats,
            merged_stats,
            mean,
            invstd,
            running_mean,
            running_var,
        )
    };
    Error::check(status)
}

/// The elementwise half of training forward with the whole batch's
/// statistics (from `merge_stats`): `y = (x - mean) * invstd * gamma + beta`,
/// then ReLU with `Flags::FUSE_RELU`. `affine` as in `forward_inference`.
pub fn forward_normalize<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &[T],
    y: &mut [T],
    mean: &[f32],
    invstd: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    check_tensor("y", shape, y)?;
    normalize(
        desc,
        shape,
        x.as_ptr(),
        y.as_mut_ptr(),
        mean,
        invstd,
        affine,
    )
}

/// `forward_normalize` writing y over x.
pub fn forward_normalize_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: &mut [T],
    mean: &[f32],
    invstd: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_tensor("x", shape, x)?;
    let xy = x.as_mut_ptr();
    normalize(desc, shape, xy, xy, mean, invstd, affine)
}

fn normalize<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    x: *const T,
    y: *mut T,
    mean: &[f32],
    invstd: &[f32],
    affine: Option<Affine<'_>>,
) -> Result<(), Error> {
    check_channels("mean", desc, mean)?;
    check_channels("invstd", desc, invstd)?;
    let (gamma, beta) = check_affine(desc, affine)?;
    // SAFETY: as in `ops::inference`: the buffers hold what the descriptor
    // and shape make the library access, or the shape is one the library
    // rejects before accessing any buffer; y is an exclusive borrow or
    // exactly x.
    let status = unsafe {
        sys::bnorm_forward_normalize(
            &desc.raw_for::<T>(),
            shape.as_raw(),
            x as *const c_void,
            y as *mut c_void,
            gamma,
            beta,
            mean.as_ptr(),
            invstd.as_ptr(),
        )
    };
    Error::check(status)
}

/// This process's part of the backward sums: `grad_sums`
/// (`3 * num_features`) as described in the module documentation, with
/// `input.mean` and `input.invstd` the whole batch's (from `merge_stats`);
/// `input.y`, the forward output, is required with `Flags::FUSE_RELU`, and
/// `input.gamma` is not read (the sums do not depend on it). `grads` gets
/// `dgamma = sum(g * (x - mean)) * invstd` and `dbeta = sum(g)` over this
/// part only: data-parallel training sums them with the other parameter
/// gradients.
pub fn backward_reduce<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &[T],
    grad_sums: &mut [f64],
    grads: ParamGrads<'_>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    check_tensor("x", shape, input.x)?;
    let y = optional_tensor("y", shape, input.y)?;
    check_channels("mean", desc, input.mean)?;
    check_channels("invstd", desc, input.invstd)?;
    check_block("grad sums", desc, grad_sums)?;
    let dgamma = optional_channels_mut("dgamma", desc, grads.dgamma)?;
    let dbeta = optional_channels_mut("dbeta", desc, grads.dbeta)?;
    // SAFETY: as in `ops::inference`; grad_sums holds one block, and every
    // output is an exclusive borrow.
    let status = unsafe {
        sys::bnorm_backward_reduce(
            &desc.raw_for::<T>(),
            shape.as_raw(),
            input.x.as_ptr() as *const c_void,
            dy.as_ptr() as *const c_void,
            y as *const c_void,
            input.mean.as_ptr(),
            input.invstd.as_ptr(),
            grad_sums.as_mut_ptr(),
            dgamma,
            dbeta,
        )
    };
    Error::check(status)
}

/// dx of this process's part from the whole batch's grad sums: every
/// process's `backward_reduce` block gathered (block after block), or the
/// one block they sum to; blocks are added in index order. dx is what
/// `backward` gives for the whole batch, restricted to this part.
/// `input.gamma` is required with `Flags::AFFINE`, `input.y` with
/// `Flags::FUSE_RELU`; mean and invstd are the whole batch's.
///
/// Each channel's total count must be a whole number at least this part's
/// values per channel (else `Status::INVALID_ARGUMENT`: were the other
/// processes' sums left out?) and more than 1 (else
/// `Status::TOO_FEW_VALUES`). With `Flags::USE_GLOBAL_STATS`,
/// `dx = dy * gamma * invstd` and `grad_sums` is not read (`None` is fine);
/// otherwise `None` is `Status::NULL_POINTER`.
pub fn backward_elementwise<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &[T],
    grad_sums: Option<&[f64]>,
    dx: &mut [T],
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    check_tensor("dx", shape, dx)?;
    elementwise(desc, shape, input, dy.as_ptr(), grad_sums, dx.as_mut_ptr())
}

/// `backward_elementwise` writing dx over dy.
pub fn backward_elementwise_in_place<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: &mut [T],
    grad_sums: Option<&[f64]>,
) -> Result<(), Error> {
    check_tensor("dy", shape, dy)?;
    let dy_dx = dy.as_mut_ptr();
    elementwise(desc, shape, input, dy_dx, grad_sums, dy_dx)
}

fn elementwise<T: Element>(
    desc: &Descriptor,
    shape: &Shape,
    input: BackwardInput<'_, T>,
    dy: *const T,
    grad_sums: Option<&[f64]>,
    dx: *mut T,
) -> Result<(), Error> {
    check_tensor("x", shape, input.x)?;
    let y = optional_tensor("y", shape, input.y)?;
    let gamma = match input.gamma {
        Some(gamma) => {
            check_channels("gamma", desc, gamma)?;
            gamma.as_ptr()
        }
        None => ptr::null(),
    };
    check_channels("mean", desc, input.mean)?;
    check_channels("invstd", desc, input.invstd)?;
    // None is passed as one NULL block, so that the library, when it needs
    // the sums, says that grad_sums is NULL (rather than that 0 blocks were
    // passed).
    let (num_partials, grad_sums) = match grad_sums {
        Some(sums) => (count_blocks("grad sums", desc, sums)?, sums.as_ptr()),
        None => (1, ptr::null()),
    };
    // SAFETY: as in `ops::inference`; grad_sums holds num_partials blocks
    // (or is NULL), dx is an exclusive borrow or exactly dy.
    let status = unsafe {
        sys::bnorm_backward_elementwise(
            &desc.raw_for::<T>(),
            shape.as_raw(),
            input.x.as_ptr() as *const c_void,
            dy as *const c_void,
            y as *const c_void,
            gamma,
            input.mean.as_ptr(),
            input.invstd.as_ptr(),
            num_partials,
            grad_sums,
            dx as *mut c_void,
        )
    };
    Error::check(status)
}

/// `3 * num_features`, the length of one block. Wide enough not to wrap for
/// any num_features.
fn block_len(desc: &Descriptor) -> u128 {
    // Descriptor::new guarantees num_features > 0; the max keeps a block
    // from being 0 (a division by zero below) whatever happens.
    SPLIT_VALUES_PER_CHANNEL as u128 * desc.num_features().max(1) as u128
}

/// One block: exactly `3 * num_features` values.
fn check_block(name: &str, desc: &Descriptor, data: &[f64]) -> Result<(), Error> {
    let expected = block_len(desc);
    if data.len() as u128 == expected {
        Ok(())
    } else {
        Err(length_error(format!(
            "{} has {} elements but {} * num_features is {}",
            name,
            data.len(),
            SPLIT_VALUES_PER_CHANNEL,
            expected
        )))
    }
}

/// The number of blocks in a gathered array, which must be a whole number
/// that fits the C API's `int32_t num_partials`. 0 (an empty array) is left
/// to the library to reject.
fn count_blocks(name: &str, desc: &Descriptor, data: &[f64]) -> Result<i32, Error> {
    let block = block_len(desc);
    let len = data.len() as u128;
    if len % block != 0 {
        return Err(length_error(format!(
            "{} has {} elements, not a multiple of {} * num_features = {} \
             (blocks of {} values per channel, one block per process)",
            name,
            data.len(),
            SPLIT_VALUES_PER_CHANNEL,
            block,
            SPLIT_VALUES_PER_CHANNEL
        )));
    }
    i32::try_from(len / block).map_err(|_| {
        length_error(format!(
            "{} has {} blocks of {} * num_features; at most {} can be passed",
            name,
            len / block,
            SPLIT_VALUES_PER_CHANNEL,
            i32::MAX
        ))
    })
}

pub(crate) fn optional_tensor<T>(
    name: &str,
    shape: &Shape,
    data: Option<&[T]>,
) -> Result<*const T, Error> {
    match data {
        Some(data) => {
            check_tensor(name, shape, data)?;
            Ok(data.as_ptr())
        }
        None => Ok(ptr::null()),
    }
}
