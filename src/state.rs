//! What a checkpoint holds, named once: a method (or a memory) lists its state to a
//! [`StateVisitor`], and the same listing serves saving ([`Saver`]) and loading
//! ([`Loader`]), so the two cannot drift apart. Tensors are named `<prefix>.<name>`;
//! numbers (queue pointers, step counts) go into the checkpoint's metadata.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::nn::module::{state_dict, Module, State};
use crate::optim::Optimizer;
use crate::tensor::Tensor;

pub type Tensors = HashMap<String, Tensor>;
pub type Meta = HashMap<String, String>;

/// One pass over a state: each call names a piece of it.
pub trait StateVisitor {
    /// A module's parameters and buffers as `<prefix>.<state_dict name>`.
    fn module(&mut self, prefix: &str, module: &dyn Module) -> Result<()>;
    /// An optimiser's step count and per-parameter state as `<prefix>.*`.
    fn optimizer(&mut self, prefix: &str, optimizer: &mut Optimizer) -> Result<()>;
    /// A tensor its owner holds outright (a queue's storage, u32 flags): on load it is
    /// replaced by the checkpoint's, which must have its dtype and shape.
    fn tensor(&mut self, name: &str, tensor: &mut Tensor) -> Result<()>;
    /// A metadata number.
    fn number(&mut self, key: &str, value: &mut usize) -> Result<()>;
}

/// Collects a state into checkpoint tensors and metadata.
#[derive(Default)]
pub struct Saver {
    pub tensors: Vec<(String, Tensor)>,
    pub meta: Meta,
}

impl StateVisitor for Saver {
    fn module(&mut self, prefix: &str, module: &dyn Module) -> Result<()> {
        for (name, s) in state_dict(module) {
            self.tensors.push((format!("{prefix}.{name}"), s.tensor()));
        }
        Ok(())
    }

    fn optimizer(&mut self, prefix: &str, optimizer: &mut Optimizer) -> Result<()> {
        self.meta
            .insert(format!("{prefix}.steps"), optimizer.steps().to_string());
        for (i, (s0, s1)) in optimizer.state().into_iter().enumerate() {
            self.tensors.push((format!("{prefix}.{i}.0"), s0));
            if let Some(s1) = s1 {
                self.tensors.push((format!("{prefix}.{i}.1"), s1));
            }
        }
        Ok(())
    }

    fn tensor(&mut self, name: &str, tensor: &mut Tensor) -> Result<()> {
        self.tensors.push((name.to_string(), tensor.clone()));
        Ok(())
    }

    fn number(&mut self, key: &str, value: &mut usize) -> Result<()> {
        self.meta.insert(key.to_string(), value.to_string());
        Ok(())
    }
}

/// Restores a state from checkpoint tensors and metadata, checking every shape.
pub struct Loader<'a> {
    pub tensors: &'a Tensors,
    pub meta: &'a Meta,
}

impl Loader<'_> {
    fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::Usage(format!("checkpoint has no tensor {name}")))
    }

    /// Writes checkpoint tensor `name` into `dst`, whose storage others share.
    fn copy_into(&self, dst: &Tensor, name: &str) -> Result<()> {
        let src = self.get(name)?;
        if src.shape() != dst.shape() {
            return Err(Error::Usage(format!(
                "checkpoint tensor {name} has shape {:?}, expected {:?}",
                src.shape(),
                dst.shape()
            )));
        }
        dst.write(&src.to_vec()?)
    }
}

impl StateVisitor for Loader<'_> {
    fn module(&mut self, prefix: &str, module: &dyn Module) -> Result<()> {
        for (name, s) in state_dict(module) {
            let key = format!("{prefix}.{name}");
            let t = self.get(&key)?;
            let current = s.tensor();
            if t.shape() != current.shape() {
                return Err(Error::Usage(format!(
                    "tensor {key} has shape {:?}, the model expects {:?}",
                    t.shape(),
                    current.shape()
                )));
            }
            match s {
                State::Param(v) => v.set_value(t.clone())?,
                State::Buffer(b) => b.write(&t.to_vec()?)?,
            }
        }
        Ok(())
    }

    fn optimizer(&mut self, prefix: &str, optimizer: &mut Optimizer) -> Result<()> {
        for (i, (s0, s1)) in optimizer.state().into_iter().enumerate() {
            self.copy_into(&s0, &format!("{prefix}.{i}.0"))?;
            if let Some(s1) = s1 {
                self.copy_into(&s1, &format!("{prefix}.{i}.1"))?;
            }
        }
        let mut steps = 0;
        self.number(&format!("{prefix}.steps"), &mut steps)?;
        optimizer.set_steps(steps as u32);
        Ok(())
    }

    fn tensor(&mut self, name: &str, tensor: &mut Tensor) -> Result<()> {
        let src = self.get(name)?;
        if src.shape() != tensor.shape() || src.dtype() != tensor.dtype() {
            return Err(Error::Usage(format!(
                "checkpoint tensor {name} is {} {:?}, expected {} {:?}",
                src.dtype(),
                src.shape(),
                tensor.dtype(),
                tensor.shape()
            )));
        }
        *tensor = src.clone();
        Ok(())
    }

    fn number(&mut self, key: &str, value: &mut usize) -> Result<()> {
        *value = self
            .meta
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Usage(format!("checkpoint metadata lacks {key}")))?;
        Ok(())
    }
}
