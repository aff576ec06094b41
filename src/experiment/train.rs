//! `wgseg train`: the loop that turns an experiment file into a run folder with
//! metrics, checkpoints, plots, pictures and a report. An experiment's `baselines`
//! are trained after it with the same seed and budget, each a complete run in
//! <run>/baselines/<name>/, and the run's report puts them side by side; `--resume`
//! continues whichever of them is unfinished. A file with `stages` trains them one
//! after another in each arm, scoring the network after each; checkpoints and
//! records name their stage, and `--resume` continues inside it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::checkpoint::{restore, resume_method, save_checkpoint, snapshot};
use super::config::Experiment;
use super::datasets::Data;
use super::dry_run::print_plan;
use super::evaluate::{evaluate, evaluate_backbone, probe, record, save_centroids, BACKBONE};
use super::load;
use super::progress::bar;
use super::report::{self, Baseline, Report};
use super::run_dir::{RunDir, CHECKPOINT, CONFIG};
use super::seeds_report;
use super::setup::{build_method, open_device};
use super::stages::{self, Stage};
use super::validate::{self, baselines, check, BaselineArm};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io;
use crate::optim::schedule::learning_rate;

pub struct TrainArgs {
    pub file: Option<PathBuf>,
    pub sets: Vec<String>,
    pub dry_run: bool,
    /// A run folder to continue from its last checkpoint.
    pub resume: Option<PathBuf>,
    /// Stop after this step (checkpointed), to continue later with `resume`; the
    /// steps of the baselines count after the experiment's.
    pub stop_at: Option<usize>,
}

/// `record` naming the stage, when the run has stages.
fn in_stage(mut rec: Value, stage: &Stage) -> Value {
    if let Some(name) = &stage.name {
        rec["stage"] = json!(name);
    }
    rec
}

/// Trains `exp` (its stages `plan`) in `dir` from scratch, from its checkpoint, or
/// not at all when its report exists; the report, or `None` when it stopped at
/// `stop_at`.
fn run_arm(
    gpu: &Gpu,
    exp: &Experiment,
    plan: &[Stage],
    dir: &Path,
    data: &mut Data,
    stop_at: Option<usize>,
) -> Result<Option<Report>> {
    let checkpoint = dir.join(CHECKPOINT);
    if let Some(done) = report::read(dir)? {
        // A finished arm is not trained again, but a checkpoint that no longer reads
        // back is said now, not when someone next needs its weights.
        if checkpoint.is_file() {
            io::read_host(&checkpoint)?;
        }
        return Ok(Some(done));
    }
    let sets = data.open(&exp.data)?;
    let (train_sets, val_set) = (sets.train_sets(), sets.eval());
    let (mut run, start, mut method) = if checkpoint.is_file() {
        let (step, method) = resume_method(gpu, &checkpoint, plan)?;
        (RunDir::resume(dir, step)?, step, method)
    } else {
        // Built first: a model that cannot be built (a pretrained file that does not
        // fit) leaves no run folder behind.
        let method = build_method(gpu, &plan[0].exp)?;
        let run = RunDir::create_at(dir)?;
        run.write_config(exp)?;
        (run, 0, method)
    };
    let started = Instant::now();
    if start == 0 {
        let before = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
        let p = probe(gpu, method.as_ref(), exp, &sets.train, val_set)?;
        run.log(&record(0, "start", &before, p.as_ref()))?;
        println!("start           {}", before.summary());
        if let Some(b) = evaluate_backbone(gpu, method.as_ref(), exp, val_set)? {
            run.log(&record(0, BACKBONE, &b, None))?;
            println!(
                "backbone        {} (its features, dataset masks)",
                b.summary()
            );
        }
    }
    let iters = exp.schedule.iters;
    let pb = bar(iters as u64, "train");
    pb.set_position(start as u64);
    let end = stop_at.map_or(iters, |s| s.clamp(start, iters));
    let first = stages::at(plan, start);
    let mut step = start;
    // Time spent in steps since the last log. Reading the logged scalars waits for the
    // GPU, so timing the steps together with that read covers all of their work.
    let (mut step_time, mut timed) = (std::time::Duration::ZERO, 0u32);
    let mut last_saved = (start > 0).then_some(start);
    for (i, stage) in plan.iter().enumerate().skip(first) {
        let last = i + 1 == plan.len();
        if i > first {
            // A stage is a new method of the stage's settings, with the state so far.
            let (tensors, meta) = snapshot(method.as_mut())?;
            method = build_method(gpu, &stage.exp)?;
            restore(method.as_mut(), &tensors.into_iter().collect(), &meta)?;
        }
        let schedule = &stage.exp.schedule;
        while step < end.min(stage.end) {
            let factor = learning_rate(
                1.0,
                &schedule.policy,
                schedule.warmup.as_ref(),
                step - stage.start,
                schedule.iters,
            );
            let t0 = Instant::now();
            let stepped = method.step(&train_sets, step, factor);
            step_time += t0.elapsed();
            timed += 1;
            let done = step + 1;
            let scalars = match stepped {
                Err(Error::NonFinite { step: bad, what }) => {
                    // Only `skip` refuses a step at once; it logs the step and goes on.
                    let rec = json!({"step": bad, "kind": report::SKIPPED, "nonfinite": what});
                    run.log(&in_stage(rec, stage))?;
                    pb.suspend(|| println!("step {bad} skipped: {what}"));
                    None
                }
                r => Some(r?),
            };
            let logs = done % exp.output.log_every == 0 || done == iters;
            // A finished stage is checkpointed after its evaluation, below.
            let stage_done = done == stage.end && !last;
            let saves = (done % exp.output.checkpoint_every == 0 || done == end) && !stage_done;
            if logs || saves || done == stage.end {
                // `stop` learns of a step that was not finite here, before anything
                // of it is logged or saved.
                if let Some(bad) = method.first_nonfinite()? {
                    return Err(Error::Usage(format!(
                        "step {}: {}: training diverged (a smaller optim.lr may help, or output.on_nonfinite: skip); {}",
                        bad.step,
                        bad.what,
                        kept(last_saved, &run.path)
                    )));
                }
            }
            if let Some(scalars) = scalars.filter(|_| logs) {
                let lr = method.optimizer().lr();
                let mut rec = json!({"step": done, "kind": "train", "lr": lr});
                let t0 = Instant::now();
                // Every scalar is finite: the flags were read above.
                for (name, v) in &scalars {
                    rec[*name] = json!(v.item()?);
                }
                step_time += t0.elapsed();
                rec["step_ms"] = json!(step_time.as_secs_f64() * 1e3 / f64::from(timed));
                (step_time, timed) = (std::time::Duration::ZERO, 0);
                pb.set_message(format!(
                    "loss {:.4}",
                    rec["loss"].as_f64().unwrap_or(f64::NAN)
                ));
                run.log(&in_stage(rec, stage))?;
            }
            if exp.eval.every > 0 && done % exp.eval.every == 0 && done < iters {
                let e = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
                run.log(&in_stage(record(done, "trained", &e, None), stage))?;
            }
            if saves {
                // save_checkpoint refuses weights that are not finite.
                save_checkpoint(&run, method.as_mut(), done, stage)
                    .map_err(|e| Error::Usage(format!("{e}; {}", kept(last_saved, &run.path))))?;
                last_saved = Some(done);
            }
            pb.inc(1);
            step = done;
        }
        if step < stage.end || last {
            break;
        }
        let e = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
        run.log(&in_stage(record(step, "trained", &e, None), stage))?;
        let name = stage.name.as_deref().unwrap_or_default();
        pb.suspend(|| println!("stage {name:<10} {}", e.summary()));
        save_checkpoint(&run, method.as_mut(), step, stage)?;
    }
    pb.finish_and_clear();
    if end < iters {
        println!("stopped at step {end} of {iters}");
        return Ok(None);
    }
    let evaluated = evaluate(gpu, method.as_ref(), exp, val_set)?;
    save_centroids(gpu, &run, &evaluated)?;
    let p = probe(gpu, method.as_ref(), exp, &sets.train, val_set)?;
    let last = &plan[plan.len() - 1];
    run.log(&in_stage(
        record(iters, "trained", &evaluated.eval, p.as_ref()),
        last,
    ))?;
    report::write(
        &run,
        exp,
        gpu,
        started.elapsed().as_secs_f64(),
        val_set,
        &evaluated.predictions,
    )
    .map(Some)
}

/// Runs (or resumes) an experiment and its baselines; returns the report.
pub fn train(args: &TrainArgs) -> Result<Option<Report>> {
    let (file, exp, resume) = match &args.resume {
        Some(dir) => {
            if !args.sets.is_empty() {
                return Err(Error::Usage(
                    "--resume continues a run with its saved config; --set cannot change it".into(),
                ));
            }
            let file = dir.join(CONFIG);
            let exp = load::load(&file, &[])?;
            (file, exp, Some(dir.clone()))
        }
        None => {
            let file = args.file.as_ref().ok_or_else(|| {
                Error::Usage("wgseg train: give an experiment file (or --resume RUN_DIR)".into())
            })?;
            (file.clone(), load::load(file, &args.sets)?, None)
        }
    };
    let plan = check(&file, &exp)?;
    let baselines = baselines(&file, &exp)?;
    let gpu = open_device(&exp)?;
    // Every stage's method is built once, so a bad stage setting fails now.
    for s in &plan {
        build_method(&gpu, &s.exp)?;
    }
    let mut data = Data::default();
    if args.dry_run {
        let sets = data.open(&exp.data)?;
        let mut method = build_method(&gpu, &plan[0].exp)?;
        print_plan(&gpu, &exp, &plan, method.as_mut(), sets)?;
        if !exp.seeds.is_empty() {
            println!(
                "seeds           {:?}: every arm trained once per seed",
                exp.seeds
            );
        }
        for b in &baselines {
            build_method(&gpu, &b.exp)?;
            println!("baseline        {}: {}", b.name, b.overrides.join(", "));
        }
        return Ok(None);
    }
    // What a run opens and builds is tried before its folder exists, so a failed
    // start leaves nothing behind.
    data.open(&exp.data)?;
    for b in &baselines {
        build_method(&gpu, &b.exp)?;
    }
    let fresh = resume.is_none();
    let created = [exp.output.dir.join(&exp.name), exp.output.dir.clone()]
        .into_iter()
        .filter(|d| !d.exists())
        .collect::<Vec<_>>();
    let root = match resume {
        Some(path) => path,
        None => {
            let d = RunDir::create(&exp.output.dir, &exp.name)?;
            d.write_config(&exp)?;
            d.path
        }
    };
    let result = run_in(&gpu, &file, &exp, &plan, baselines, &root, &mut data, args);
    // A run that failed before it trained a step (a batch the adapter cannot hold, a
    // start that diverged at once) leaves nothing behind, as a refused start does.
    if result.is_err() && fresh && !holds_training(&root) {
        let _ = std::fs::remove_dir_all(&root);
        for d in created {
            let _ = std::fs::remove_dir(d);
        }
    }
    result
}

/// Whether a run folder holds anything a run trained: a checkpoint or a logged step.
fn holds_training(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        match path.file_name().and_then(|n| n.to_str()) {
            _ if path.is_dir() => holds_training(&path),
            Some(CHECKPOINT) => true,
            Some(super::run_dir::METRICS) => {
                std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"kind\":\"train\""))
            }
            _ => false,
        }
    })
}

/// Trains the arms (of every seed) of a run whose folder `root` exists.
#[allow(clippy::too_many_arguments)]
fn run_in(
    gpu: &Gpu,
    file: &Path,
    exp: &Experiment,
    plan: &[Stage],
    baselines: Vec<BaselineArm>,
    root: &Path,
    data: &mut Data,
    args: &TrainArgs,
) -> Result<Option<Report>> {
    println!("run folder      {}", root.display());
    let stopped = || {
        println!("continue with: wgseg train --resume {}", root.display());
        Ok(None)
    };
    if exp.seeds.is_empty() {
        // A run that starts now prints its start and stages as it goes.
        let fresh = !root.join(CHECKPOINT).is_file() && report::read(root)?.is_none();
        let Some(report) = run_arms(gpu, exp, plan, baselines, root, data, args.stop_at)? else {
            return stopped();
        };
        report::print_summary(&report, !fresh);
        return Ok(Some(report));
    }
    // --stop-at counts every seed's arms one after another.
    let seed_steps = (1 + baselines.len()) * exp.schedule.iters;
    let mut reports = Vec::new();
    for (k, &seed) in exp.seeds.iter().enumerate() {
        let e = with_seed(exp, seed);
        let (plan, arms) = (check(file, &e)?, validate::baselines(file, &e)?);
        let dir = root.join("seeds").join(seed.to_string());
        println!("seed            {seed}: {}", dir.display());
        let stop = args.stop_at.map(|s| s.saturating_sub(k * seed_steps));
        let Some(r) = run_arms(gpu, &e, &plan, arms, &dir, data, stop)? else {
            return stopped();
        };
        reports.push((seed, r));
    }
    let summary = seeds_report::write(root, &reports)?;
    seeds_report::print(&summary);
    Ok(reports.into_iter().next().map(|(_, r)| r))
}

/// `exp` trained with training seed `seed` alone: one of the runs of its `seeds`.
fn with_seed(exp: &Experiment, seed: u64) -> Experiment {
    Experiment {
        seed,
        seeds: Vec::new(),
        ..exp.clone()
    }
}

/// Trains the experiment `exp` in `root` and then each of its `baselines` in
/// root/baselines/<name>; the experiment's report with the baselines' beside it, or
/// `None` when it stopped at `stop_at` (counting the arms' steps one after another).
fn run_arms(
    gpu: &Gpu,
    exp: &Experiment,
    plan: &[Stage],
    baselines: Vec<BaselineArm>,
    root: &Path,
    data: &mut Data,
    stop_at: Option<usize>,
) -> Result<Option<Report>> {
    // --stop-at counts the steps of the arms one after another (all have `iters`).
    let iters = exp.schedule.iters;
    let stop_in = |arm: usize| stop_at.map(|s| s.saturating_sub(arm * iters));
    let Some(mut report) = run_arm(gpu, exp, plan, root, data, stop_in(0))? else {
        return Ok(None);
    };
    let mut done = Vec::new();
    for (i, b) in baselines.into_iter().enumerate() {
        let BaselineArm {
            name,
            overrides,
            exp: b,
            plan,
        } = b;
        let dir = root.join("baselines").join(&name);
        println!(
            "baseline        {name} ({}): {}",
            overrides.join(", "),
            dir.display()
        );
        let Some(r) = run_arm(gpu, &b, &plan, &dir, data, stop_in(i + 1))? else {
            return Ok(None);
        };
        done.push(Baseline {
            name,
            overrides,
            report: r,
        });
    }
    if !done.is_empty() {
        report::write_with_baselines(root, &mut report, done)?;
    }
    Ok(Some(report))
}

/// Which checkpoint of `run` a stopped run leaves.
fn kept(last_saved: Option<usize>, run: &Path) -> String {
    match last_saved {
        Some(s) => format!("the checkpoint of step {s} in {} is kept", run.display()),
        None => "no checkpoint was written yet".into(),
    }
}
