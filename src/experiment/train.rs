//! `wgseg train`: the loop that turns an experiment file into a run folder with
//! metrics, checkpoints, plots, pictures and a report. An experiment's `baselines`
//! are trained after it with the same seed and budget, each a complete run in
//! <run>/baselines/<name>/, and the run's report puts them side by side; `--resume`
//! continues whichever of them is unfinished.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::{BackboneKind, DataCfg, DataSource, Experiment, MethodCfg};
use super::evaluate::{evaluate, probe, record, save_centroids};
use super::load;
use super::progress::bar;
use super::report::{self, Baseline, Report};
use super::run_dir::{RunDir, CHECKPOINT, CONFIG};
use crate::data::dataset::{self, class_names, Dataset};
use crate::error::{Error, Result};
use crate::gpu::adapter::AdapterChoice;
use crate::gpu::Gpu;
use crate::io;
use crate::method::bidir_proto::BidirProto;
use crate::method::maskcontrast::MaskContrast;
use crate::method::pixel_contrast::PixelContrast;
use crate::method::Method;
use crate::nn::module::{parameters, state_dict, State};
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
    if let Some(DataSource::Synthetic { train, .. }) = exp.data.target {
        if train < exp.data.batch_size {
            return bad("data.target.train", "must hold at least one batch");
        }
    }
    if let Some(target) = &exp.data.target {
        let (s, t) = (class_names(&exp.data.source), class_names(target));
        if s != t {
            return bad(
                "data.target",
                &format!("has classes {t:?}, the source {s:?}: the domains must share them"),
            );
        }
    }
    if matches!(exp.method, MethodCfg::BidirProto { .. }) && exp.data.target.is_none() {
        return bad(
            "data.target",
            "missing: bidir_proto adapts to an unlabelled target domain (e.g. data.target: {kind: synthetic, style: b, ...})",
        );
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
        MethodCfg::PixelContrast { .. } => Ok(Box::new(PixelContrast::new(gpu, exp)?)),
        MethodCfg::BidirProto { .. } => Ok(Box::new(BidirProto::new(gpu, exp)?)),
    }
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

/// Evaluates a run's checkpoint by the method's protocol (and the linear probe
/// when the experiment has one); writes eval.json into the run folder.
pub fn evaluate_run(dir: &Path) -> Result<serde_json::Value> {
    let run = load_run(dir)?;
    let mut data = Data::default();
    let (train_set, val_set) = data.open(&run.exp.data)?;
    let method = run.method.as_ref();
    let evaluated = evaluate(&run.gpu, method, &run.exp, val_set)?;
    let probe = probe(&run.gpu, method, &run.exp, train_set, val_set)?;
    let result = record(run.step, "trained", &evaluated.eval, probe.as_ref());
    let text =
        serde_json::to_string_pretty(&result).map_err(|e| Error::file(dir.join("eval.json"), e))?;
    io::write_atomic(&dir.join("eval.json"), text.as_bytes())?;
    Ok(result)
}

/// The open datasets: the source's train split and the split a run is evaluated on
/// (the target domain's val split when `data.target` is given, else the source's);
/// reopened only when an arm's `data` section differs.
#[derive(Default)]
struct Data(Option<(String, (Dataset, Dataset))>);

fn open_data(cfg: &DataCfg, tick: &mut dyn FnMut()) -> Result<(Dataset, Dataset)> {
    let (train, val) = dataset::open(cfg, tick)?;
    Ok(match dataset::open_target(cfg, tick)? {
        Some((_, target_val)) => (train, target_val),
        None => (train, val),
    })
}

impl Data {
    fn open(&mut self, cfg: &DataCfg) -> Result<(&Dataset, &Dataset)> {
        let key = serde_json::to_string(cfg).map_err(|e| Error::Usage(format!("data: {e}")))?;
        let entry = match self.0.take() {
            Some(entry) if entry.0 == key => entry,
            _ => {
                let gen = bar(0, "data");
                let sets = open_data(cfg, &mut || gen.inc(1));
                gen.finish_and_clear();
                (key, sets?)
            }
        };
        let (train, val) = &self.0.insert(entry).1;
        Ok((train, val))
    }
}

/// The experiment's baselines as experiments (validated), with their overrides.
fn baselines(file: &Path, exp: &Experiment) -> Result<Vec<(String, Vec<String>, Experiment)>> {
    let mut out = Vec::new();
    for (name, sets) in &exp.baselines {
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if name.is_empty() || !name.chars().all(plain) {
            return Err(Error::file(
                file,
                format!("baselines.{name}: a baseline's name names its folder: use letters, digits, '_' and '-'"),
            ));
        }
        let b = load::baseline(file, exp, name, sets)?;
        if b.seed != exp.seed || b.schedule.iters != exp.schedule.iters {
            return Err(Error::file(
                file,
                format!("baselines.{name}: must keep the experiment's seed and schedule.iters (a comparison needs the same seed and budget)"),
            ));
        }
        validate(&b).map_err(|e| Error::file(file, format!("baselines.{name}: {e}")))?;
        out.push((name.clone(), sets.clone(), b));
    }
    Ok(out)
}

/// Trains `exp` in `dir` from scratch, from its checkpoint, or not at all when its
/// report exists; the report, or `None` when it stopped at `stop_at`.
fn run_arm(
    gpu: &Gpu,
    exp: &Experiment,
    dir: &Path,
    data: &mut Data,
    stop_at: Option<usize>,
) -> Result<Option<Report>> {
    if let Some(done) = report::read(dir)? {
        return Ok(Some(done));
    }
    let (train_set, val_set) = data.open(&exp.data)?;
    let mut method = build_method(gpu, exp)?;
    let checkpoint = dir.join(CHECKPOINT);
    let (mut run, start) = if checkpoint.is_file() {
        let step = load_checkpoint(gpu, &checkpoint, method.as_mut())?;
        (RunDir::resume(dir, step)?, step)
    } else {
        let run = RunDir::create_at(dir)?;
        run.write_config(exp)?;
        (run, 0)
    };
    let started = Instant::now();
    if start == 0 {
        let random = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
        let p = probe(gpu, method.as_ref(), exp, train_set, val_set)?;
        run.log(&record(0, "random_init", &random, p.as_ref()))?;
        println!("random init     {}", random.summary());
    }
    let iters = exp.schedule.iters;
    let pb = bar(iters as u64, "train");
    pb.set_position(start as u64);
    let end = stop_at.map_or(iters, |s| s.clamp(start, iters));
    for step in start..end {
        let lr = learning_rate(
            exp.optim.lr,
            &exp.schedule.policy,
            exp.schedule.warmup.as_ref(),
            step,
            iters,
        );
        let scalars = method.step(train_set, step, lr)?;
        let done = step + 1;
        if done % exp.output.log_every == 0 || done == iters {
            let mut rec = serde_json::json!({"step": done, "kind": "train", "lr": lr});
            for (name, t) in &scalars {
                rec[*name] = serde_json::json!(t.item()?);
            }
            pb.set_message(format!(
                "loss {:.4}",
                rec["loss"].as_f64().unwrap_or(f64::NAN)
            ));
            run.log(&rec)?;
        }
        if exp.eval.every > 0 && done % exp.eval.every == 0 && done < iters {
            let e = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
            run.log(&record(done, "trained", &e, None))?;
        }
        if done % exp.output.checkpoint_every == 0 || done == end {
            save_checkpoint(&run, method.as_ref(), done)?;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if end < iters {
        println!("stopped at step {end} of {iters}");
        return Ok(None);
    }
    let evaluated = evaluate(gpu, method.as_ref(), exp, val_set)?;
    save_centroids(gpu, &run, &evaluated)?;
    let p = probe(gpu, method.as_ref(), exp, train_set, val_set)?;
    run.log(&record(iters, "trained", &evaluated.eval, p.as_ref()))?;
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
    validate(&exp)?;
    let baselines = baselines(&file, &exp)?;
    let gpu = open_device(&exp)?;
    let mut data = Data::default();
    if args.dry_run {
        let (train_set, val_set) = data.open(&exp.data)?;
        let mut method = build_method(&gpu, &exp)?;
        print_plan(&gpu, &exp, method.as_mut(), train_set, val_set)?;
        for (name, sets, b) in &baselines {
            build_method(&gpu, b)?;
            println!("baseline        {name}: {}", sets.join(", "));
        }
        return Ok(None);
    }
    let root = match resume {
        Some(path) => path,
        None => {
            let d = RunDir::create(&exp.output.dir, &exp.name)?;
            d.write_config(&exp)?;
            d.path
        }
    };
    println!("run folder      {}", root.display());
    let stopped = || {
        println!("continue with: wgseg train --resume {}", root.display());
        Ok(None)
    };
    // --stop-at counts the steps of the arms one after another (all have `iters`).
    let iters = exp.schedule.iters;
    let stop_in = |arm: usize| args.stop_at.map(|s| s.saturating_sub(arm * iters));
    let Some(mut report) = run_arm(&gpu, &exp, &root, &mut data, stop_in(0))? else {
        return stopped();
    };
    let mut done = Vec::new();
    for (i, (name, overrides, b)) in baselines.into_iter().enumerate() {
        let dir = root.join("baselines").join(&name);
        println!(
            "baseline        {name} ({}): {}",
            overrides.join(", "),
            dir.display()
        );
        let Some(r) = run_arm(&gpu, &b, &dir, &mut data, stop_in(i + 1))? else {
            return stopped();
        };
        done.push(Baseline {
            name,
            overrides,
            report: r,
        });
    }
    if !done.is_empty() {
        report::write_with_baselines(&root, &mut report, done)?;
    }
    report::print_summary(&report);
    Ok(Some(report))
}
