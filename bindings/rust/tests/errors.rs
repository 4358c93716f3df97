//! Every status the safe API can produce, and what the caller sees.
//!
//! Not reachable from the safe API, by design: `ALIASING` (the borrow rules
//! keep outputs apart from inputs; the allowed in-place pairs have their own
//! functions), an unknown dtype (the slices' element type sets it, and every
//! `Element` is a dtype the library implements) and misaligned pointers
//! (`&[f32]`, `&[Bf16]` and `&[F16]` are always aligned). `tests/sys_abi.rs`
//! reaches them through the raw declarations.
//! `OUT_OF_MEMORY` and `INTERNAL` cannot be provoked on purpose.

mod common;

use bnorm::{
    Affine, BackwardInput, Descriptor, Error, Flags, Layout, ParamGrads, RunningStats, SaveStats,
    Shape, Status,
};
use common::{assert_call_fails, assert_error, Sentinels, SENTINEL};

fn layer(channels: i64) -> Descriptor {
    Descriptor::new(channels).unwrap()
}

/// Runs an inference on a well-formed 2x3x2x2 tensor with `desc`, so that
/// whatever fails is the descriptor's fault.
fn infer_with(desc: &Descriptor) -> Result<(), Error> {
    let shape = Shape::new(&[2, 3, 2, 2]);
    let x = [1.0; 24];
    let mut y = [0.0; 24];
    let ones = [1.0; 3];
    let affine = Affine {
        gamma: &ones,
        beta: &ones,
    };
    bnorm::forward_inference(desc, &shape, &x, &mut y, &ones, &ones, Some(affine))
}

/// Runs an inference of a 3-channel layer on a tensor of `shape` (whose
/// buffer length the binding cannot judge when the shape is invalid).
fn infer_shape(shape: &Shape, layout: Layout) -> Result<(), Error> {
    let x = [1.0; 24];
    let mut y = [0.0; 24];
    let ones = [1.0; 3];
    let desc = layer(3).with_layout(layout).with_flags(Flags::empty());
    bnorm::forward_inference(&desc, shape, &x, &mut y, &ones, &ones, None)
}

#[test]
fn num_features_must_be_positive() {
    let err = Descriptor::new(0).unwrap_err();
    assert_eq!(err.status(), Status::INVALID_DESCRIPTOR);
    assert_eq!(err.message(), "num_features is 0; it must be > 0");
    let err = Descriptor::new(-5).unwrap_err();
    assert_eq!(err.status(), Status::INVALID_DESCRIPTOR);
    assert_eq!(err.message(), "num_features is -5; it must be > 0");
}

#[test]
fn out_of_range_descriptor_fields_are_invalid_argument() {
    // The builder stores anything; the library judges the values on every call.
    let cases = [
        (
            layer(3).with_eps(0.0),
            "eps is 0; it must be finite and > 0",
        ),
        (
            layer(3).with_eps(-1e-5),
            "eps is -1e-05; it must be finite and > 0",
        ),
        (
            layer(3).with_eps(f32::NAN),
            "eps is nan; it must be finite and > 0",
        ),
        (
            layer(3).with_eps(f32::INFINITY),
            "eps is inf; it must be finite and > 0",
        ),
        (
            layer(3).with_momentum(1.5),
            "momentum is 1.5; it must be in [0, 1]",
        ),
        (
            layer(3).with_momentum(-0.25),
            "momentum is -0.25; it must be in [0, 1]",
        ),
        (
            layer(3).with_momentum(f32::NAN),
            "momentum is nan; it must be in [0, 1]",
        ),
        (
            layer(3).with_num_threads(-1),
            "num_threads is -1; it must be >= 0",
        ),
        (
            layer(3).with_flags(Flags::AFFINE | Flags::from_bits(1 << 7)),
            "flags 0x81 has unknown bits 0x80",
        ),
    ];
    for (desc, message) in cases.iter() {
        assert_error(infer_with(desc), Status::INVALID_ARGUMENT, message);
    }
}

#[test]
fn malformed_shapes_are_invalid_shape() {
    let nchw = Layout::Nchw;
    let cases = [
        (Shape::new(&[3]), "rank is 1; it must be 2 to 5"),
        (
            Shape::new(&[1, 3, 1, 1, 1, 1]),
            "rank is 6; it must be 2 to 5",
        ),
        (
            Shape::new(&[0, 3, 2]),
            "dims[0] is 0; every dimension must be > 0",
        ),
        (
            Shape::new(&[2, 3, -2]),
            "dims[2] is -2; every dimension must be > 0",
        ),
        (
            Shape::new(&[i64::MAX / 2, 3, 4]),
            "the element count of shape (4611686018427387903, 3, 4) overflows",
        ),
    ];
    for (shape, message) in cases.iter() {
        assert_eq!(shape.element_count(), None, "{:?}", shape);
        assert_error(infer_shape(shape, nchw), Status::INVALID_SHAPE, message);
    }
}

#[test]
fn channel_mismatch_is_reported_by_the_library() {
    assert_error(
        infer_shape(&Shape::new(&[2, 4, 3]), Layout::Nchw),
        Status::FEATURE_MISMATCH,
        "input channel dimension (dim 1) is 4 but num_features is 3; \
         dim 2 is 3: is the tensor channels-last? set layout to BNORM_LAYOUT_NHWC",
    );
    // The same tensor read channels-last has 3 channels, and is accepted.
    infer_shape(&Shape::new(&[2, 4, 3]), Layout::Nhwc).unwrap();
    assert_error(
        infer_shape(&Shape::new(&[2, 3, 4]), Layout::Nhwc),
        Status::FEATURE_MISMATCH,
        "input channel dimension (dim 2) is 4 but num_features is 3; \
         dim 1 is 3: is the tensor channels-first? set layout to BNORM_LAYOUT_NCHW",
    );
}

#[test]
fn buffers_a_flag_requires_are_null_pointer_when_left_out() {
    let shape = Shape::new(&[2, 3, 2]);
    let x = [
        0.5, 1.0, 2.0, -1.0, 0.0, 3.0, 1.5, 2.5, -2.0, 4.0, 0.25, 1.0,
    ];
    let mut y = [0.0; 12];
    let ones = [1.0; 3];
    let affine = Affine {
        gamma: &ones,
        beta: &ones,
    };

    assert_error(
        bnorm::forward_inference(&layer(3), &shape, &x, &mut y, &ones, &ones, None),
        Status::NULL_POINTER,
        "gamma is NULL but BNORM_FLAG_AFFINE is set",
    );
    assert_error(
        bnorm::forward_training(&layer(3), &shape, &x, &mut y, Some(affine), None, None),
        Status::NULL_POINTER,
        "running_mean is NULL but BNORM_FLAG_TRACK_RUNNING_STATS is set",
    );

    let input = BackwardInput {
        x: &x,
        y: None,
        gamma: None,
        mean: &ones,
        invstd: &ones,
    };
    assert_error(
        bnorm::backward(&layer(3), &shape, input, &x, None, ParamGrads::default()),
        Status::NULL_POINTER,
        "gamma is NULL but BNORM_FLAG_AFFINE is set",
    );
    let relu = layer(3).with_flags(Flags::FUSE_RELU);
    assert_error(
        bnorm::backward(&relu, &shape, input, &x, None, ParamGrads::default()),
        Status::NULL_POINTER,
        "y is NULL but BNORM_FLAG_FUSE_RELU is set",
    );
    // Without the flags, the same buffers are optional.
    let plain = layer(3).with_flags(Flags::empty());
    bnorm::forward_inference(&plain, &shape, &x, &mut y, &ones, &ones, None).unwrap();
    bnorm::forward_training(&plain, &shape, &x, &mut y, None, None, None).unwrap();
    bnorm::backward(&plain, &shape, input, &x, None, ParamGrads::default()).unwrap();
}

#[test]
fn batch_statistics_need_two_values_per_channel() {
    let desc = layer(3).with_flags(Flags::empty());
    let shape = Shape::new(&[1, 3, 1, 1]);
    let x = [1.0, 2.0, 3.0];
    let mut y = [0.0; 3];
    assert_error(
        bnorm::forward_training(&desc, &shape, &x, &mut y, None, None, None),
        Status::TOO_FEW_VALUES,
        "training needs more than 1 value per channel, got input of shape (1, 3, 1, 1)",
    );

    let ones = [1.0; 3];
    let input = BackwardInput {
        x: &x,
        y: None,
        gamma: None,
        mean: &ones,
        invstd: &ones,
    };
    let mut dx = [0.0; 3];
    assert_error(
        bnorm::backward(&desc, &shape, input, &x, Some(&mut dx), ParamGrads::default()),
        Status::TOO_FEW_VALUES,
        "training-mode backward needs more than 1 value per channel, got input of shape (1, 3, 1, 1)",
    );
    // Frozen statistics do not depend on the batch, so one value is enough.
    let frozen = desc.with_flags(Flags::USE_GLOBAL_STATS);
    bnorm::backward(
        &frozen,
        &shape,
        input,
        &x,
        Some(&mut dx),
        ParamGrads::default(),
    )
    .unwrap();
    assert_eq!(dx, x);
}

/// Every buffer of every function, sized for a 3-channel 2x3x2x2 NCHW tensor
/// and filled with a sentinel, for a layer that uses all of them.
struct Buffers {
    desc: Descriptor,
    shape: Shape,
    x: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    save_mean: Vec<f32>,
    save_invstd: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

impl Sentinels for Buffers {
    fn new() -> Buffers {
        let tensor = || vec![SENTINEL; 24];
        let channel = || vec![SENTINEL; 3];
        Buffers {
            desc: layer(3)
                .with_flags(Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU),
            shape: Shape::new(&[2, 3, 2, 2]),
            x: tensor(),
            y: tensor(),
            dy: tensor(),
            dx: tensor(),
            mean: channel(),
            var: channel(),
            gamma: channel(),
            beta: channel(),
            running_mean: channel(),
            running_var: channel(),
            save_mean: channel(),
            save_invstd: channel(),
            dgamma: channel(),
            dbeta: channel(),
        }
    }

    fn all(&self) -> Vec<&[f32]> {
        vec![
            &self.x,
            &self.y,
            &self.dy,
            &self.dx,
            &self.mean,
            &self.var,
            &self.gamma,
            &self.beta,
            &self.running_mean,
            &self.running_var,
            &self.save_mean,
            &self.save_invstd,
            &self.dgamma,
            &self.dbeta,
        ]
    }
}

impl Buffers {
    /// x and y, and the per-channel arguments of inference, borrowed apart.
    fn inference_args(&mut self) -> (&mut [f32], &mut [f32], &[f32], &[f32], Affine<'_>) {
        let affine = Affine {
            gamma: &self.gamma,
            beta: &self.beta,
        };
        (&mut self.x, &mut self.y, &self.mean, &self.var, affine)
    }

    fn inference(&mut self) -> Result<(), Error> {
        let (desc, shape) = (self.desc, self.shape);
        let (x, y, mean, var, affine) = self.inference_args();
        bnorm::forward_inference(&desc, &shape, x, y, mean, var, Some(affine))
    }

    fn inference_in_place(&mut self) -> Result<(), Error> {
        let (desc, shape) = (self.desc, self.shape);
        let (x, _, mean, var, affine) = self.inference_args();
        bnorm::forward_inference_in_place(&desc, &shape, x, mean, var, Some(affine))
    }

    /// x and y, and the per-channel arguments of training, borrowed apart.
    fn training_args(
        &mut self,
    ) -> (
        &mut [f32],
        &mut [f32],
        Affine<'_>,
        RunningStats<'_>,
        SaveStats<'_>,
    ) {
        (
            &mut self.x,
            &mut self.y,
            Affine {
                gamma: &self.gamma,
                beta: &self.beta,
            },
            RunningStats {
                mean: &mut self.running_mean,
                var: &mut self.running_var,
            },
            SaveStats {
                mean: &mut self.save_mean,
                invstd: &mut self.save_invstd,
            },
        )
    }

    fn training(&mut self) -> Result<(), Error> {
        let (desc, shape) = (self.desc, self.shape);
        let (x, y, affine, running, save) = self.training_args();
        bnorm::forward_training(&desc, &shape, x, y, Some(affine), Some(running), Some(save))
    }

    fn training_in_place(&mut self) -> Result<(), Error> {
        let (desc, shape) = (self.desc, self.shape);
        let (x, _, affine, running, save) = self.training_args();
        bnorm::forward_training_in_place(&desc, &shape, x, Some(affine), Some(running), Some(save))
    }

    /// What backward reads, the gradients it writes, dy and dx, borrowed apart.
    fn backward_args(&mut self) -> (BackwardInput<'_>, ParamGrads<'_>, &mut [f32], &mut [f32]) {
        (
            BackwardInput {
                x: &self.x,
                y: Some(&self.y),
                gamma: Some(&self.gamma),
                mean: &self.save_mean,
                invstd: &self.save_invstd,
            },
            ParamGrads {
                dgamma: Some(&mut self.dgamma),
                dbeta: Some(&mut self.dbeta),
            },
            &mut self.dy,
            &mut self.dx,
        )
    }

    fn backward(&mut self) -> Result<(), Error> {
        let (desc, shape) = (self.desc, self.shape);
        let (input, grads, dy, dx) = self.backward_args();
        bnorm::backward(&desc, &shape, input, dy, Some(dx), grads)
    }

    fn backward_in_place(&mut self) -> Result<(), Error> {
        let (desc, shape) = (self.desc, self.shape);
        let (input, grads, dy, _) = self.backward_args();
        bnorm::backward_in_place(&desc, &shape, input, dy, grads)
    }
}

type Call = fn(&mut Buffers) -> Result<(), Error>;
type Resize = fn(&mut Buffers);

#[test]
fn every_slice_length_is_checked_before_calling_c() {
    let cases: [(&str, Resize, Call, &str); 22] = [
        (
            "inference",
            |b| b.x.truncate(23),
            Buffers::inference,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "inference",
            |b| b.y.push(SENTINEL),
            Buffers::inference,
            "y has 25 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "inference",
            |b| b.mean.truncate(2),
            Buffers::inference,
            "mean has 2 elements but num_features is 3",
        ),
        (
            "inference",
            |b| b.var.push(SENTINEL),
            Buffers::inference,
            "var has 4 elements but num_features is 3",
        ),
        (
            "inference",
            |b| b.gamma.clear(),
            Buffers::inference,
            "gamma has 0 elements but num_features is 3",
        ),
        (
            "inference",
            |b| b.beta.truncate(1),
            Buffers::inference,
            "beta has 1 elements but num_features is 3",
        ),
        (
            "inference in place",
            |b| b.x.truncate(12),
            Buffers::inference_in_place,
            "x has 12 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "training",
            |b| b.x.truncate(23),
            Buffers::training,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "training",
            |b| b.y.truncate(23),
            Buffers::training,
            "y has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "training",
            |b| b.gamma.push(SENTINEL),
            Buffers::training,
            "gamma has 4 elements but num_features is 3",
        ),
        (
            "training",
            |b| b.running_mean.truncate(2),
            Buffers::training,
            "running mean has 2 elements but num_features is 3",
        ),
        (
            "training",
            |b| b.running_var.truncate(2),
            Buffers::training,
            "running var has 2 elements but num_features is 3",
        ),
        (
            "training",
            |b| b.save_mean.truncate(2),
            Buffers::training,
            "save mean has 2 elements but num_features is 3",
        ),
        (
            "training",
            |b| b.save_invstd.truncate(2),
            Buffers::training,
            "save invstd has 2 elements but num_features is 3",
        ),
        (
            "training in place",
            |b| b.x.push(SENTINEL),
            Buffers::training_in_place,
            "x has 25 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward",
            |b| b.dy.truncate(23),
            Buffers::backward,
            "dy has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward",
            |b| b.dx.truncate(23),
            Buffers::backward,
            "dx has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward",
            |b| b.x.truncate(23),
            Buffers::backward,
            "x has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward",
            |b| b.y.truncate(23),
            Buffers::backward,
            "y has 23 elements but shape [2, 3, 2, 2] has 24",
        ),
        (
            "backward",
            |b| b.save_invstd.truncate(2),
            Buffers::backward,
            "invstd has 2 elements but num_features is 3",
        ),
        (
            "backward",
            |b| b.dgamma.truncate(2),
            Buffers::backward,
            "dgamma has 2 elements but num_features is 3",
        ),
        (
            "backward in place",
            |b| b.dbeta.truncate(2),
            Buffers::backward_in_place,
            "dbeta has 2 elements but num_features is 3",
        ),
    ];
    for &(function, resize, call, message) in cases.iter() {
        assert_call_fails(function, resize, call, Status::LENGTH_MISMATCH, message);
    }
    // The same buffers at their right lengths pass the checks (and the
    // library then accepts the call), so the failures above are the lengths'.
    Buffers::new().inference().unwrap();
}

#[test]
fn a_failing_call_writes_nothing() {
    let calls: [(&str, Call); 6] = [
        ("forward_inference", Buffers::inference),
        ("forward_inference_in_place", Buffers::inference_in_place),
        ("forward_training", Buffers::training),
        ("forward_training_in_place", Buffers::training_in_place),
        ("backward", Buffers::backward),
        ("backward_in_place", Buffers::backward_in_place),
    ];
    for &(function, call) in calls.iter() {
        assert_call_fails(
            function,
            |b: &mut Buffers| b.desc = b.desc.with_eps(0.0),
            call,
            Status::INVALID_ARGUMENT,
            "eps is 0; it must be finite and > 0",
        );
    }
}

#[test]
fn errors_show_the_status_name_and_the_library_message() {
    let err = Descriptor::new(0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "BNORM_ERR_INVALID_DESCRIPTOR: num_features is 0; it must be > 0"
    );
    assert_eq!(
        format!("{:?}", err),
        "Error { status: BNORM_ERR_INVALID_DESCRIPTOR(2), message: \"num_features is 0; it must be > 0\" }"
    );
    // It is a std error, so `?` lifts it into the usual boxed error.
    fn build() -> Result<Descriptor, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Descriptor::new(-1)?)
    }
    assert_eq!(
        build().unwrap_err().to_string(),
        "BNORM_ERR_INVALID_DESCRIPTOR: num_features is -1; it must be > 0"
    );
}

#[test]
fn status_names_come_from_the_library() {
    let known = [
        (Status::OK, 0, "BNORM_OK"),
        (Status::NULL_POINTER, 1, "BNORM_ERR_NULL_POINTER"),
        (
            Status::INVALID_DESCRIPTOR,
            2,
            "BNORM_ERR_INVALID_DESCRIPTOR",
        ),
        (Status::INVALID_SHAPE, 3, "BNORM_ERR_INVALID_SHAPE"),
        (Status::FEATURE_MISMATCH, 4, "BNORM_ERR_FEATURE_MISMATCH"),
        (Status::INVALID_ARGUMENT, 5, "BNORM_ERR_INVALID_ARGUMENT"),
        (Status::TOO_FEW_VALUES, 6, "BNORM_ERR_TOO_FEW_VALUES"),
        (Status::ALIASING, 7, "BNORM_ERR_ALIASING"),
        (Status::UNSUPPORTED, 8, "BNORM_ERR_UNSUPPORTED"),
        (Status::OUT_OF_MEMORY, 9, "BNORM_ERR_OUT_OF_MEMORY"),
        (Status::INTERNAL, 10, "BNORM_ERR_INTERNAL"),
        (Status::LENGTH_MISMATCH, -1, "BNORM_RUST_LENGTH_MISMATCH"),
    ];
    for &(status, code, name) in known.iter() {
        assert_eq!(status.code(), code);
        assert_eq!(Status::from_code(code), status);
        assert_eq!(status.name(), name);
        assert!(status.to_string().starts_with(&format!("{}: ", name)));
    }
    // A code from a newer library stays representable and printable.
    let future = Status::from_code(42);
    assert_eq!(future.name(), "BNORM_ERR_UNKNOWN");
    assert_eq!(format!("{:?}", future), "BNORM_ERR_UNKNOWN(42)");
}
