//! Checks of an experiment before anything is created: every key's range, the keys
//! against each other, the method's own needs, each stage and each baseline.

use std::path::Path;

use super::config::Experiment;
use super::key_ranges;
use super::load;
use super::setup::method_setup;
use super::stages::{self, Stage};
use crate::data::config::DataSource;
use crate::data::dataset::class_names;
use crate::error::{Error, Result};

/// Refuses values no run can use, naming the key.
fn validate(exp: &Experiment) -> Result<()> {
    key_ranges::check(exp)?;
    let bad = |key: &str, why: &str| Err(Error::Usage(format!("{key}: {why}")));
    if let Some(s) = exp
        .seeds
        .iter()
        .enumerate()
        .find(|(i, s)| exp.seeds[..*i].contains(s))
    {
        return bad("seeds", &format!("seed {} is given twice", s.1));
    }
    if exp.data.batch_size < 2 {
        return bad(
            "data.batch_size",
            "must be at least 2 (the other images are the negatives)",
        );
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
    exp.method.check(&method_setup(exp))?;
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
pub fn check(file: &Path, exp: &Experiment) -> Result<Vec<Stage>> {
    validate(exp)?;
    let plan = stages::plan(file, exp)?;
    for s in &plan {
        if let Some(name) = &s.name {
            validate(&s.exp).map_err(|e| Error::file(file, format!("stages.{name}: {e}")))?;
        }
    }
    Ok(plan)
}

/// A comparison run of an experiment's `baselines`: its name, its overrides, the
/// experiment they make and its stage plan.
pub struct BaselineArm {
    pub name: String,
    pub overrides: Vec<String>,
    pub exp: Experiment,
    pub plan: Vec<Stage>,
}

/// The experiment's baselines as experiments (validated), with their overrides.
pub fn baselines(file: &Path, exp: &Experiment) -> Result<Vec<BaselineArm>> {
    let mut out = Vec::new();
    for (name, sets) in &exp.baselines {
        key_ranges::check_folder_name(&format!("baselines.{name}"), name)
            .map_err(|e| Error::file(file, e))?;
        let b = load::baseline(file, exp, name, sets)?;
        if b.seed != exp.seed || b.schedule.iters != exp.schedule.iters {
            return Err(Error::file(
                file,
                format!("baselines.{name}: must keep the experiment's seed and schedule.iters (a comparison needs the same seed and budget)"),
            ));
        }
        let plan =
            check(file, &b).map_err(|e| Error::file(file, format!("baselines.{name}: {e}")))?;
        out.push(BaselineArm {
            name: name.clone(),
            overrides: sets.clone(),
            exp: b,
            plan,
        });
    }
    Ok(out)
}
