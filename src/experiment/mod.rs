//! Experiments: YAML files that drive data, model, method, optimiser, schedule,
//! evaluation and output.

pub mod config;
pub mod evaluate;
pub mod infer;
pub mod load;
pub mod model;
pub mod progress;
pub mod report;
pub mod run_dir;
pub mod stages;
pub mod train;
