//! A finished (or checkpointed) run folder loaded back: its resolved config, a
//! device and the method at its last checkpoint, for `wgseg eval` and `wgseg infer`.

use std::path::Path;

use super::checkpoint::resume_method;
use super::config::Experiment;
use super::datasets::Data;
use super::evaluate::{evaluate, probe, record};
use super::load;
use super::run_dir::{CHECKPOINT, CONFIG};
use super::setup::open_device;
use super::stages;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io;
use crate::method::Method;

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
    let exp = load::load(&file, &[])?;
    if !exp.seeds.is_empty() {
        return Err(Error::file(
            dir,
            "this run trained one run per seed (seeds): give one of its seeds/<seed> folders",
        ));
    }
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
