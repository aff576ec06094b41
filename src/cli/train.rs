//! `wgseg train X.yaml [--set k=v ...] [--dry-run]` and `wgseg train --resume RUN_DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::Result;
use crate::experiment::train::{train, TrainArgs};

#[derive(Args)]
pub struct TrainCli {
    /// The experiment file (experiments/*.yaml).
    file: Option<PathBuf>,
    /// Override any key: --set optim.lr=0.01 --set model.aspp_rates=[6,12].
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Validate the file, build the model, open the data and print the plan.
    #[arg(long)]
    dry_run: bool,
    /// Continue the run in RUN_DIR from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "file")]
    resume: Option<PathBuf>,
    /// Stop (with a checkpoint) after this many steps; --resume continues. The steps
    /// of an experiment's baselines count after its own (a STEP beyond
    /// schedule.iters stops inside the first baseline).
    #[arg(long, value_name = "STEP")]
    stop_at: Option<usize>,
}

pub fn run(a: TrainCli) -> Result<ExitCode> {
    train(&TrainArgs {
        file: a.file,
        sets: a.sets,
        dry_run: a.dry_run,
        resume: a.resume,
        stop_at: a.stop_at,
    })?;
    Ok(ExitCode::SUCCESS)
}
