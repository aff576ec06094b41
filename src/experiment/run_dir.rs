//! A run's folder: runs/<name>/<time>/ with the resolved config, metrics.jsonl (one
//! JSON object per log step and per evaluation), checkpoints, plots and the report.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::Experiment;
use crate::error::{Error, Result};

pub const CONFIG: &str = "config.yaml";
pub const METRICS: &str = "metrics.jsonl";
pub const CHECKPOINT: &str = "checkpoint.safetensors";

pub struct RunDir {
    pub path: PathBuf,
    metrics: File,
}

fn open_metrics(dir: &Path) -> Result<File> {
    let p = dir.join(METRICS);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| Error::file(&p, e))
}

impl RunDir {
    /// A new folder under `root/name/`, named by the local time (suffixed if taken).
    pub fn create(root: &Path, name: &str) -> Result<RunDir> {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
        let base = root.join(name);
        let mut path = base.join(&stamp);
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = base.join(format!("{stamp}-{n}"));
        }
        RunDir::create_at(&path)
    }

    /// A fresh run at `path` (created if missing), its metrics emptied.
    pub fn create_at(path: &Path) -> Result<RunDir> {
        std::fs::create_dir_all(path).map_err(|e| Error::file(path, e))?;
        let metrics = path.join(METRICS);
        std::fs::write(&metrics, "").map_err(|e| Error::file(&metrics, e))?;
        Ok(RunDir {
            metrics: open_metrics(path)?,
            path: path.to_path_buf(),
        })
    }

    /// An existing run folder, to resume; its metrics after `step` are dropped so the
    /// resumed run writes them again.
    pub fn resume(path: &Path, step: usize) -> Result<RunDir> {
        let p = path.join(METRICS);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::file(&p, e))?;
        let kept: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                    .is_some_and(|s| s as usize <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        crate::io::write_atomic(&p, kept.as_bytes())?;
        Ok(RunDir {
            metrics: open_metrics(path)?,
            path: path.to_path_buf(),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes the fully resolved experiment (defaults filled in).
    pub fn write_config(&self, exp: &Experiment) -> Result<()> {
        let text = serde_yaml::to_string(exp).map_err(|e| Error::file(self.file(CONFIG), e))?;
        crate::io::write_atomic(&self.file(CONFIG), text.as_bytes())
    }

    /// Appends one record to metrics.jsonl.
    pub fn log(&mut self, record: &serde_json::Value) -> Result<()> {
        let p = self.file(METRICS);
        writeln!(self.metrics, "{record}").map_err(|e| Error::file(&p, e))?;
        self.metrics.flush().map_err(|e| Error::file(&p, e))
    }

    /// Every record logged so far.
    pub fn records(&self) -> Result<Vec<serde_json::Value>> {
        let p = self.file(METRICS);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::file(&p, e))?;
        text.lines()
            .map(|l| serde_json::from_str(l).map_err(|e| Error::file(&p, e)))
            .collect()
    }
}
