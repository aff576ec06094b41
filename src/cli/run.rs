//! `wgseg eval RUN_DIR` and `wgseg infer RUN_DIR --input PATH --out DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::Result;
use crate::experiment::evaluate::Evaluation;
use crate::experiment::infer::infer;
use crate::experiment::loaded_run::evaluate_run;

#[derive(Args)]
pub struct EvalCli {
    /// A run folder (runs/<name>/<time>) with a checkpoint.
    run: PathBuf,
}

#[derive(Args)]
pub struct InferCli {
    /// A finished run folder (with checkpoint.safetensors and clusters.safetensors).
    run: PathBuf,
    /// An image, or a folder of .png/.jpg images.
    #[arg(long)]
    input: PathBuf,
    /// Where the prediction pictures go.
    #[arg(long)]
    out: PathBuf,
}

pub fn eval(a: EvalCli) -> Result<ExitCode> {
    let r = evaluate_run(&a.run)?;
    if let Some(e) = Evaluation::from_record(&r) {
        println!("step {}: {}", r["step"], e.summary());
    }
    if let Some(m) = r["linear_probe"]["miou"].as_f64() {
        println!("linear probe mIoU {:.2}", 100.0 * m);
    }
    println!("wrote {}", a.run.join("eval.json").display());
    Ok(ExitCode::SUCCESS)
}

pub fn infer_cmd(a: InferCli) -> Result<ExitCode> {
    let n = infer(&a.run, &a.input, &a.out)?;
    println!("wrote {n} prediction pictures to {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
