//! Calls from several threads at once: results equal to serial calls, and
//! each thread's errors carry that thread's own message.

mod common;

use std::sync::Barrier;
use std::thread;

use bnorm::{Affine, Descriptor, Flags, Layout, Shape, Status};
use common::{raw_last_error, Rng, Training, View};

const THREADS: usize = 4;

/// One unit of work: a training forward then an inference, of one shape.
#[derive(Clone)]
struct Job {
    desc: Descriptor,
    shape: Shape,
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

#[derive(Debug, PartialEq)]
struct Outputs {
    training: Training,
    infer_y: Vec<f32>,
}

impl Job {
    fn random(rng: &mut Rng, index: usize) -> Job {
        let layout = if index % 2 == 0 {
            Layout::Nchw
        } else {
            Layout::Nhwc
        };
        let channels = rng.pick(&[1, 3, 17, 8]);
        let rank = 2 + index % 4;
        let shape = common::random_shape(rng, layout, rank, channels, 2);
        let view = View::new(&shape, layout);
        // Thread counts differ between the serial and the concurrent run
        // below: the contract makes results independent of them.
        let desc = Descriptor::new(channels)
            .unwrap()
            .with_layout(layout)
            .with_flags(Flags::AFFINE | Flags::TRACK_RUNNING_STATS | Flags::FUSE_RELU);
        Job {
            desc,
            shape,
            x: common::random_input(rng, &view),
            gamma: rng.vec(view.channels, 0.5, 1.5),
            beta: rng.vec(view.channels, -0.5, 0.5),
        }
    }

    fn run(&self, num_threads: i32) -> Outputs {
        let desc = self.desc.with_num_threads(num_threads);
        let channels = self.gamma.len();
        let affine = Affine {
            gamma: &self.gamma,
            beta: &self.beta,
        };
        let training = Training::run(
            &desc,
            &self.shape,
            &self.x,
            Some(affine),
            (vec![0.0; channels], vec![1.0; channels]),
            0.0,
        )
        .unwrap();
        let mut infer_y = self.x.clone();
        bnorm::forward_inference_in_place(
            &desc,
            &self.shape,
            &mut infer_y,
            &training.running_mean,
            &training.running_var,
            Some(affine),
        )
        .unwrap();
        Outputs { training, infer_y }
    }
}

#[test]
fn concurrent_calls_give_the_serial_results() {
    let mut rng = Rng::new(7);
    let jobs: Vec<Job> = (0..16).map(|i| Job::random(&mut rng, i)).collect();
    let serial: Vec<Outputs> = jobs.iter().map(|job| job.run(0)).collect();

    // Each thread walks all jobs from its own starting point, so different
    // shapes and layouts run at the same moment.
    let start = Barrier::new(THREADS);
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (jobs, serial, start) = (&jobs, &serial, &start);
            scope.spawn(move || {
                start.wait();
                for round in 0..jobs.len() {
                    let i = (t * 5 + round) % jobs.len();
                    let threads = (round % 3) as i32;
                    assert!(
                        jobs[i].run(threads) == serial[i],
                        "job {} differs on thread {}",
                        i,
                        t
                    );
                }
            });
        }
    });
}

#[test]
fn each_thread_sees_its_own_error_message() {
    // Thread t feeds a (t + 10)-channel tensor to a (t + 20)-channel layer, so
    // every thread's mismatch names different numbers.
    let start = Barrier::new(THREADS);
    thread::scope(|scope| {
        for t in 0..THREADS as i64 {
            let start = &start;
            scope.spawn(move || {
                let (layer, input) = (t + 20, t + 10);
                let desc = Descriptor::new(layer).unwrap();
                let wrong = Shape::new(&[2, input, 3]);
                let right = Shape::new(&[2, layer, 3]);
                let x_wrong = vec![1.0; 2 * input as usize * 3];
                let x_right = vec![1.0; 2 * layer as usize * 3];
                let ones = vec![1.0; layer as usize];
                let affine = Some(Affine {
                    gamma: &ones,
                    beta: &ones,
                });
                let expected = format!(
                    "input channel dimension (dim 1) is {} but num_features is {}",
                    input, layer
                );
                start.wait();
                for _ in 0..200 {
                    let mut y = vec![0.0; x_wrong.len()];
                    let err = bnorm::forward_inference(
                        &desc, &wrong, &x_wrong, &mut y, &ones, &ones, affine,
                    )
                    .unwrap_err();
                    assert_eq!(err.status(), Status::FEATURE_MISMATCH);
                    assert!(err.message().starts_with(&expected), "{}", err);
                    // Successes in between clear the message, on this thread only.
                    let mut y = vec![0.0; x_right.len()];
                    bnorm::forward_inference(&desc, &right, &x_right, &mut y, &ones, &ones, affine)
                        .unwrap();
                }
            });
        }
    });
}

#[test]
fn the_library_keeps_the_last_error_per_thread() {
    // The binding reads bnorm_last_error() right after each call; this shows
    // that it could not pick up another thread's message even if it waited:
    // thread A fails, then thread B fails differently and succeeds, and A
    // still reads its own message.
    let a_failed = Barrier::new(2);
    let b_done = Barrier::new(2);
    thread::scope(|scope| {
        scope.spawn(|| {
            assert!(Descriptor::new(-7).is_err());
            a_failed.wait();
            b_done.wait();
            assert_eq!(raw_last_error(), "num_features is -7; it must be > 0");
        });
        scope.spawn(|| {
            a_failed.wait();
            assert!(Descriptor::new(-99).is_err());
            assert!(Descriptor::new(4).is_ok());
            assert_eq!(raw_last_error(), "");
            b_done.wait();
        });
    });
}
