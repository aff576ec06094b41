//! What a method's checkpoint holds besides its model: named tensors (optimiser
//! state, queues, a second network) and metadata numbers, restored with shape checks.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::nn::module::{state_dict, Module, State};
use crate::optim::Optimizer;
use crate::tensor::Tensor;

/// Tensors and metadata of a checkpoint, as `Method::extra_state` returns them.
pub type Extra = (Vec<(String, Tensor)>, HashMap<String, String>);

/// The checkpoint tensor `name`.
pub fn tensor<'a>(tensors: &'a HashMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    tensors
        .get(name)
        .ok_or_else(|| Error::Usage(format!("checkpoint has no tensor {name}")))
}

/// Copies checkpoint tensor `name` into `dst`, which must have its shape.
pub fn copy_into(dst: &Tensor, tensors: &HashMap<String, Tensor>, name: &str) -> Result<()> {
    let src = tensor(tensors, name)?;
    if src.shape() != dst.shape() {
        return Err(Error::Usage(format!(
            "checkpoint tensor {name} has shape {:?}, expected {:?}",
            src.shape(),
            dst.shape()
        )));
    }
    dst.write(&src.to_vec()?)
}

/// Checkpoint tensor `name` in place of `dst`, whose shape and dtype it must have
/// (for state of any dtype that the method owns outright, such as u32 flags).
pub fn replace(dst: &mut Tensor, tensors: &HashMap<String, Tensor>, name: &str) -> Result<()> {
    let src = tensor(tensors, name)?;
    if src.shape() != dst.shape() || src.dtype() != dst.dtype() {
        return Err(Error::Usage(format!(
            "checkpoint tensor {name} is {} {:?}, expected {} {:?}",
            src.dtype(),
            src.shape(),
            dst.dtype(),
            dst.shape()
        )));
    }
    *dst = src.clone();
    Ok(())
}

/// The metadata number `key`.
pub fn number(meta: &HashMap<String, String>, key: &str) -> Result<usize> {
    meta.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Usage(format!("checkpoint metadata lacks {key}")))
}

/// Adds `module`'s parameters and buffers as `<prefix>.<name>`.
pub fn save_module(module: &dyn Module, prefix: &str, extra: &mut Extra) {
    extra.0.extend(
        state_dict(module)
            .into_iter()
            .map(|(n, s)| (format!("{prefix}.{n}"), s.tensor())),
    );
}

/// Restores what [`save_module`] saved.
pub fn load_module(
    module: &dyn Module,
    prefix: &str,
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    for (n, s) in state_dict(module) {
        let name = format!("{prefix}.{n}");
        match s {
            State::Param(v) => v.set_value(tensor(tensors, &name)?.clone())?,
            State::Buffer(t) => copy_into(&t, tensors, &name)?,
        }
    }
    Ok(())
}

/// Adds the optimiser's step count and per-parameter state as `<prefix>.*`.
pub fn save_optimizer(optimizer: &Optimizer, prefix: &str, extra: &mut Extra) {
    extra
        .1
        .insert(format!("{prefix}.steps"), optimizer.steps().to_string());
    for (i, (s0, s1)) in optimizer.state().into_iter().enumerate() {
        extra.0.push((format!("{prefix}.{i}.0"), s0));
        if let Some(s1) = s1 {
            extra.0.push((format!("{prefix}.{i}.1"), s1));
        }
    }
}

/// Restores what [`save_optimizer`] saved.
pub fn load_optimizer(
    optimizer: &mut Optimizer,
    prefix: &str,
    tensors: &HashMap<String, Tensor>,
    meta: &HashMap<String, String>,
) -> Result<()> {
    for (i, (s0, s1)) in optimizer.state().into_iter().enumerate() {
        copy_into(&s0, tensors, &format!("{prefix}.{i}.0"))?;
        if let Some(s1) = s1 {
            copy_into(&s1, tensors, &format!("{prefix}.{i}.1"))?;
        }
    }
    optimizer.set_steps(number(meta, &format!("{prefix}.steps"))? as u32);
    Ok(())
}
