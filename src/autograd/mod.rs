//! Reverse-mode autograd on a tape. Every op on [`Var`]s that needs a gradient
//! appends a node (its inputs and a backward rule) stamped with an increasing id;
//! `backward` replays the reachable part of the tape newest-first, which is a valid
//! reverse topological order because a node is always recorded after its inputs.
//! Gradients of every recorded value (intermediates included) are returned, and
//! leaf parameters accumulate theirs in `.grad()` until `zero_grad`.

mod grad_mode;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use grad_mode::{is_grad_enabled, no_grad, NoGradGuard};

use crate::error::{Error, Result};
use crate::tensor::elementwise as kernels;
use crate::tensor::{shape_str, Tensor};

/// The backward rule of one node: gradient of the output -> gradient of each input
/// (`None` where an input gets no gradient).
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>>>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Node {
    id: u64,
    value: RefCell<Tensor>,
    requires_grad: bool,
    parents: Vec<Var>,
    backward: Option<BackwardFn>,
    grad: RefCell<Option<Tensor>>,
}

/// A tensor that takes part in autograd.
#[derive(Clone)]
pub struct Var(Rc<Node>);

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "Var#{}({:?}, grad={})",
            self.0.id,
            self.0.value.borrow().shape(),
            self.0.requires_grad
        )
    }
}

impl Var {
    fn make(
        value: Tensor,
        requires_grad: bool,
        parents: Vec<Var>,
        backward: Option<BackwardFn>,
    ) -> Var {
        Var(Rc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value: RefCell::new(value),
            requires_grad,
            parents,
            backward,
            grad: RefCell::new(None),
        }))
    }

    /// A value that needs no gradient (data, labels).
    pub fn constant(value: Tensor) -> Var {
        Var::make(value, false, Vec::new(), None)
    }

    /// A leaf that gets a gradient (a parameter or an input under study).
    pub fn leaf(value: Tensor) -> Var {
        Var::make(value, true, Vec::new(), None)
    }

    /// The result of an op: recorded on the tape when grad mode is on and an input
    /// needs a gradient, else a constant.
    pub fn from_op(
        value: Tensor,
        parents: &[&Var],
        backward: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + 'static,
    ) -> Var {
        if is_grad_enabled() && parents.iter().any(|p| p.requires_grad()) {
            Var::make(
                value,
                true,
                parents.iter().map(|p| (*p).clone()).collect(),
                Some(Box::new(backward)),
            )
        } else {
            Var::constant(value)
        }
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    pub fn is_leaf(&self) -> bool {
        self.0.backward.is_none()
    }

    /// The current value (cheap: tensors share storage).
    pub fn value(&self) -> Tensor {
        self.0.value.borrow().clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.0.value.borrow().shape().to_vec()
    }

    /// Replaces a leaf's value (optimisers, checkpoint loading).
    pub fn set_value(&self, value: Tensor) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::Autograd(
                "only a leaf's value can be replaced".into(),
            ));
        }
        let old = self.0.value.borrow().shape().to_vec();
        if value.shape() != old.as_slice() {
            return Err(Error::Autograd(format!(
                "set_value: shape {} does not match {}",
                shape_str(value.shape()),
                shape_str(&old)
            )));
        }
        *self.0.value.borrow_mut() = value;
        Ok(())
    }

    /// The same value cut from the tape.
    pub fn detach(&self) -> Var {
        Var::constant(self.value())
    }

    /// A leaf's accumulated gradient.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }

    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }

    /// Backward from a one-element value.
    pub fn backward(&self) -> Result<Gradients> {
        let value = self.value();
        if value.numel() != 1 {
            return Err(Error::Autograd(format!(
                "backward needs a scalar, got shape {}; use backward_with for a given output gradient",
                shape_str(value.shape())
            )));
        }
        let seed = kernels::full(value.gpu(), value.shape(), 1.0)?;
        self.backward_with(seed)
    }

    /// Backward with an explicit gradient of this value.
    pub fn backward_with(&self, seed: Tensor) -> Result<Gradients> {
        if seed.shape() != self.0.value.borrow().shape() {
            return Err(Error::Autograd(format!(
                "output gradient shape {} does not match value shape {}",
                shape_str(seed.shape()),
                shape_str(&self.shape())
            )));
        }
        if !self.requires_grad() {
            return Err(Error::Autograd(
                "backward on a value that does not require grad".into(),
            ));
        }
        let order = self.tape();
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), seed);
        for node in &order {
            let Some(g) = grads.get(&node.id()).cloned() else {
                continue;
            };
            match &node.0.backward {
                Some(rule) => {
                    let _guard = NoGradGuard::new();
                    let parent_grads = rule(&g)?;
                    for (parent, pg) in node.0.parents.iter().zip(parent_grads) {
                        let Some(pg) = pg else { continue };
                        if !parent.requires_grad() {
                            continue;
                        }
                        accumulate(&mut grads, parent.id(), pg)?;
                    }
                }
                None => {
                    let mut slot = node.0.grad.borrow_mut();
                    *slot = Some(match slot.take() {
                        Some(prev) => kernels::add(&prev, &g)?,
                        None => g,
                    });
                }
            }
        }
        Ok(Gradients { grads })
    }

    /// The recorded nodes reachable from this one, newest first.
    fn tape(&self) -> Vec<Var> {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![self.clone()];
        let mut nodes = Vec::new();
        while let Some(v) = stack.pop() {
            if !v.requires_grad() || !seen.insert(v.id()) {
                continue;
            }
            stack.extend(v.0.parents.iter().cloned());
            nodes.push(v);
        }
        nodes.sort_by_key(|v| std::cmp::Reverse(v.id()));
        nodes
    }
}

fn accumulate(grads: &mut HashMap<u64, Tensor>, id: u64, g: Tensor) -> Result<()> {
    let merged = match grads.remove(&id) {
        Some(prev) => kernels::add(&prev, &g)?,
        None => g,
    };
    grads.insert(id, merged);
    Ok(())
}

/// Gradients of one backward pass, for every recorded value.
#[derive(Debug)]
pub struct Gradients {
    grads: HashMap<u64, Tensor>,
}

impl Gradients {
    /// The gradient of the backward root with respect to `v` (a leaf or an intermediate).
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.grads.get(&v.id())
    }

    pub fn len(&self) -> usize {
        self.grads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

/// Clears the accumulated gradient of every parameter.
pub fn zero_grad(params: &[Var]) {
    for p in params {
        p.zero_grad();
    }
}
