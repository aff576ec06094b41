//! `wgseg profile X.yaml [--set k=v ...] [--steps N] [--top K]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::Result;
use crate::experiment::profile::{profile, ProfileArgs};

#[derive(Args)]
pub struct ProfileCli {
    /// The experiment file (experiments/*.yaml).
    file: PathBuf,
    /// Override any key, as for train: --set data.batch_size=4.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Warm steps timed in each pass (after one that compiles the kernels).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Kernels listed, the slowest first.
    #[arg(long, default_value_t = 25)]
    top: usize,
}

pub fn run(a: ProfileCli) -> Result<ExitCode> {
    profile(&ProfileArgs {
        file: &a.file,
        sets: &a.sets,
        steps: a.steps,
        top: a.top,
    })?;
    Ok(ExitCode::SUCCESS)
}
