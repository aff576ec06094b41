//! `wgseg gradcheck [OP...]`: relative errors of every op on this adapter.

use std::process::ExitCode;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::gradcheck::{self, FORWARD_TOL, GRAD_TOL};

pub fn run(ops: &[String], seed: u64) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    println!(
        "adapter: {} ({:?}); tolerances: forward {FORWARD_TOL:e}, gradient {GRAD_TOL:e}",
        gpu.info.name, gpu.info.backend
    );
    let reports = gradcheck::run(&gpu, ops, seed)?;
    let mut failed = 0;
    for r in &reports {
        let grads: Vec<String> = r
            .grads
            .iter()
            .map(|(n, e)| format!("d{n} {e:.1e}"))
            .collect();
        let status = if r.passed() { "ok  " } else { "FAIL" };
        if !r.passed() {
            failed += 1;
        }
        println!(
            "{status} {:<12} fwd {:.1e}  {:<40} {}",
            r.op,
            r.forward,
            grads.join("  "),
            r.label
        );
    }
    println!("{} passed, {} failed", reports.len() - failed, failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
