//! An optimiser section of an experiment file (`optim`, `optimizers.<set>`) and the
//! optimiser it builds over a model: backbone at the base rate, head at
//! `head_lr_scale`, `frozen` prefixes left out.

use serde::{Deserialize, Serialize};

use super::{Kind, Optimizer, ParamGroup};
use crate::error::{Error, Result};
use crate::nn::module::{parameters, Module};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimCfg {
    pub kind: OptimKind,
    pub lr: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Learning-rate multiplier of the head relative to the backbone.
    #[serde(default = "same_lr")]
    pub head_lr_scale: f64,
    /// Parameter name prefixes that are not trained (e.g. "backbone.features.0").
    #[serde(default)]
    pub frozen: Vec<String>,
    /// Keep batch norm in eval mode (running statistics) while training.
    #[serde(default)]
    pub freeze_bn: bool,
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn same_lr() -> f64 {
    1.0
}

/// The optimiser of `cfg` over `model`'s parameters (names `backbone.*`, `head.*`).
pub fn optimizer(model: &dyn Module, cfg: &OptimCfg) -> Result<Optimizer> {
    let params = parameters(model);
    for prefix in &cfg.frozen {
        if !params.iter().any(|(n, _)| n.starts_with(prefix.as_str())) {
            return Err(Error::Usage(format!(
                "optim.frozen: no parameter name starts with {prefix:?}"
            )));
        }
    }
    let (mut backbone, mut head) = (Vec::new(), Vec::new());
    for (name, p) in params {
        if cfg.frozen.iter().any(|f| name.starts_with(f.as_str())) {
            continue;
        }
        if name.starts_with("backbone.") {
            backbone.push((name, p));
        } else {
            head.push((name, p));
        }
    }
    let kind = match cfg.kind {
        OptimKind::Sgd => Kind::Sgd {
            momentum: cfg.momentum as f32,
            dampening: 0.0,
            nesterov: cfg.nesterov,
        },
        OptimKind::Adam => Kind::Adam {
            beta1: cfg.betas[0] as f32,
            beta2: cfg.betas[1] as f32,
            eps: cfg.eps as f32,
        },
        OptimKind::Adamw => Kind::AdamW {
            beta1: cfg.betas[0] as f32,
            beta2: cfg.betas[1] as f32,
            eps: cfg.eps as f32,
        },
    };
    let wd = cfg.weight_decay as f32;
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
                lr_scale: cfg.head_lr_scale as f32,
                weight_decay: wd,
            },
        ],
        cfg.lr,
    )
}
