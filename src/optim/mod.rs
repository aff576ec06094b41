//! Optimisers as fused WGSL updates (shaders/optim.wgsl) and learning-rate schedules.

mod optimizer;
pub mod schedule;

pub use optimizer::{Kind, Optimizer, ParamGroup};
