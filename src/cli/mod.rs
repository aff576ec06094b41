//! The `wgseg` command line.

mod bench;
mod data;
mod gradcheck;
mod info;
mod op;
mod profile;
mod run;
mod shaders;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wgseg",
    version,
    about = "Contrastive and unsupervised semantic segmentation on hand-written WGSL kernels"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an experiment (writes runs/<name>/<time>/).
    Train(train::TrainCli),
    /// Evaluate a run's checkpoint (K-means over seeds, linear probe).
    Eval(run::EvalCli),
    /// Coloured prediction PNGs (with overlay and legend) for an image or a folder.
    Infer(run::InferCli),
    /// Datasets: write the built-in synthetic set in the VOC layout.
    Data(data::DataCli),
    /// Print the chosen adapter, its limits and features.
    Info,
    /// Validate shaders with naga (no GPU needed).
    Shaders {
        #[command(subcommand)]
        action: ShadersAction,
    },
    /// Run one op on the GPU from a safetensors file (and its backward with grad_output).
    Op(op::OpArgs),
    /// Time a few training steps of an experiment and show where the time goes, per kernel.
    Profile(profile::ProfileCli),
    /// Measure kernels (ms, GFLOP/s or GB/s) on this adapter.
    Bench {
        /// Only cases whose name contains this.
        filter: Option<String>,
        /// Also write the results as a JSON array to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Timed runs per case (the median is reported).
        #[arg(long, default_value_t = 10)]
        iters: usize,
    },
    /// Check every op (or the named ones) against its CPU f64 reference and finite differences.
    Gradcheck {
        /// Ops to check (default: all).
        ops: Vec<String>,
        /// Seed of the random shapes and values.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum ShadersAction {
    /// Parse and validate every shader; with DIR, its NAME.wgsl files override the embedded ones.
    Check { dir: Option<PathBuf> },
}

/// Runs the CLI; errors print as one line and exit non-zero.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Info => info::run(),
        Command::Data(args) => data::run(args),
        Command::Eval(args) => run::eval(args),
        Command::Infer(args) => run::infer_cmd(args),
        Command::Shaders {
            action: ShadersAction::Check { dir },
        } => shaders::check(dir),
        Command::Op(args) => op::run(args),
        Command::Gradcheck { ops, seed } => gradcheck::run(&ops, seed),
        Command::Bench {
            filter,
            json,
            iters,
        } => bench::run(filter, json, iters),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wgseg: {e}");
            ExitCode::from(2)
        }
    }
}
