//! Modules: trees of parameters and buffers with PyTorch's state_dict names, a
//! train/eval switch, and a forward pass.

use std::cell::Cell;

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::ops::ema::ema_update;
use crate::tensor::Tensor;

/// One entry of a module's state.
#[derive(Clone)]
pub enum State {
    /// A trainable tensor (a leaf `Var`).
    Param(Var),
    /// A tensor the module updates itself (batch norm running statistics).
    Buffer(Tensor),
}

impl State {
    pub fn tensor(&self) -> Tensor {
        match self {
            State::Param(v) => v.value(),
            State::Buffer(t) => t.clone(),
        }
    }
}

/// A network component. `visit` lists state under the names PyTorch's `state_dict`
/// uses for the same architecture, so checkpoints exported from PyTorch load directly.
pub trait Module {
    fn forward(&self, x: &Var) -> Result<Var>;

    /// Calls `f` with the full dotted name of every parameter and buffer.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State));

    /// Switches training behaviour (batch norm statistics, dropout) for the whole tree.
    fn set_training(&self, training: bool);
}

/// Joins a prefix and a local name with a dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Every (name, state) of a module, in visiting order.
pub fn state_dict(m: &dyn Module) -> Vec<(String, State)> {
    let mut out = Vec::new();
    m.visit("", &mut |n, s| out.push((n, s)));
    out
}

/// The trainable parameters of a module.
pub fn parameters(m: &dyn Module) -> Vec<(String, Var)> {
    state_dict(m)
        .into_iter()
        .filter_map(|(n, s)| match s {
            State::Param(v) => Some((n, v)),
            State::Buffer(_) => None,
        })
        .collect()
}

/// A train/eval flag for modules that behave differently in training.
#[derive(Debug)]
pub struct Mode(Cell<bool>);

impl Default for Mode {
    fn default() -> Self {
        Mode(Cell::new(true))
    }
}

impl Mode {
    pub fn training(&self) -> bool {
        self.0.get()
    }

    pub fn set(&self, training: bool) {
        self.0.set(training)
    }
}

/// Modules applied in order, named 0, 1, 2, ... as torch.nn.Sequential names them.
#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new(layers: Vec<Box<dyn Module>>) -> Self {
        Sequential { layers }
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h)?;
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit(&join(prefix, &i.to_string()), f);
        }
    }

    fn set_training(&self, training: bool) {
        for l in &self.layers {
            l.set_training(training);
        }
    }
}

/// [`ema_update`] over the trainable parameters of two networks of one architecture,
/// paired by state_dict name (buffers such as batch norm running statistics are left
/// to each network, as in MoCo and MaskContrast).
pub fn ema_update_module(key: &dyn Module, query: &dyn Module, momentum: f32) -> Result<()> {
    let (kp, qp) = (parameters(key), parameters(query));
    if let Some(((kn, _), (qn, _))) = kp.iter().zip(&qp).find(|((kn, _), (qn, _))| kn != qn) {
        return Err(Error::op(
            "ema",
            format!("key parameter {kn} is paired with query parameter {qn}"),
        ));
    }
    let ks: Vec<Tensor> = kp.iter().map(|(_, v)| v.value()).collect();
    let qs: Vec<Tensor> = qp.iter().map(|(_, v)| v.value()).collect();
    ema_update(&ks, &qs, momentum)
}
