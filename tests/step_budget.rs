//! What a warm training step of the quickstart costs besides its kernels: no buffer
//! allocations, one queue submission, no host read-back (scalars stay on the GPU until
//! they are logged).

mod common;

use std::path::Path;

use wgseg::data::dataset;
use wgseg::experiment::load::load;
use wgseg::experiment::setup::build_method;
use wgseg::method::TrainSets;
use wgseg::Gpu;

#[test]
fn a_warm_quickstart_step_allocates_nothing_submits_once_and_reads_nothing() {
    // The quickstart's network and method, on fewer and smaller images.
    let sets: Vec<String> = common::tiny_quickstart_sets()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let exp = load(Path::new("experiments/quickstart.yaml"), &sets).unwrap();
    let gpu = Gpu::new().unwrap();
    let (train, _) = dataset::open(&exp.data, &mut || {}).unwrap();
    let mut method = build_method(&gpu, &exp).unwrap();
    let sets = TrainSets {
        source: &train,
        target: None,
    };
    // Warm-up: pipelines, pooled buffers, optimiser state and the queue fill up. The
    // scalars of a step live on while the next one runs, as in the training loop.
    let mut last = Vec::new();
    for step in 0..4 {
        last = method.step(&sets, step, 0.2).unwrap();
    }
    gpu.flush().unwrap();
    let (allocations, submissions, readbacks) = (
        gpu.pool_stats().allocations,
        gpu.submissions(),
        gpu.readbacks(),
    );
    let steps = 3;
    for step in 4..4 + steps {
        last = method.step(&sets, step, 0.2).unwrap();
    }
    gpu.flush().unwrap();
    assert_eq!(
        gpu.pool_stats().allocations,
        allocations,
        "warm steps allocated buffers"
    );
    assert_eq!(
        gpu.submissions() - submissions,
        steps as u64,
        "queue submissions in {steps} steps"
    );
    assert_eq!(gpu.readbacks(), readbacks, "a step read data back");
    // Logging reads each scalar once.
    for (name, t) in &last {
        assert!(t.item().unwrap().is_finite(), "{name}");
    }
    assert_eq!(gpu.readbacks() - readbacks, last.len() as u64);
}
