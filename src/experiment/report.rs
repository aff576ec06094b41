//! The end of a run: loss-curve PNG, prediction pictures, report.json and a
//! Markdown table of the metrics.

use serde::Serialize;
use serde_json::Value;

use super::config::Experiment;
use super::run_dir::RunDir;
use crate::data::dataset::Dataset;
use crate::data::loader::plain;
use crate::error::{Error, Result};
use crate::eval::metrics::Scores;
use crate::eval::unsupervised::ClusterEval;
use crate::gpu::Gpu;
use crate::report::plot::{line_plot, Series};
use crate::report::visual::save_prediction;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub name: String,
    pub run_dir: String,
    pub adapter: String,
    pub steps: usize,
    pub seconds: f64,
    pub class_names: Vec<String>,
    /// K-means evaluation of the network before training (same seeds).
    pub random_init: Option<ClusterEval>,
    pub trained: ClusterEval,
    /// Linear probe on the frozen embeddings, before and after training.
    pub probe_random_init: Option<Scores>,
    pub probe_trained: Option<Scores>,
}

fn cluster_eval(v: &Value) -> Option<ClusterEval> {
    serde_json::from_value(v.get("kmeans")?.clone()).ok()
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

fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# {}\n\n{} steps in {:.0} s on {}.\n\n",
        r.name, r.steps, r.seconds, r.adapter
    );
    s.push_str("| model | K-means mIoU (%) | pixel accuracy (%) | seeds |\n|---|---|---|---|\n");
    let mut row = |label: &str, e: &ClusterEval| {
        s.push_str(&format!(
            "| {label} | {} ± {} | {} | {} |\n",
            pct(e.miou_mean),
            pct(e.miou_std),
            pct(e.pixel_accuracy_mean),
            e.per_seed.len()
        ));
    };
    if let Some(e) = &r.random_init {
        row("random init", e);
    }
    row("trained", &r.trained);
    if let Some(p) = &r.probe_trained {
        s.push_str("\n| model | linear probe mIoU (%) | pixel accuracy (%) |\n|---|---|---|\n");
        if let Some(q) = &r.probe_random_init {
            s.push_str(&format!(
                "| random init | {} | {} |\n",
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
    if let Some(first) = r.trained.per_seed.first() {
        s.push_str("\n| class | IoU (%), trained, first seed |\n|---|---|\n");
        for (name, iou) in r.class_names.iter().zip(&first.per_class_iou) {
            s.push_str(&format!(
                "| {name} | {} |\n",
                iou.map(pct).unwrap_or_else(|| "-".into())
            ));
        }
    }
    s
}

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
    let first = records.iter().find(|r| r["model"] == "random_init");
    let last = records
        .iter()
        .rev()
        .find(|r| r["model"] == "trained")
        .ok_or_else(|| Error::file(&metrics, "no evaluation of the trained model"))?;
    let trained =
        cluster_eval(last).ok_or_else(|| Error::file(&metrics, "unreadable evaluation record"))?;
    line_plot(
        &dir.file("loss_curve.png"),
        &exp.name,
        "step",
        "loss",
        &loss_series(&records),
    )?;
    let pictures = dir.file("pictures");
    std::fs::create_dir_all(&pictures).map_err(|e| Error::file(&pictures, e))?;
    for (i, pred) in preds
        .iter()
        .enumerate()
        .take(exp.output.pictures.min(val.len()))
    {
        let batch = plain(gpu, val, &[i], exp.data.image_size)?;
        let id = val.get(i)?.id;
        save_prediction(
            &pictures.join(format!("{id}.png")),
            &batch.originals[0],
            pred,
            &val.class_names,
        )?;
    }
    let report = Report {
        name: exp.name.clone(),
        run_dir: dir.path.display().to_string(),
        adapter: gpu.info.name.clone(),
        steps: exp.schedule.iters,
        seconds,
        class_names: val.class_names.clone(),
        random_init: first.and_then(cluster_eval),
        trained,
        probe_random_init: first.and_then(probe),
        probe_trained: probe(last),
    };
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::file(dir.file("report.json"), e))?;
    crate::io::write_atomic(&dir.file("report.json"), text.as_bytes())?;
    crate::io::write_atomic(&dir.file("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

/// The lines a person reads at the end of a run.
pub fn print_summary(r: &Report) {
    if let Some(e) = &r.random_init {
        println!(
            "random init     k-means mIoU {} ± {}",
            pct(e.miou_mean),
            pct(e.miou_std)
        );
    }
    println!(
        "trained         k-means mIoU {} ± {}  (pixel accuracy {})",
        pct(r.trained.miou_mean),
        pct(r.trained.miou_std),
        pct(r.trained.pixel_accuracy_mean)
    );
    if let Some(p) = &r.probe_trained {
        let before = r
            .probe_random_init
            .as_ref()
            .map(|q| format!(" (random init {})", pct(q.miou)))
            .unwrap_or_default();
        println!("linear probe    mIoU {}{before}", pct(p.miou));
    }
    println!("report          {}/report.md", r.run_dir);
}
