//! A run's checkpoint: the method's whole state after a step (written atomically, as
//! every file of a run), read back to resume, to move to the next stage, or to
//! evaluate. One implementation for all three.

use std::path::Path;

use super::run_dir::{RunDir, CHECKPOINT};
use super::setup::build_method;
use super::stages::{self, Stage};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io;
use crate::method::Method;
use crate::state::{Loader, Meta, Saver, StateVisitor, Tensors};
use crate::tensor::Tensor;

/// A method's whole state: the model as `model.*`, then what the method lists.
pub fn snapshot(method: &mut dyn Method) -> Result<(Vec<(String, Tensor)>, Meta)> {
    let mut saver = Saver::default();
    saver.module("model", method.model())?;
    method.visit_state(&mut saver)?;
    Ok((saver.tensors, saver.meta))
}

/// Restores what [`snapshot`] took.
pub fn restore(method: &mut dyn Method, tensors: &Tensors, meta: &Meta) -> Result<()> {
    let mut loader = Loader { tensors, meta };
    loader.module("model", method.model())?;
    method.visit_state(&mut loader)
}

/// Writes the method's state after `step`, a step of `stage`.
pub fn save_checkpoint(
    dir: &RunDir,
    method: &mut dyn Method,
    step: usize,
    stage: &Stage,
) -> Result<()> {
    let (tensors, mut meta) = snapshot(method)?;
    // A finite loss does not make the update after it finite: check what is kept, on
    // the one host copy the file is written from.
    let host = io::to_host(&tensors)?;
    if let Some((name, (_, v))) = host
        .iter()
        .find_map(|(n, _, d)| d.first_nonfinite().map(|f| (n, f)))
    {
        return Err(Error::Usage(format!(
            "step {step}: {name} holds {v}: training diverged (a smaller optim.lr may help)"
        )));
    }
    meta.insert("step".into(), step.to_string());
    if let Some(name) = &stage.name {
        meta.insert("stage".into(), name.clone());
    }
    io::write_host(&dir.file(CHECKPOINT), &host, Some(meta))
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
pub fn resume_method(gpu: &Gpu, path: &Path, plan: &[Stage]) -> Result<(usize, Box<dyn Method>)> {
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
