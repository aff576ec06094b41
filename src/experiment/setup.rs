//! From a resolved experiment to what trains it: the device, and the method built
//! from its `method` section and the sections of the experiment it reads.

use super::config::Experiment;
use crate::error::{Error, Result};
use crate::gpu::adapter::AdapterChoice;
use crate::gpu::shader_source;
use crate::gpu::Gpu;
use crate::method::{Method, Setup};

pub fn open_device(exp: &Experiment) -> Result<Gpu> {
    let gpu = Gpu::with_choice(&AdapterChoice {
        backend: exp.device.backend.clone(),
        name: exp.device.adapter.clone(),
    })?;
    if let Some(dir) = &exp.device.shader_dir {
        if !dir.is_dir() {
            return Err(Error::file(dir, "device.shader_dir is not a directory"));
        }
        shader_source::check_override_dir(dir)?;
        gpu.set_shader_dir(Some(dir.clone()));
    }
    if let Some(s) = exp.device.timeout_s {
        gpu.set_timeout(s)?;
    }
    Ok(gpu)
}

/// The sections of `exp` a method reads.
pub fn method_setup(exp: &Experiment) -> Setup {
    Setup {
        seed: exp.seed,
        data: exp.data.clone(),
        augment: exp.augment.clone(),
        model: exp.model.clone(),
        optim: exp.optim.clone(),
        optimizers: exp.optimizers.clone(),
        on_nonfinite: exp.output.on_nonfinite,
    }
}

pub fn build_method(gpu: &Gpu, exp: &Experiment) -> Result<Box<dyn Method>> {
    exp.method.build(gpu, &method_setup(exp))
}
