//! Optimisers as fused WGSL updates (shaders/optim.wgsl) and learning-rate schedules.

pub mod config;
pub mod finite;
mod optimizer;
pub mod schedule;

pub use optimizer::{Kind, Optimizer, ParamGroup};
