//! `wgseg profile X.yaml`: where a training step's time goes. A few warm steps are
//! timed as they run (the real step time, dispatches and submissions per step), then
//! the same number again with every kernel timed alone by an isolated submission (see
//! gpu::profile), and a table shows each kernel and op family's share. Nothing is
//! written: the method is built and stepped in memory only.

use std::path::Path;
use std::time::{Duration, Instant};

use super::datasets::Data;
use super::load;
use super::setup::{build_method, open_device};
use super::validate::check;
use crate::error::{Error, Result};
use crate::gpu::profile::{KernelTime, Profile};

pub struct ProfileArgs<'a> {
    pub file: &'a Path,
    pub sets: &'a [String],
    /// Steps timed in each pass.
    pub steps: usize,
    /// Rows of the per-kernel table (the slowest first).
    pub top: usize,
}

/// What one pass of steps measured.
struct Pass {
    wall: Duration,
    dispatches: u64,
    submissions: u64,
    readbacks: u64,
}

pub fn profile(args: &ProfileArgs) -> Result<()> {
    if args.steps == 0 {
        return Err(Error::Usage(
            "wgseg profile: --steps must be at least 1".into(),
        ));
    }
    let exp = load::load(args.file, args.sets)?;
    let plan = check(args.file, &exp)?;
    let gpu = open_device(&exp)?;
    let mut data = Data::default();
    let sets = data.open(&exp.data)?;
    let train = sets.train_sets();
    let mut method = build_method(&gpu, &plan[0].exp)?;
    let mut step = 0usize;
    let mut run_steps = |n: usize| -> Result<Pass> {
        let (d0, s0, r0) = (gpu.dispatches(), gpu.submissions(), gpu.readbacks());
        let t0 = Instant::now();
        for _ in 0..n {
            method.step(&train, step, 1.0)?;
            step += 1;
        }
        gpu.sync()?;
        Ok(Pass {
            wall: t0.elapsed(),
            dispatches: gpu.dispatches() - d0,
            submissions: gpu.submissions() - s0,
            readbacks: gpu.readbacks() - r0,
        })
    };
    // The first step compiles every pipeline and fills the buffer pool.
    run_steps(1)?;
    let real = run_steps(args.steps)?;
    gpu.start_profile()?;
    let timed = run_steps(args.steps);
    let recorded = gpu.stop_profile().unwrap_or_default();
    let timed = timed?;
    print_report(&exp.name, &gpu.info.name, args, &real, &timed, &recorded);
    Ok(())
}

fn per_step(d: Duration, steps: usize) -> f64 {
    d.as_secs_f64() * 1e3 / steps as f64
}

fn print_report(
    name: &str,
    adapter: &str,
    args: &ProfileArgs,
    real: &Pass,
    timed: &Pass,
    p: &Profile,
) {
    let n = args.steps;
    let real_ms = per_step(real.wall, n);
    println!("experiment      {name} on {adapter}, {n} steps per pass");
    println!(
        "step            {real_ms:.1} ms; {} dispatches and copies, {} submissions, {} read-backs per step",
        real.dispatches / n as u64,
        real.submissions / n as u64,
        real.readbacks / n as u64
    );
    let kernels_ms = per_step(p.total(), n);
    let profiled_ms = per_step(timed.wall, n);
    println!(
        "profiled step   {profiled_ms:.1} ms with every kernel submitted alone: kernels {kernels_ms:.1} ms, \
         host work and waits {:.1} ms",
        profiled_ms - kernels_ms
    );
    let table = |title: &str, rows: Vec<(&String, &KernelTime)>, limit: usize| {
        println!();
        println!(
            "{title:<44} {:>7} {:>10} {:>7}",
            "calls", "ms/step", "share"
        );
        let mut rows = rows;
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.time));
        for (k, t) in rows.iter().take(limit) {
            let ms = per_step(t.time, n);
            println!(
                "{k:<44} {:>7} {ms:>10.2} {:>6.1}%",
                t.calls / n as u64,
                100.0 * ms / profiled_ms
            );
        }
        if rows.len() > limit {
            println!("({} more)", rows.len() - limit);
        }
    };
    let families = p.families();
    table(
        "op family (shader file)",
        families.iter().collect(),
        usize::MAX,
    );
    table(
        "kernel (shader:entry)",
        p.kernels.iter().collect(),
        args.top,
    );
}
