//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the built `wgseg` binary with `args` and extra environment.
pub fn wgseg(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgseg"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run wgseg")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// A fresh scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// ||a - b|| / ||b||
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    d / n.max(1e-30)
}

/// `wgseg train FILE` with `output.dir=OUT` and each of `sets` as a --set override,
/// then `extra`.
pub fn train_args(file: &str, out: &Path, sets: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["train".to_string(), file.to_string()];
    let output = format!("output.dir={}", out.display());
    for s in std::iter::once(output.as_str()).chain(sets.iter().copied()) {
        args.push("--set".into());
        args.push(s.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `wgseg` with owned arguments.
pub fn run(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    wgseg(&refs, &[])
}

/// The one run folder of experiment `name` under `out`.
pub fn only_run_dir(out: &Path, name: &str) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(out.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// Runs `args` (which stop early with `--stop-at`) into `out`, then resumes the run
/// folder it left under `out/name`; returns that folder.
pub fn stop_then_resume(out: &Path, name: &str, args: &[String]) -> PathBuf {
    let o = run(args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--resume"), "{}", stdout(&o));
    let dir = only_run_dir(out, name);
    let o = wgseg(&["train", "--resume", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

/// A run's metrics.jsonl records without the wall-clock field step_ms.
pub fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            if r["kind"] == "train" {
                assert!(r["step_ms"].as_f64().unwrap() > 0.0, "{r}");
                r.as_object_mut().unwrap().remove("step_ms");
            }
            r
        })
        .collect()
}

/// A run folder's report.json.
pub fn report_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// `wgseg infer RUN --input tests/data/images --out OUT`.
pub fn infer_test_images(run: &Path, out: &Path) -> Output {
    wgseg(
        &[
            "infer",
            run.to_str().unwrap(),
            "--input",
            "tests/data/images",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    )
}

/// 32-px images of 4 a batch through a thin network with no pretrained weights: what
/// every tiny experiment of the tests shares.
pub const TINY_NETWORK: &[&str] = &[
    "data.source.size=32",
    "data.image_size=32",
    "data.batch_size=4",
    "model.width=0.125",
    "model.pretrained=null",
    "model.head_channels=8",
];

/// The quickstart shrunk to seconds: [`TINY_NETWORK`], few images, a few steps.
pub fn tiny_quickstart_sets() -> Vec<&'static str> {
    let mut sets = vec!["data.source.train=24", "data.source.val=12"];
    sets.extend(TINY_NETWORK);
    sets.extend([
        "model.embed_dim=8",
        "method.queue_size=8",
        "schedule.iters=4",
        "eval.kmeans.seeds=[0]",
        "eval.kmeans.restarts=1",
        "eval.linear_probe={iters: 3, lr: 0.1, images: 8}",
        "output.log_every=1",
        "output.checkpoint_every=2",
        "output.pictures=2",
    ]);
    sets
}

/// `wgseg train` of [`tiny_quickstart_sets`] into `out`, then `extra`.
pub fn tiny_quickstart(out: &Path, extra: &[&str]) -> Vec<String> {
    train_args(
        "experiments/quickstart.yaml",
        out,
        &tiny_quickstart_sets(),
        extra,
    )
}
