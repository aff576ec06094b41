//! `wgseg train`: the loop that turns an experiment file into a run folder with
//! metrics, checkpoints, plots, pictures and a report. An experiment's `baselines`
//! are trained after it with the same seed and budget, each a complete run in
//! <run>/baselines/<name>/, and the run's report puts them side by side; `--resume`
//! continues whichever of them is unfinished. A file with `stages` trains them one
//! after another in each arm, scoring the network after each; checkpoints and
//! records name their stage, and `--resume` continues inside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::config::{BackboneKind, DataCfg, DataSource, Experiment, MethodCfg};
use super::evaluate::{evaluate, probe, record, save_centroids};
use super::load;
use super::progress::bar;
use super::report::{self, Baseline, Report};
use super::run_dir::{RunDir, CHECKPOINT, CONFIG};
use super::stages::{self, Stage};
use crate::data::dataset::{self, class_names, Dataset};
use crate::error::{Error, Result};
use crate::gpu::adapter::AdapterChoice;
use crate::gpu::Gpu;
use crate::io;
use crate::method::bidir_proto::BidirProto;
use crate::method::maskcontrast::MaskContrast;
use crate::method::pixel_contrast::PixelContrast;
use crate::method::translation_coding::TranslationCoding;
use crate::method::{Method, TrainSets};
use crate::nn::module::{parameters, state_dict, State};
use crate::optim::schedule::learning_rate;
use crate::tensor::Tensor;

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
    let sets = exp.method.parameter_sets();
    for name in exp.optimizers.keys() {
        if !sets.contains(&name.as_str()) {
            return bad(
                &format!("optimizers.{name}"),
                &format!(
                    "the method trains no parameter set {name:?} (its sets: network{})",
                    sets.iter().map(|s| format!(", {s}")).collect::<String>()
                ),
            );
        }
    }
    if let Some(missing) = sets.iter().find(|s| !exp.optimizers.contains_key(**s)) {
        return bad(
            &format!("optimizers.{missing}"),
            "the method trains this parameter set: give its optimiser",
        );
    }
    Ok(())
}

/// Validates `exp` (from `file`) and each of its stages; their plan.
fn check(file: &Path, exp: &Experiment) -> Result<Vec<Stage>> {
    validate(exp)?;
    let plan = stages::plan(file, exp)?;
    for s in &plan {
        if let Some(name) = &s.name {
            validate(&s.exp).map_err(|e| Error::file(file, format!("stages.{name}: {e}")))?;
        }
    }
    Ok(plan)
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
        MethodCfg::TranslationCoding { .. } => Ok(Box::new(TranslationCoding::new(gpu, exp)?)),
        MethodCfg::BidirProto { .. } => Ok(Box::new(BidirProto::new(gpu, exp)?)),
    }
}

type Tensors = HashMap<String, Tensor>;
type Meta = HashMap<String, String>;

/// A method's whole state: the model as `model.*`, its extra tensors, its metadata.
fn snapshot(method: &dyn Method) -> (Vec<(String, Tensor)>, Meta) {
    let mut tensors: Vec<(String, Tensor)> = state_dict(method.model())
        .into_iter()
        .map(|(n, s)| (format!("model.{n}"), s.tensor()))
        .collect();
    let (extra, meta) = method.extra_state();
    tensors.extend(extra);
    (tensors, meta)
}

/// Restores what [`snapshot`] took.
fn restore(method: &mut dyn Method, tensors: &Tensors, meta: &Meta) -> Result<()> {
    for (name, s) in state_dict(method.model()) {
        let key = format!("model.{name}");
        let t = tensors
            .get(&key)
            .ok_or_else(|| Error::Usage(format!("checkpoint has no tensor {key}")))?;
        let current = s.tensor();
        if t.shape() != current.shape() {
            return Err(Error::Usage(format!(
                "tensor {key} has shape {:?}, the model expects {:?}",
                t.shape(),
                current.shape()
            )));
        }
        match s {
            State::Param(v) => v.set_value(t.clone())?,
            State::Buffer(b) => b.write(&t.to_vec()?)?,
        }
    }
    method.load_extra_state(tensors, meta)
}

/// Writes the method's state after `step`, a step of `stage`.
fn save_checkpoint(dir: &RunDir, method: &dyn Method, step: usize, stage: &Stage) -> Result<()> {
    let (tensors, mut meta) = snapshot(method);
    meta.insert("step".into(), step.to_string());
    if let Some(name) = &stage.name {
        meta.insert("stage".into(), name.clone());
    }
    io::write_with_metadata(&dir.file(CHECKPOINT), &tensors, Some(meta))
}

/// A checkpoint's step, tensors and metadata.
fn read_checkpoint(gpu: &Gpu, path: &Path) -> Result<(usize, Tensors, Meta)> {
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
    let tensors = io::read(gpu, path)?.into_iter().collect();
    Ok((step, tensors, meta))
}

/// The method of the stage a checkpoint continues in, restored from it; the step.
fn resume_method(gpu: &Gpu, path: &Path, plan: &[Stage]) -> Result<(usize, Box<dyn Method>)> {
    let (step, tensors, meta) = read_checkpoint(gpu, path)?;
    let written = plan
        .iter()
        .find(|s| s.start < step && step <= s.end)
        .and_then(|s| s.name.as_ref());
    if meta.get("stage") != written {
        return Err(Error::file(
            path,
            format!(
                "written in stage {:?}, but step {step} is in stage {written:?} of the config",
                meta.get("stage")
            ),
        ));
    }
    let mut method = build_method(gpu, &plan[stages::at(plan, step)].exp)?;
    restore(method.as_mut(), &tensors, &meta).map_err(|e| Error::file(path, e))?;
    Ok((step, method))
}

/// `record` naming the stage, when the run has stages.
fn in_stage(mut rec: Value, stage: &Stage) -> Value {
    if let Some(name) = &stage.name {
        rec["stage"] = json!(name);
    }
    rec
}

fn print_plan(
    gpu: &Gpu,
    exp: &Experiment,
    plan: &[Stage],
    method: &mut dyn Method,
    sets: &Sets,
) -> Result<()> {
    let params: usize = parameters(method.model())
        .iter()
        .map(|(_, p)| p.value().numel())
        .sum();
    let before = gpu.pool_stats().bytes_held;
    // One step measures the memory a step needs; its update is thrown away with the method.
    method.step(&sets.train_sets(), 0, 1.0)?;
    gpu.sync()?;
    let held = gpu.pool_stats().bytes_held.max(before);
    println!("experiment      {}", exp.name);
    println!("adapter         {} ({:?})", gpu.info.name, gpu.info.backend);
    println!(
        "data            {} training images (after the saliency filter), {} validation",
        sets.train.len(),
        sets.val.len()
    );
    if let Some((train, val)) = &sets.target {
        println!(
            "target domain   {} training images (unlabelled), {} validation (evaluated)",
            train.len(),
            val.len()
        );
    }
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
    for s in plan {
        if let Some(name) = &s.name {
            println!("stage           {name}: steps {}..{}", s.start + 1, s.end);
        }
    }
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
    let file = dir.join(CONFIG);
    let exp = super::load::load(&file, &[])?;
    let plan = stages::plan(&file, &exp)?;
    let gpu = open_device(&exp)?;
    let (step, method) = resume_method(&gpu, &dir.join(CHECKPOINT), &plan)?;
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
    let sets = data.open(&run.exp.data)?;
    let method = run.method.as_ref();
    let evaluated = evaluate(&run.gpu, method, &run.exp, sets.eval())?;
    let probe = probe(&run.gpu, method, &run.exp, &sets.train, sets.eval())?;
    let result = record(run.step, "trained", &evaluated.eval, probe.as_ref());
    let text =
        serde_json::to_string_pretty(&result).map_err(|e| Error::file(dir.join("eval.json"), e))?;
    io::write_atomic(&dir.join("eval.json"), text.as_bytes())?;
    Ok(result)
}

/// The open splits of a `data` section: the source's, and the target's when it has one.
struct Sets {
    train: Dataset,
    val: Dataset,
    target: Option<(Dataset, Dataset)>,
}

impl Sets {
    /// What training draws from.
    fn train_sets(&self) -> TrainSets<'_> {
        TrainSets {
            source: &self.train,
            target: self.target.as_ref().map(|t| &t.0),
        }
    }

    /// What evaluation scores: the target's validation split when there is a target.
    fn eval(&self) -> &Dataset {
        self.target.as_ref().map_or(&self.val, |t| &t.1)
    }
}

/// The open datasets, reopened only when an arm's `data` section differs.
#[derive(Default)]
struct Data(Option<(String, Sets)>);

impl Data {
    fn open(&mut self, cfg: &DataCfg) -> Result<&Sets> {
        let key = serde_json::to_string(cfg).map_err(|e| Error::Usage(format!("data: {e}")))?;
        let entry = match self.0.take() {
            Some(entry) if entry.0 == key => entry,
            _ => {
                let gen = bar(0, "data");
                let mut tick = || gen.inc(1);
                let (train, val) = dataset::open(cfg, &mut tick)?;
                let target = dataset::open_target(cfg, &mut tick)?;
                gen.finish_and_clear();
                (key, Sets { train, val, target })
            }
        };
        Ok(&self.0.insert(entry).1)
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
        check(file, &b).map_err(|e| Error::file(file, format!("baselines.{name}: {e}")))?;
        out.push((name.clone(), sets.clone(), b));
    }
    Ok(out)
}

/// Trains `exp` (from `file`) in `dir` from scratch, from its checkpoint, or not at
/// all when its report exists; the report, or `None` when it stopped at `stop_at`.
fn run_arm(
    gpu: &Gpu,
    file: &Path,
    exp: &Experiment,
    dir: &Path,
    data: &mut Data,
    stop_at: Option<usize>,
) -> Result<Option<Report>> {
    if let Some(done) = report::read(dir)? {
        return Ok(Some(done));
    }
    let plan = stages::plan(file, exp)?;
    let sets = data.open(&exp.data)?;
    let (train_sets, val_set) = (sets.train_sets(), sets.eval());
    let checkpoint = dir.join(CHECKPOINT);
    let (mut run, start, mut method) = if checkpoint.is_file() {
        let (step, method) = resume_method(gpu, &checkpoint, &plan)?;
        (RunDir::resume(dir, step)?, step, method)
    } else {
        let run = RunDir::create_at(dir)?;
        run.write_config(exp)?;
        (run, 0, build_method(gpu, &plan[0].exp)?)
    };
    let started = Instant::now();
    if start == 0 {
        let random = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
        let p = probe(gpu, method.as_ref(), exp, &sets.train, val_set)?;
        run.log(&record(0, "random_init", &random, p.as_ref()))?;
        println!("random init     {}", random.summary());
    }
    let iters = exp.schedule.iters;
    let pb = bar(iters as u64, "train");
    pb.set_position(start as u64);
    let end = stop_at.map_or(iters, |s| s.clamp(start, iters));
    let first = stages::at(&plan, start);
    let mut step = start;
    // Time spent in steps since the last log. Reading the logged scalars waits for the
    // GPU, so timing the steps together with that read covers all of their work.
    let (mut step_time, mut timed) = (std::time::Duration::ZERO, 0u32);
    for (i, stage) in plan.iter().enumerate().skip(first) {
        let last = i + 1 == plan.len();
        if i > first {
            // A stage is a new method of the stage's settings, with the state so far.
            let (tensors, meta) = snapshot(method.as_ref());
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
            let scalars = method.step(&train_sets, step, factor)?;
            step_time += t0.elapsed();
            timed += 1;
            let done = step + 1;
            if done % exp.output.log_every == 0 || done == iters {
                let lr = stage.exp.optim.lr * factor;
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
                run.log(&in_stage(rec, stage))?;
            }
            if exp.eval.every > 0 && done % exp.eval.every == 0 && done < iters {
                let e = evaluate(gpu, method.as_ref(), exp, val_set)?.eval;
                run.log(&in_stage(record(done, "trained", &e, None), stage))?;
            }
            // A finished stage is checkpointed after its evaluation, below.
            let stage_done = done == stage.end && !last;
            if (done % exp.output.checkpoint_every == 0 || done == end) && !stage_done {
                save_checkpoint(&run, method.as_ref(), done, stage)?;
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
        save_checkpoint(&run, method.as_ref(), step, stage)?;
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
    let Some(mut report) = run_arm(&gpu, &file, &exp, &root, &mut data, stop_in(0))? else {
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
        let Some(r) = run_arm(&gpu, &file, &b, &dir, &mut data, stop_in(i + 1))? else {
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
