//! Experiments: YAML files that drive data, model, method, optimiser, schedule,
//! evaluation and output. Each section's schema lives with its consumer; this
//! folder composes them into runs.

mod checkpoint;
pub mod config;
mod datasets;
mod dry_run;
pub mod evaluate;
pub mod infer;
mod key_ranges;
pub mod load;
pub mod loaded_run;
pub mod profile;
pub mod progress;
pub mod report;
pub mod run_dir;
mod seeds_report;
pub mod setup;
pub mod stages;
pub mod train;
mod validate;
