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

/// Resolves `name` to its source: the override directory's file when it exists,
/// else the embedded one; its `// #include NAME` lines replaced by the headers.
pub fn load(name: &str, override_dir: Option<&Path>) -> Result<ShaderSource> {
    let (origin, text) = match read_override(override_dir, name)? {
        Some(found) => found,
        None => match lookup(EMBEDDED, name) {
            Some(text) => (format!("shaders/{name}.wgsl"), text.to_string()),
            None => return Err(Error::Shader(format!("no shader named {name:?}"))),
        },
    };
    let text = splice_includes(&origin, &text, override_dir)?;
    Ok(ShaderSource {
        name: name.to_string(),
        origin,
        text,
    })
}

fn lookup(table: &'static [(&str, &str)], name: &str) -> Option<&'static str> {
    table.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// `dir/<rel>.wgsl` as (origin, text) when it exists.
fn read_override(dir: Option<&Path>, rel: &str) -> Result<Option<(String, String)>> {
    let Some(dir) = dir else { return Ok(None) };
    let path = dir.join(format!("{rel}.wgsl"));
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    Ok(Some((path.display().to_string(), text)))
}

/// Replaces each `// #include NAME` line by shaders/include/NAME.wgsl (or the override
/// directory's include/NAME.wgsl), so that a struct a family's files share is written
/// once and each file still validates on its own. naga's line numbers then count the
/// spliced lines.
fn splice_includes(origin: &str, text: &str, override_dir: Option<&Path>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let Some(name) = line.trim().strip_prefix("// #include ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let name = name.trim();
        let header = match read_override(override_dir, &format!("include/{name}"))? {
            Some((_, t)) => t,
            None => lookup(INCLUDES, name)
                .ok_or_else(|| {
                    Error::Shader(format!(
                        "{origin}:{}: no header shaders/include/{name}.wgsl",
                        i + 1
                    ))
                })?
                .to_string(),
        };
        out.push_str(&header);
    }
    Ok(out)
}

/// The override directory from the environment, if set; one that is not a directory
/// is an error (ignoring it would run the built-in kernels in silence).
pub fn override_dir_from_env() -> Result<Option<PathBuf>> {
    let Some(dir) = std::env::var_os(SHADER_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    else {
        return Ok(None);
    };
    if !dir.is_dir() {
        return Err(Error::file(
            &dir,
            format!("{SHADER_DIR_ENV} is not a directory"),
        ));
    }
    Ok(Some(dir))
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

/// The `.wgsl` files of an override directory (and of its include/) that replace no
/// built-in shader or header: a misspelt name would otherwise run the built-in in
/// silence. Each as (path, what it should have been named after).
pub fn stray_files(dir: &Path) -> Result<Vec<(PathBuf, &'static str)>> {
    let mut stray = Vec::new();
    for (folder, table, kind) in [
        (dir.to_path_buf(), EMBEDDED, "kernel"),
        (dir.join("include"), INCLUDES, "header"),
    ] {
        if !folder.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&folder).map_err(|e| Error::file(&folder, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::file(&folder, e))?.path();
            let stem = path
                .file_name()
                .and_then(|f| f.to_str()?.strip_suffix(".wgsl"));
            if stem.is_some_and(|s| lookup(table, s).is_none()) {
                stray.push((path, kind));
            }
        }
    }
    stray.sort();
    Ok(stray)
}

/// Refuses an override directory before anything runs: its first file that overrides
/// nothing, fails validation or changes a kernel's interface.
pub fn check_override_dir(dir: &Path) -> Result<()> {
    match check_all(Some(dir))?.into_iter().find_map(|(_, r)| r.err()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Validates every shader (embedded, with overrides from `dir` when given, each held
/// to the built-in's interface) and returns one result per shader name, then one
/// failure per override file that replaces nothing.
pub fn check_all(dir: Option<&Path>) -> Result<Vec<(String, Result<()>)>> {
    let mut names: Vec<String> = embedded_names().map(String::from).collect();
    names.sort();
    let mut out: Vec<(String, Result<()>)> = names
        .into_iter()
        .map(|n| {
            let r = load(&n, dir).and_then(|s| {
                let checked = check(&s)?;
                if dir.is_some() {
                    super::interface::check_against_builtin(&s, &checked)?;
                }
                Ok(())
            });
            (n, r)
        })
        .collect();
    if let Some(d) = dir {
        for (path, kind) in stray_files(d)? {
            let msg = format!("overrides no built-in {kind}");
            out.push((path.display().to_string(), Err(Error::file(&path, msg))));
        }
    }
    Ok(out)
}
