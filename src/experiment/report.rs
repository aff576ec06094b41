//! The end of a run: loss-curve PNG, prediction pictures, report.json and a
//! Markdown table of the metrics, with the experiment's baselines side by side.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::Experiment;
use super::evaluate::{pct, Evaluation, BACKBONE};
use super::run_dir::RunDir;
use crate::data::dataset::Dataset;
use crate::data::loader::plain;
use crate::error::{Error, Result};
use crate::eval::metrics::Scores;
use crate::gpu::Gpu;
use crate::report::plot::{line_plot, Series};
use crate::report::visual::{save_contact_sheet, save_prediction};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub name: String,
    pub run_dir: String,
    pub adapter: String,
    pub steps: usize,
    /// Steps whose update was dropped for a non-finite loss or gradient
    /// (`output.on_nonfinite: skip`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_steps: usize,
    pub seconds: f64,
    pub class_names: Vec<String>,
    /// Evaluation of the network before training (same protocol and seeds).
    pub start: Option<Evaluation>,
    /// K-means over the backbone's own features before training, with the dataset's
    /// masks: what the embeddings have to beat (embedding methods only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<Evaluation>,
    pub trained: Evaluation,
    /// Linear probe on the frozen embeddings, before and after training.
    pub probe_start: Option<Scores>,
    pub probe_trained: Option<Scores>,
    /// The experiment's baselines, trained with the same seed and budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<Baseline>,
    /// The evaluation after each stage, for an experiment with stages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageScore>,
    /// Scores are on the target domain's validation split (`data.target`).
    #[serde(default)]
    pub target_domain: bool,
    /// Pseudo labels over training, at the logged steps of a method that makes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pseudo_labels: Vec<PseudoLabels>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The evaluation at the end of one stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageScore {
    pub stage: String,
    pub step: usize,
    pub eval: Evaluation,
}

/// The evaluations records name a stage of, last of each stage, in order.
fn stage_scores(records: &[Value]) -> Vec<StageScore> {
    let mut out: Vec<StageScore> = Vec::new();
    for r in records.iter().filter(|r| r["model"] == "trained") {
        let (Some(stage), Some(step), Some(eval)) = (
            r["stage"].as_str(),
            r["step"].as_u64(),
            Evaluation::from_record(r),
        ) else {
            continue;
        };
        let score = StageScore {
            stage: stage.to_string(),
            step: step as usize,
            eval,
        };
        match out.last_mut() {
            Some(last) if last.stage == stage => *last = score,
            _ => out.push(score),
        }
    }
    out
}

/// The table of the evaluations after each stage.
fn stage_table(r: &Report) -> String {
    let mut s = format!(
        "\n## After each stage\n\n| stage | step | {} (%) | pixel accuracy (%) | change (mIoU points) |\n|---|---|---|---|---|\n",
        r.trained.heading()
    );
    let mut before = r.start.as_ref().map(Evaluation::miou);
    for st in &r.stages {
        let change = before
            .map(|b| format!("{:+.2}", 100.0 * (st.eval.miou() - b)))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {change} |\n",
            st.stage,
            st.step,
            st.eval.miou_text(),
            pct(st.eval.pixel_accuracy())
        ));
        before = Some(st.eval.miou());
    }
    s
}

/// The pseudo labels of one logged training step, scored against the hidden labels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PseudoLabels {
    pub step: usize,
    /// Fraction right among the kept pixels (`None` when none was kept).
    pub accuracy: Option<f64>,
    /// Fraction of the labelled pixels kept.
    pub coverage: f64,
}

/// The `pl_accuracy` / `pl_coverage` training scalars of metrics.jsonl.
fn pseudo_labels(records: &[Value]) -> Vec<PseudoLabels> {
    records
        .iter()
        .filter(|r| r["kind"] == "train")
        .filter_map(|r| {
            Some(PseudoLabels {
                step: r["step"].as_u64()? as usize,
                accuracy: r["pl_accuracy"].as_f64(),
                coverage: r["pl_coverage"].as_f64()?,
            })
        })
        .collect()
}

fn pseudo_label_table(rows: &[PseudoLabels]) -> String {
    let mut s = String::from(
        "\n## Pseudo labels (target training batches, against their hidden labels)\n\n| step | accuracy of the kept (%) | kept (%) |\n|---|---|---|\n",
    );
    for p in rows {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            p.step,
            p.accuracy.map(pct).unwrap_or_else(|| "-".into()),
            pct(p.coverage)
        ));
    }
    s
}

/// One baseline of a run: its name, the overrides that make it, its report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub overrides: Vec<String>,
    pub report: Report,
}

fn probe(v: &Value) -> Option<Scores> {
    serde_json::from_value(v.get("linear_probe")?.clone()).ok()
}

/// Training scalars of metrics.jsonl as plot series (loss first).
fn loss_series(records: &[Value]) -> Vec<Series> {
    let mut names: Vec<String> = Vec::new();
    for r in records.iter().filter(|r| r["kind"] == "train") {
        if let Some(obj) = r.as_object() {
            for k in obj.keys() {
                if k.starts_with("loss") && !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    names.sort_by_key(|n| (n != "loss", n.clone()));
    names
        .into_iter()
        .map(|n| Series {
            points: records
                .iter()
                .filter(|r| r["kind"] == "train")
                .filter_map(|r| Some((r["step"].as_f64()?, r[&n].as_f64()?)))
                .collect(),
            label: n,
        })
        .collect()
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# {}\n\n{} steps in {:.0} s on {}.\n\n",
        r.name, r.steps, r.seconds, r.adapter
    );
    if r.skipped_steps > 0 {
        s.push_str(&format!(
            "{} steps were skipped for a non-finite loss or gradient (metrics.jsonl names each).\n\n",
            r.skipped_steps
        ));
    }
    if r.target_domain {
        s.push_str("Scores are on the target domain's validation split.\n\n");
    }
    let seeds = |e: &Evaluation| match e {
        Evaluation::Kmeans(k) => format!(" {} |", k.per_seed.len()),
        Evaluation::Classes(_) => String::new(),
    };
    let seeds_header = if seeds(&r.trained).is_empty() {
        ("", "")
    } else {
        (" seeds |", "---|")
    };
    s.push_str(&format!(
        "| model | {} (%) | pixel accuracy (%) |{}\n|---|---|---|{}\n",
        r.trained.heading(),
        seeds_header.0,
        seeds_header.1
    ));
    let mut row = |label: &str, e: &Evaluation| {
        s.push_str(&format!(
            "| {label} | {} | {} |{}\n",
            e.miou_text(),
            pct(e.pixel_accuracy()),
            seeds(e)
        ));
    };
    if let Some(e) = &r.start {
        row("start (before training)", e);
    }
    if let Some(e) = &r.backbone {
        row("backbone features (dataset masks)", e);
    }
    row("trained", &r.trained);
    if let Some(p) = &r.probe_trained {
        s.push_str("\n| model | linear probe mIoU (%) | pixel accuracy (%) |\n|---|---|---|\n");
        if let Some(q) = &r.probe_start {
            s.push_str(&format!(
                "| start (before training) | {} | {} |\n",
                pct(q.miou),
                pct(q.pixel_accuracy)
            ));
        }
        s.push_str(&format!(
            "| trained | {} | {} |\n",
            pct(p.miou),
            pct(p.pixel_accuracy)
        ));
    }
    if !r.stages.is_empty() {
        s.push_str(&stage_table(r));
    }
    if r.baselines.is_empty() {
        let which = match r.trained {
            Evaluation::Kmeans(_) => ", first seed",
            Evaluation::Classes(_) => "",
        };
        s.push_str(&format!(
            "\n| class | IoU (%), trained{which} |\n|---|---|\n"
        ));
        for (name, iou) in r.class_names.iter().zip(r.trained.per_class_iou()) {
            s.push_str(&format!("| {name} | {} |\n", iou_text(*iou)));
        }
    } else {
        s.push_str(&comparison(r));
    }
    if !r.pseudo_labels.is_empty() {
        s.push_str(&pseudo_label_table(&r.pseudo_labels));
    }
    s
}

fn iou_text(iou: Option<f64>) -> String {
    iou.map(pct).unwrap_or_else(|| "-".into())
}

/// The method and its baselines side by side: overall and per-class scores.
fn comparison(r: &Report) -> String {
    let mut s = format!(
        "\n## Against the baselines (same seed, {} steps each)\n\n| run | overrides | {} (%) | pixel accuracy (%) |",
        r.steps,
        r.trained.heading()
    );
    for name in &r.class_names {
        s.push_str(&format!(" {name} |"));
    }
    s.push_str(" seconds |\n|---|---|---|---|");
    s.push_str(&"---|".repeat(r.class_names.len() + 1));
    s.push('\n');
    let mut row = |name: &str, overrides: &str, rep: &Report| {
        s.push_str(&format!(
            "| {name} | {overrides} | {} | {} |",
            rep.trained.miou_text(),
            pct(rep.trained.pixel_accuracy())
        ));
        for iou in rep.trained.per_class_iou() {
            s.push_str(&format!(" {} |", iou_text(*iou)));
        }
        s.push_str(&format!(" {:.0} |\n", rep.seconds));
    };
    row(&format!("{} (this experiment)", r.name), "-", r);
    for b in &r.baselines {
        row(&b.name, &b.overrides.join(", "), &b.report);
    }
    s.push('\n');
    for b in &r.baselines {
        s.push_str(&format!(
            "{} minus {}: {:+.2} mIoU points.\n",
            r.name,
            b.name,
            100.0 * (r.trained.miou() - b.report.trained.miou())
        ));
    }
    s
}

/// Writes report.json and report.md into the run folder `dir`.
fn save(dir: &Path, report: &Report) -> Result<()> {
    let json = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::file(&json, e))?;
    crate::io::write_atomic(&json, text.as_bytes())?;
    crate::io::write_atomic(&dir.join("report.md"), markdown(report).as_bytes())
}

/// The report a finished run left in `dir`, or `None` when it has none yet.
pub fn read(dir: &Path) -> Result<Option<Report>> {
    let p = dir.join("report.json");
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::file(&p, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::file(&p, e))
}

/// The `kind` of a metrics.jsonl record of a step skipped by `output.on_nonfinite: skip`.
pub const SKIPPED: &str = "skipped";

/// The run's predictions on its first validation images, as one grid.
pub const CONTACT_SHEET: &str = "contact_sheet.png";

/// Writes plots, pictures and reports into the run folder.
pub fn write(
    dir: &RunDir,
    exp: &Experiment,
    gpu: &Gpu,
    seconds: f64,
    val: &Dataset,
    preds: &[Vec<u8>],
) -> Result<Report> {
    let records = dir.records()?;
    let metrics = dir.file(super::run_dir::METRICS);
    let first = records.iter().find(|r| r["model"] == "start");
    let last = records
        .iter()
        .rev()
        .find(|r| r["model"] == "trained")
        .ok_or_else(|| Error::file(&metrics, "no evaluation of the trained model"))?;
    let trained = Evaluation::from_record(last)
        .ok_or_else(|| Error::file(&metrics, "unreadable evaluation record"))?;
    line_plot(
        &dir.file("loss_curve.png"),
        &exp.name,
        "step",
        "loss",
        &loss_series(&records),
    )?;
    let pictures = dir.file("pictures");
    std::fs::create_dir_all(&pictures).map_err(|e| Error::file(&pictures, e))?;
    let mut sheet = Vec::new();
    for (i, pred) in preds
        .iter()
        .enumerate()
        .take(exp.output.pictures.min(val.len()))
    {
        let batch = plain(gpu, val, &[i], exp.data.image_size)?;
        let id = val.get(i)?.id;
        let image = batch.originals[0].clone();
        save_prediction(
            &pictures.join(format!("{id}.png")),
            &image,
            pred,
            &val.class_names,
        )?;
        sheet.push((image, pred.clone()));
    }
    if !sheet.is_empty() {
        save_contact_sheet(&dir.file(CONTACT_SHEET), &sheet, &val.class_names)?;
    }
    let report = Report {
        name: exp.name.clone(),
        run_dir: dir.path.display().to_string(),
        adapter: gpu.info.name.clone(),
        steps: exp.schedule.iters,
        skipped_steps: records.iter().filter(|r| r["kind"] == SKIPPED).count(),
        seconds,
        class_names: val.class_names.clone(),
        start: first.and_then(Evaluation::from_record),
        backbone: records
            .iter()
            .find(|r| r["model"] == BACKBONE)
            .and_then(Evaluation::from_record),
        trained,
        probe_start: first.and_then(probe),
        probe_trained: probe(last),
        baselines: Vec::new(),
        stages: stage_scores(&records),
        target_domain: exp.data.target.is_some(),
        pseudo_labels: pseudo_labels(&records),
    };
    save(&dir.path, &report)?;
    Ok(report)
}

/// Rewrites the run's report with its baselines' side by side.
pub fn write_with_baselines(
    dir: &Path,
    report: &mut Report,
    baselines: Vec<Baseline>,
) -> Result<()> {
    report.baselines = baselines;
    save(dir, report)
}

/// The lines a person reads at the end of a run; `with_start` adds the start, the
/// backbone and the stages, which a run that trained in this process printed already.
pub fn print_summary(r: &Report, with_start: bool) {
    if with_start {
        if let Some(e) = &r.start {
            println!("start           {}", e.summary());
        }
        if let Some(e) = &r.backbone {
            println!(
                "backbone        {} (its features, dataset masks)",
                e.summary()
            );
        }
        for st in &r.stages {
            println!("stage {:<10} {}", st.stage, st.eval.summary());
        }
    }
    println!("trained         {}", r.trained.summary());
    if let Some(p) = &r.probe_trained {
        let before = r
            .probe_start
            .as_ref()
            .map(|q| format!(" (start {})", pct(q.miou)))
            .unwrap_or_default();
        println!("linear probe    mIoU {}{before}", pct(p.miou));
    }
    if let Some(p) = r.pseudo_labels.last() {
        println!(
            "pseudo labels   {} % right of the {} % kept (step {})",
            p.accuracy.map(pct).unwrap_or_else(|| "-".into()),
            pct(p.coverage),
            p.step
        );
    }
    for b in &r.baselines {
        println!(
            "baseline        {} ({}): {}",
            b.name,
            b.overrides.join(", "),
            b.report.trained.summary()
        );
    }
    println!("report          {}/report.md", r.run_dir);
}
