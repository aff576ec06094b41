//! Kernel benchmarks shared by `wgseg bench` and the criterion benches: each case
//! prepares its inputs once, then times whole GPU round trips (dispatch + wait).

mod cases;

use std::time::Instant;

use crate::error::Result;
use crate::gpu::Gpu;

pub use cases::all;

/// What one run of a case does, for throughput figures.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Floating-point operations (2 per multiply-add).
    Flops(f64),
    /// Bytes read plus written.
    Bytes(f64),
}

/// A prepared run: records the case's dispatches (the caller waits for them).
pub type Run = Box<dyn FnMut() -> Result<()>>;

/// Builds a case's inputs on a device and returns its run.
pub type Prepare = Box<dyn Fn(&Gpu) -> Result<Run>>;

pub struct BenchCase {
    pub name: &'static str,
    pub shape: String,
    pub work: Work,
    pub prepare: Prepare,
}

/// One measured case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    pub name: String,
    pub shape: String,
    /// Median milliseconds per run.
    pub ms: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
}

/// Times `case`: `warmup` untimed runs, then the median of `iters` runs, each waited on.
pub fn measure(gpu: &Gpu, case: &BenchCase, warmup: usize, iters: usize) -> Result<Measurement> {
    let mut run = (case.prepare)(gpu)?;
    for _ in 0..warmup {
        run()?;
        gpu.sync()?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        run()?;
        gpu.sync()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let ms = times[times.len() / 2];
    let (gflops, gbps) = match case.work {
        Work::Flops(f) => (Some(f / ms / 1e6), None),
        Work::Bytes(b) => (None, Some(b / ms / 1e6)),
    };
    Ok(Measurement {
        name: case.name.to_string(),
        shape: case.shape.clone(),
        ms,
        gflops,
        gbps,
    })
}
