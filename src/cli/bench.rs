//! `wgseg bench [FILTER] [--json PATH]`: kernel throughput on this adapter.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bench;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

pub fn run(filter: Option<String>, json: Option<PathBuf>, iters: usize) -> Result<ExitCode> {
    if iters == 0 {
        return Err(Error::Usage(
            "wgseg bench: --iters must be at least 1 (the median of no runs is no figure)".into(),
        ));
    }
    let gpu = Gpu::new()?;
    let cases: Vec<_> = bench::all()
        .into_iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    if cases.is_empty() {
        return Err(Error::Usage(format!(
            "wgseg bench: no case matches {:?}",
            filter.unwrap_or_default()
        )));
    }
    println!(
        "adapter: {} ({:?}), median of {iters} runs",
        gpu.info.name, gpu.info.backend
    );
    println!(
        "{:<24} {:<36} {:>10} {:>10} {:>10}",
        "case", "shape", "ms", "GFLOP/s", "GB/s"
    );
    let mut results = Vec::new();
    for case in &cases {
        let m = bench::measure(&gpu, case, 2, iters)?;
        let fmt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<24} {:<36} {:>10.3} {:>10} {:>10}",
            m.name,
            m.shape,
            m.ms,
            fmt(m.gflops),
            fmt(m.gbps)
        );
        results.push(m);
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&results).map_err(|e| Error::file(&path, e))?;
        crate::io::write_atomic(&path, text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
