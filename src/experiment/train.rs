//! `wgseg train`: the loop that turns an experiment file into a run folder with
//! metrics, checkpoints, plots, pictures and a report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::config::{BackboneKind, DataSource, Experiment, MethodCfg};
use super::progress::bar;
use super::report::{self, Report};
use super::run_dir::{RunDir, CHECKPOINT, CONFIG};
use crate::autograd::Var;
use crate::data::dataset::{self, Dataset};
use crate::error::{Error, Result};
use crate::eval::linear_probe;
use crate::eval::metrics::Scores;
use crate::eval::unsupervised::{self, ClusterOutcome};
use crate::gpu::adapter::AdapterChoice;
use crate::gpu::Gpu;
use crate::io;
use crate::method::maskcontrast::MaskContrast;
use crate::method::Method;
use crate::nn::module::{parameters, state_dict, Module, State};
use crate::optim::schedule::learning_rate;

pub struct TrainArgs {
    pub file: Option<PathBuf>,
    pub sets: Vec<String>,
    pub dry_run: bool,
    /// A run folder to continue from its last checkpoint.
    pub resume: Option<PathBuf>,
    /// Stop after this step (checkpointed), to continue later with `resume`.
    pub stop_at: Option<usize>,
}

/// Refuses values no run can use, naming the key.
fn validate(exp: &Experiment) -> Result<()> {
    let bad = |key: &str, why: &str| Err(Error::Usage(format!("{key}: {why}")));
    if exp.data.batch_size < 2 {
        return bad(
            "data.batch_size",
            "must be at least 2 (the other images are the negatives)",
        );
    }
    if exp.data.image_size < 16 {
        return bad("data.image_size", "must be at least 16");
    }
    if !(0.0..=180.0).contains(&exp.augment.rotation) {
        return bad("augment.rotation", "must be between 0 and 180 degrees");
    }
    let sigma = exp.augment.blur.sigma;
    if !(sigma[0] > 0.0 && sigma[0] <= sigma[1]) {
        return bad(
            "augment.blur.sigma",
            "must be [low, high] with 0 < low <= high",
        );
    }
    if exp.schedule.iters == 0 {
        return bad("schedule.iters", "must be at least 1");
    }
    if exp.optim.lr <= 0.0 {
        return bad("optim.lr", "must be positive");
    }
    if exp.output.log_every == 0 || exp.output.checkpoint_every == 0 {
        return bad(
            "output",
            "log_every and checkpoint_every must be at least 1",
        );
    }
    if let DataSource::Synthetic { train, .. } = exp.data.source {
        if train < exp.data.batch_size {
            return bad("data.source.train", "must hold at least one batch");
        }
    }
    Ok(())
}

fn open_device(exp: &Experiment) -> Result<Gpu> {
    let gpu = Gpu::with_choice(&AdapterChoice {
        backend: exp.device.backend.clone(),
        name: exp.device.adapter.clone(),
    })?;
    if let Some(dir) = &exp.device.shader_dir {
        if !dir.is_dir() {
            return Err(Error::file(dir, "device.shader_dir is not a directory"));
        }
        gpu.set_shader_dir(Some(dir.clone()));
    }
    Ok(gpu)
}

fn build_method(gpu: &Gpu, exp: &Experiment) -> Result<Box<dyn Method>> {
    match exp.method {
        MethodCfg::Maskcontrast { .. } => Ok(Box::new(MaskContrast::new(gpu, exp)?)),
    }
}

fn eval_kmeans(
    gpu: &Gpu,
    method: &dyn Method,
    exp: &Experiment,
    val: &Dataset,
) -> Result<ClusterOutcome> {
    method.model().set_training(false);
    let pb = bar(exp.eval.kmeans.seeds.len() as u64, "k-means");
    let embed = |x: &Var| method.embed(x);
    let r = unsupervised::evaluate(
        gpu,
        &embed,
        val,
        exp.data.image_size,
        exp.data.batch_size,
        exp.eval.limit,
        &exp.eval.kmeans,
        &mut || pb.inc(1),
    );
    pb.finish_and_clear();
    r
}

/// Class centroids in embedding space, for `wgseg infer`.
pub const CENTROIDS: &str = "clusters.safetensors";

fn save_centroids(gpu: &Gpu, dir: &RunDir, outcome: &ClusterOutcome) -> Result<()> {
    let rows = &outcome.class_centroids;
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let t = crate::tensor::Tensor::from_slice(gpu, &flat, &[rows.len(), rows[0].len()])?;
    io::write(&dir.file(CENTROIDS), &[("centroids".to_string(), t)])
}

/// The linear probe of the experiment, when it has one.
fn eval_probe(
    gpu: &Gpu,
    method: &dyn Method,
    exp: &Experiment,
    train: &Dataset,
    val: &Dataset,
) -> Result<Option<Scores>> {
    let Some(cfg) = &exp.eval.linear_probe else {
        return Ok(None);
    };
    method.model().set_training(false);
    let pb = bar(cfg.iters as u64, "probe");
    let embed = |x: &Var| method.embed(x);
    let r = linear_probe::evaluate(
        gpu,
        &embed,
        train,
        val,
        exp.data.image_size,
        exp.data.batch_size,
        exp.eval.limit,
        cfg,
        exp.seed,
        &mut || pb.inc(1),
    );
    pb.finish_and_clear();
    r.map(Some)
}

fn save_checkpoint(dir: &RunDir, method: &dyn Method, step: usize) -> Result<()> {
    let mut tensors: Vec<(String, crate::tensor::Tensor)> = state_dict(method.model())
        .into_iter()
        .map(|(n, s)| (format!("model.{n}"), s.tensor()))
        .collect();
    let (extra, mut meta) = method.extra_state();
    tensors.extend(extra);
    meta.insert("step".into(), step.to_string());
    io::write_with_metadata(&dir.file(CHECKPOINT), &tensors, Some(meta))
}

/// Restores model and method state; returns the step to continue from.
fn load_checkpoint(gpu: &Gpu, path: &Path, method: &mut dyn Method) -> Result<usize> {
    let meta = io::read_metadata(path)?;
    let step: usize = meta
        .get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::file(
                path,
                "not a wgseg training checkpoint (no step in its metadata)",
            )
        })?;
    let tensors: HashMap<String, crate::tensor::Tensor> =
        io::read(gpu, path)?.into_iter().collect();
    for (name, s) in state_dict(method.model()) {
        let key = format!("model.{name}");
        let t = tensors
            .get(&key)
            .ok_or_else(|| Error::file(path, format!("checkpoint has no tensor {key}")))?;
        let current = s.tensor();
        if t.shape() != current.shape() {
            return Err(Error::file(
                path,
                format!(
                    "tensor {key} has shape {:?}, the model expects {:?}",
                    t.shape(),
                    current.shape()
                ),
            ));
        }
        match s {
            State::Param(v) => v.set_value(t.clone())?,
            State::Buffer(b) => b.write(&t.to_vec()?)?,
        }
    }
    method
        .load_extra_state(&tensors, &meta)
        .map_err(|e| Error::file(path, e))?;
    Ok(step)
}

fn print_plan(
    gpu: &Gpu,
    exp: &Experiment,
    method: &mut dyn Method,
    train: &Dataset,
    val: &Dataset,
) -> Result<()> {
    let params: usize = parameters(method.model())
        .iter()
        .map(|(_, p)| p.value().numel())
        .sum();
    let before = gpu.pool_stats().bytes_held;
    // One step measures the memory a step needs; its update is thrown away with the method.
    method.step(train, 0, exp.optim.lr)?;
    gpu.sync()?;
    let held = gpu.pool_stats().bytes_held.max(before);
    println!("experiment      {}", exp.name);
    println!("adapter         {} ({:?})", gpu.info.name, gpu.info.backend);
    println!(
        "data            {} training images (after the saliency filter), {} validation",
        train.len(),
        val.len()
    );
    let backbone = match exp.model.backbone {
        BackboneKind::Resnet => format!("ResNet-{}", exp.model.depth),
        BackboneKind::MobilenetV2 => "MobileNetV2".to_string(),
    };
    println!(
        "model           {backbone} width {} output stride {}, {params} parameters",
        exp.model.width, exp.model.output_stride
    );
    println!(
        "steps           {} of batch {} at {}x{}",
        exp.schedule.iters, exp.data.batch_size, exp.data.image_size, exp.data.image_size
    );
    println!(
        "GPU memory      ~{:.1} MiB (measured over one step)",
        held as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// A finished (or checkpointed) run loaded back for evaluation or inference.
pub struct LoadedRun {
    pub exp: Experiment,
    pub gpu: Gpu,
    pub method: Box<dyn Method>,
    pub step: usize,
}

/// Loads a run folder: its resolved config, a device, and the method at the last
/// checkpoint.
pub fn load_run(dir: &Path) -> Result<LoadedRun> {
    let exp = super::load::load(&dir.join(CONFIG), &[])?;
    let gpu = open_device(&exp)?;
    let mut method = build_method(&gpu, &exp)?;
    let step = load_checkpoint(&gpu, &dir.join(CHECKPOINT), method.as_mut())?;
    method.model().set_training(false);
    Ok(LoadedRun {
        exp,
        gpu,
        method,
        step,
    })
}

/// Evaluates a run's checkpoint (K-means over seeds, and the linear probe when the
/// experiment has one); writes eval.json into the run folder.
pub fn evaluate_run(dir: &Path) -> Result<serde_json::Value> {
    let run = load_run(dir)?;
    let gen = bar(0, "data");
    let (train_set, val_set) = dataset::open(&run.exp.data, &mut || gen.inc(1))?;
    gen.finish_and_clear();
    let outcome = eval_kmeans(&run.gpu, run.method.as_ref(), &run.exp, &val_set)?;
    let probe = eval_probe(
        &run.gpu,
        run.method.as_ref(),
        &run.exp,
        &train_set,
        &val_set,
    )?;
    let result = json!({"step": run.step, "kmeans": outcome.eval, "linear_probe": probe});
    let text =
        serde_json::to_string_pretty(&result).map_err(|e| Error::file(dir.join("eval.json"), e))?;
    io::write_atomic(&dir.join("eval.json"), text.as_bytes())?;
    Ok(result)
}

/// Runs (or resumes) an experiment; returns the report.
pub fn train(args: &TrainArgs) -> Result<Option<Report>> {
    let (exp, resume) = match &args.resume {
        Some(dir) => {
            if !args.sets.is_empty() {
                return Err(Error::Usage(
                    "--resume continues a run with its saved config; --set cannot change it".into(),
                ));
            }
            (
                super::load::load(&dir.join(CONFIG), &[])?,
                Some(dir.clone()),
            )
        }
        None => {
            let file = args.file.as_ref().ok_or_else(|| {
                Error::Usage("wgseg train: give an experiment file (or --resume RUN_DIR)".into())
            })?;
            (super::load::load(file, &args.sets)?, None)
        }
    };
    validate(&exp)?;
    let gpu = open_device(&exp)?;
    let gen = bar(0, "data");
    let (train_set, val_set) = dataset::open(&exp.data, &mut || gen.inc(1))?;
    gen.finish_and_clear();
    let mut method = build_method(&gpu, &exp)?;
    if args.dry_run {
        print_plan(&gpu, &exp, method.as_mut(), &train_set, &val_set)?;
        return Ok(None);
    }
    let (mut dir, start) = match &resume {
        Some(path) => {
            let step = load_checkpoint(&gpu, &path.join(CHECKPOINT), method.as_mut())?;
            (RunDir::resume(path, step)?, step)
        }
        None => {
            let d = RunDir::create(&exp.output.dir, &exp.name)?;
            d.write_config(&exp)?;
            (d, 0)
        }
    };
    println!("run folder      {}", dir.path.display());
    let started = Instant::now();
    if start == 0 {
        let random = eval_kmeans(&gpu, method.as_ref(), &exp, &val_set)?.eval;
        let probe = eval_probe(&gpu, method.as_ref(), &exp, &train_set, &val_set)?;
        dir.log(&json!({"step": 0, "kind": "eval", "model": "random_init", "kmeans": random, "linear_probe": probe}))?;
        println!(
            "random init     k-means mIoU {:.2} ± {:.2}",
            100.0 * random.miou_mean,
            100.0 * random.miou_std
        );
    }
    let iters = exp.schedule.iters;
    let pb = bar(iters as u64, "train");
    pb.set_position(start as u64);
    let end = args.stop_at.map_or(iters, |s| s.clamp(start, iters));
    // Time spent in steps since the last log. Reading the logged scalars waits for the
    // GPU, so timing the steps together with that read covers all of their work.
    let (mut step_time, mut timed) = (std::time::Duration::ZERO, 0u32);
    for step in start..end {
        let lr = learning_rate(
            exp.optim.lr,
            &exp.schedule.policy,
            exp.schedule.warmup.as_ref(),
            step,
            iters,
        );
        let t0 = Instant::now();
        let scalars = method.step(&train_set, step, lr)?;
        step_time += t0.elapsed();
        timed += 1;
        let done = step + 1;
        if done % exp.output.log_every == 0 || done == iters {
            let mut rec = json!({"step": done, "kind": "train", "lr": lr});
            let t0 = Instant::now();
            for (name, t) in &scalars {
                rec[*name] = json!(t.item()?);
            }
            step_time += t0.elapsed();
            rec["step_ms"] = json!(step_time.as_secs_f64() * 1e3 / f64::from(timed));
            (step_time, timed) = (std::time::Duration::ZERO, 0);
            pb.set_message(format!(
                "loss {:.4}",
                rec["loss"].as_f64().unwrap_or(f64::NAN)
            ));
            dir.log(&rec)?;
        }
        if exp.eval.every > 0 && done % exp.eval.every == 0 && done < iters {
            let e = eval_kmeans(&gpu, method.as_ref(), &exp, &val_set)?.eval;
            dir.log(&json!({"step": done, "kind": "eval", "model": "trained", "kmeans": e}))?;
        }
        if done % exp.output.checkpoint_every == 0 || done == end {
            save_checkpoint(&dir, method.as_ref(), done)?;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if end < iters {
        println!(
            "stopped at step {end} of {iters}; continue with: wgseg train --resume {}",
            dir.path.display()
        );
        return Ok(None);
    }
    let outcome = eval_kmeans(&gpu, method.as_ref(), &exp, &val_set)?;
    save_centroids(&gpu, &dir, &outcome)?;
    let probe = eval_probe(&gpu, method.as_ref(), &exp, &train_set, &val_set)?;
    dir.log(&json!({"step": iters, "kind": "eval", "model": "trained", "kmeans": outcome.eval, "linear_probe": probe}))?;
    let report = report::write(
        &dir,
        &exp,
        &gpu,
        started.elapsed().as_secs_f64(),
        &val_set,
        &outcome.predictions,
    )?;
    report::print_summary(&report);
    Ok(Some(report))
}
