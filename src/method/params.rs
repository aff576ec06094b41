//! Optimiser parameter groups from a model and the `optim` section: backbone at the
//! base rate, head at `head_lr_scale`, `frozen` prefixes left out.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::experiment::config::{OptimCfg, OptimKind};
use crate::nn::module::{parameters, Module};
use crate::optim::{Kind, Optimizer, ParamGroup};

/// The optimiser of `optim` over `model`'s parameters (names `backbone.*`, `head.*`).
pub fn optimizer(model: &dyn Module, optim: &OptimCfg) -> Result<Optimizer> {
    let params = parameters(model);
    for prefix in &optim.frozen {
        if !params.iter().any(|(n, _)| n.starts_with(prefix.as_str())) {
            return Err(Error::Usage(format!(
                "optim.frozen: no parameter name starts with {prefix:?}"
            )));
        }
    }
    let (mut backbone, mut head): (Vec<Var>, Vec<Var>) = (Vec::new(), Vec::new());
    for (name, p) in params {
        if optim.frozen.iter().any(|f| name.starts_with(f.as_str())) {
            continue;
        }
        if name.starts_with("backbone.") {
            backbone.push(p);
        } else {
            head.push(p);
        }
    }
    let kind = match optim.kind {
        OptimKind::Sgd => Kind::Sgd {
            momentum: optim.momentum as f32,
            dampening: 0.0,
            nesterov: optim.nesterov,
        },
        OptimKind::Adam => Kind::Adam {
            beta1: optim.betas[0] as f32,
            beta2: optim.betas[1] as f32,
            eps: optim.eps as f32,
        },
        OptimKind::Adamw => Kind::AdamW {
            beta1: optim.betas[0] as f32,
            beta2: optim.betas[1] as f32,
            eps: optim.eps as f32,
        },
    };
    let wd = optim.weight_decay as f32;
    Optimizer::new(
        kind,
        vec![
            ParamGroup {
                params: backbone,
                lr_scale: 1.0,
                weight_decay: wd,
            },
            ParamGroup {
                params: head,
                lr_scale: optim.head_lr_scale as f32,
                weight_decay: wd,
            },
        ],
    )
}
