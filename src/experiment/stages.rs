//! The stages of a run: each a single-stage experiment (the file's with the stage's
//! overrides, steps and schedule) over its range of the run's steps. A file without
//! `stages` is one unnamed stage, itself.

use std::path::Path;

use super::config::Experiment;
use super::load;
use crate::error::{Error, Result};
use crate::optim::config::{OptimCfg, OptimKind};

pub struct Stage {
    /// `None` for a file without stages (its records and checkpoints name none).
    pub name: Option<String>,
    /// What the stage trains: no stages, `schedule` the stage's.
    pub exp: Experiment,
    /// The run's steps start..end are this stage's.
    pub start: usize,
    pub end: usize,
}

/// Kind and frozen parameters: what makes an optimiser's state, which carries over.
fn structure(o: &OptimCfg) -> (OptimKind, &[String]) {
    (o.kind, &o.frozen)
}

/// The stages of `exp` (from `file`), in order; errors name the stage and the key.
pub fn plan(file: &Path, exp: &Experiment) -> Result<Vec<Stage>> {
    if exp.stages.is_empty() {
        return Ok(vec![Stage {
            name: None,
            exp: exp.clone(),
            start: 0,
            end: exp.schedule.iters,
        }]);
    }
    let bad = |key: String, why: &str| Err(Error::file(file, format!("{key}: {why}")));
    let mut out: Vec<Stage> = Vec::new();
    for (i, s) in exp.stages.iter().enumerate() {
        let key = format!("stages.{}", s.name);
        if s.name.is_empty() || exp.stages[..i].iter().any(|t| t.name == s.name) {
            return bad(key, "a stage needs a name of its own");
        }
        if s.iters == 0 {
            return bad(format!("{key}.iters"), "must be at least 1");
        }
        let stage = load::stage(file, exp, i)?;
        if structure(&stage.optim) != structure(&exp.optim) {
            return bad(
                format!("{key}.optim"),
                "kind and frozen stay the experiment's (the optimiser's state carries over)",
            );
        }
        for (set, o) in &stage.optimizers {
            if structure(o) != structure(&exp.optimizers[set]) {
                return bad(
                    format!("{key}.optimizers.{set}"),
                    "kind and frozen stay the experiment's (the optimiser's state carries over)",
                );
            }
        }
        let start = out.last().map_or(0, |p| p.end);
        out.push(Stage {
            name: Some(s.name.clone()),
            exp: stage,
            start,
            end: start + s.iters,
        });
    }
    let total = out.last().map_or(0, |s| s.end);
    if total != exp.schedule.iters {
        return Err(Error::file(
            file,
            format!(
                "schedule.iters: {} but the stages add up to {total} steps",
                exp.schedule.iters
            ),
        ));
    }
    Ok(out)
}

/// The index of the stage a run continues at step `step` (the last at the end).
pub fn at(stages: &[Stage], step: usize) -> usize {
    stages
        .iter()
        .position(|s| step < s.end)
        .unwrap_or(stages.len() - 1)
}
