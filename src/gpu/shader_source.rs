//! Where kernel sources come from and how they are checked: the embedded shaders/
//! files, optionally overridden from a directory (`WGSEG_SHADER_DIR`), each parsed and
//! validated with naga before use so a broken edit fails with file:line:column.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/embedded_shaders.rs"));

/// Environment variable naming a directory whose `NAME.wgsl` files replace the
/// embedded kernels of the same name.
pub const SHADER_DIR_ENV: &str = "WGSEG_SHADER_DIR";

/// A shader's text and where it came from (for error messages).
#[derive(Clone, Debug)]
pub struct ShaderSource {
    pub name: String,
    pub origin: String,
    pub text: String,
}

/// Names of every embedded shader.
pub fn embedded_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _)| *n)
}

fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Resolves `name` to its source: the override directory's file when it exists,
/// else the embedded one.
pub fn load(name: &str, override_dir: Option<&Path>) -> Result<ShaderSource> {
    if let Some(dir) = override_dir {
        let path = dir.join(format!("{name}.wgsl"));
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
            return Ok(ShaderSource {
                name: name.to_string(),
                origin: path.display().to_string(),
                text,
            });
        }
    }
    match embedded(name) {
        Some(text) => Ok(ShaderSource {
            name: name.to_string(),
            origin: format!("shaders/{name}.wgsl"),
            text: text.to_string(),
        }),
        None => Err(Error::Shader(format!("no shader named {name:?}"))),
    }
}

/// The override directory from the environment, if set.
pub fn override_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(SHADER_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A parsed and validated shader.
pub struct CheckedShader {
    pub module: naga::Module,
    pub info: naga::valid::ModuleInfo,
}

/// Parses and validates a source with naga; errors read `origin:line:col: message`.
pub fn check(src: &ShaderSource) -> Result<CheckedShader> {
    let module = naga::front::wgsl::parse_str(&src.text).map_err(|e| {
        let at = e
            .location(&src.text)
            .map(|l| format!("{}:{}", l.line_number, l.line_position))
            .unwrap_or_else(|| "1:1".into());
        Error::Shader(format!("{}:{at}: {}", src.origin, e.message()))
    })?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    let info = validator.validate(&module).map_err(|e| {
        let at = e
            .location(&src.text)
            .map(|l| format!("{}:{}", l.line_number, l.line_position))
            .unwrap_or_else(|| "1:1".into());
        let mut msg = e.as_inner().to_string();
        let mut cause = std::error::Error::source(e.as_inner());
        while let Some(c) = cause {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cause = c.source();
        }
        Error::Shader(format!("{}:{at}: {msg}", src.origin))
    })?;
    Ok(CheckedShader { module, info })
}

/// Validates every shader (embedded, with overrides from `dir` when given) and
/// returns one result per shader name, plus override files that match no kernel.
pub fn check_all(dir: Option<&Path>) -> Result<Vec<(String, Result<()>)>> {
    let mut names: Vec<String> = embedded_names().map(String::from).collect();
    if let Some(d) = dir {
        let entries = std::fs::read_dir(d).map_err(|e| Error::file(d, e))?;
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = file.strip_suffix(".wgsl") {
                if !names.iter().any(|n| n == stem) {
                    names.push(stem.to_string());
                }
            }
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let r = load(&n, dir).and_then(|s| check(&s).map(|_| ()));
            (n, r)
        })
        .collect())
}
