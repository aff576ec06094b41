//! `wgseg shaders check [DIR]`: naga validation of every kernel, no GPU needed.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::{Error, Result};
use crate::gpu::shader_source;

pub fn check(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) if !d.is_dir() => {
            return Err(Error::file(&d, "shaders check: not a directory"));
        }
        Some(d) => Some(d),
        None => shader_source::override_dir_from_env()?,
    };
    let results = shader_source::check_all(dir.as_deref())?;
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(()) => println!("ok    {name}"),
            Err(e) => {
                failed += 1;
                println!("FAIL  {e}");
            }
        }
    }
    println!("{} checked, {} failed", results.len(), failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
