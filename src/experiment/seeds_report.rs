//! The report of an experiment with `seeds`: every arm (the experiment and each
//! baseline) trained once per training seed, each seed a complete run in
//! <run>/seeds/<seed>/, summarised as mean +- std across the training seeds. For
//! K-means the spread across K-means seeds inside each run is a second, smaller one:
//! its mean is reported beside the first.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::evaluate::{pct, Evaluation};
use super::report::Report;
use crate::error::{Error, Result};
use crate::eval::metrics::mean_std;

/// One row's mIoU across training seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spread {
    pub miou_mean: f64,
    /// Standard deviation across training seeds.
    pub miou_std: f64,
    /// The mIoU of each training seed, in the order of `seeds`.
    pub per_seed: Vec<f64>,
    /// K-means only: the mean over training seeds of each run's std across K-means
    /// seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kmeans_std_mean: Option<f64>,
}

impl Spread {
    fn of(evals: &[&Evaluation]) -> Spread {
        let per_seed: Vec<f64> = evals.iter().map(|e| e.miou()).collect();
        let (miou_mean, miou_std) = mean_std(&per_seed);
        let inner: Option<Vec<f64>> = evals.iter().map(|e| e.miou_std()).collect();
        Spread {
            miou_mean,
            miou_std,
            per_seed,
            kmeans_std_mean: inner.map(|v| mean_std(&v).0),
        }
    }

    fn text(&self) -> String {
        let inner = self
            .kmeans_std_mean
            .map(|s| format!(" (k-means ± {})", pct(s)))
            .unwrap_or_default();
        format!("{} ± {}{inner}", pct(self.miou_mean), pct(self.miou_std))
    }
}

/// One arm across the training seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Arm {
    pub name: String,
    /// The `--set` overrides that make a baseline (empty for the experiment).
    pub overrides: Vec<String>,
    /// The network before training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Spread>,
    /// The backbone's own features before training (embedding methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<Spread>,
    pub trained: Spread,
    pub seconds_mean: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedsReport {
    pub name: String,
    pub seeds: Vec<u64>,
    /// What the mIoU is (K-means mIoU or the argmax's).
    pub heading: String,
    pub arms: Vec<Arm>,
}

/// The rows of one arm, from the report of each seed (`pick` selects the arm).
fn arm(name: &str, overrides: &[String], reports: &[&Report]) -> Result<Arm> {
    let all = |f: fn(&Report) -> Option<&Evaluation>| -> Option<Spread> {
        let evals: Option<Vec<&Evaluation>> = reports.iter().map(|r| f(r)).collect();
        evals.map(|e| Spread::of(&e))
    };
    let trained: Vec<&Evaluation> = reports.iter().map(|r| &r.trained).collect();
    if trained.is_empty() {
        return Err(Error::Usage(format!("seeds: arm {name} has no run")));
    }
    let seconds: Vec<f64> = reports.iter().map(|r| r.seconds).collect();
    Ok(Arm {
        name: name.to_string(),
        overrides: overrides.to_vec(),
        start: all(|r| r.start.as_ref()),
        backbone: all(|r| r.backbone.as_ref()),
        trained: Spread::of(&trained),
        seconds_mean: mean_std(&seconds).0,
    })
}

/// Summarises the per-seed reports (the experiment's, each with its baselines) and
/// writes report.json and report.md into `root`.
pub fn write(root: &Path, reports: &[(u64, Report)]) -> Result<SeedsReport> {
    let first = &reports
        .first()
        .ok_or_else(|| Error::Usage("seeds: no seed was trained".into()))?
        .1;
    let main: Vec<&Report> = reports.iter().map(|(_, r)| r).collect();
    let mut arms = vec![arm(&first.name, &[], &main)?];
    for (i, b) in first.baselines.iter().enumerate() {
        let of_seed: Vec<&Report> = reports
            .iter()
            .map(|(_, r)| &r.baselines[i].report)
            .collect();
        arms.push(arm(&b.name, &b.overrides, &of_seed)?);
    }
    let summary = SeedsReport {
        name: first.name.clone(),
        seeds: reports.iter().map(|(s, _)| *s).collect(),
        heading: first.trained.heading().to_string(),
        arms,
    };
    let json = root.join("report.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::file(&json, e))?;
    crate::io::write_atomic(&json, text.as_bytes())?;
    crate::io::write_atomic(&root.join("report.md"), markdown(&summary).as_bytes())?;
    Ok(summary)
}

fn markdown(r: &SeedsReport) -> String {
    let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
    let mut s = format!(
        "# {}\n\n{} (%), mean ± std over the training seeds {}; each run's own report is in seeds/<seed>/.\n\n| arm | overrides | start | backbone features | trained | trained - start (points) | seconds per run |\n|---|---|---|---|---|---|---|\n",
        r.name,
        r.heading,
        seeds.join(", ")
    );
    let text = |v: &Option<Spread>| v.as_ref().map_or("-".to_string(), Spread::text);
    for a in &r.arms {
        let gain = a.start.as_ref().map_or("-".to_string(), |st| {
            format!("{:+.2}", 100.0 * (a.trained.miou_mean - st.miou_mean))
        });
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {gain} | {:.0} |\n",
            a.name,
            if a.overrides.is_empty() {
                "-".to_string()
            } else {
                a.overrides.join(", ")
            },
            text(&a.start),
            text(&a.backbone),
            a.trained.text(),
            a.seconds_mean
        ));
    }
    s
}

/// The lines a person reads at the end of a run with seeds.
pub fn print(r: &SeedsReport) {
    for a in &r.arms {
        let start = a
            .start
            .as_ref()
            .map(|s| format!("start {}, ", s.text()))
            .unwrap_or_default();
        println!(
            "{:<15} {start}trained {} over seeds {:?}",
            a.name,
            a.trained.text(),
            r.seeds
        );
    }
}
