//! The interface the engine expects of a kernel is that of the built-in shader of the
//! same name: its entry points, what each binds (binding numbers, read-only or
//! read-write storage, the uniform block and its fields), fixed workgroup sizes (the
//! engine sizes its dispatch grids by them) and override constants. An override that
//! changes any of these is refused naming the file, the entry point and the difference,
//! by `wgseg shaders check` and before a run compiles it.

use super::kernels::{reflect, EntryBindings};
use super::shader_source::{self, CheckedShader, ShaderSource};
use crate::error::{Error, Result};

/// Refuses `src` (a shader loaded with overrides, validated as `checked`) when its
/// interface differs from the built-in shader's of the same name.
pub fn check_against_builtin(src: &ShaderSource, checked: &CheckedShader) -> Result<()> {
    let builtin = shader_source::load(&src.name, None)?;
    if builtin.text == src.text {
        // Nothing in the override directory touches this shader.
        return Ok(());
    }
    let builtin = shader_source::check(&builtin)?;
    let fail = |msg: String| Err(Error::Shader(format!("{}: {msg}", src.origin)));
    for want in &builtin.module.entry_points {
        let entry = want.name.as_str();
        let Some(got) = checked.module.entry_points.iter().find(|e| e.name == entry) else {
            return fail(format!(
                "has no entry point {entry:?}, which the engine dispatches"
            ));
        };
        let (w, g) = (
            reflect(&builtin, &src.name, entry)?,
            reflect(checked, &src.name, entry)?,
        );
        if (&w.storage, w.uniform) != (&g.storage, g.uniform) {
            return fail(format!(
                "{entry}: binds {}; the engine binds {}",
                describe(&g),
                describe(&w)
            ));
        }
        if w.uniform_fields != g.uniform_fields {
            return fail(format!(
                "{entry}: its uniform struct has fields {}; the engine fills {}",
                fields(&g),
                fields(&w)
            ));
        }
        let fixed = want.workgroup_size_overrides.is_none();
        if fixed
            && (got.workgroup_size != want.workgroup_size || got.workgroup_size_overrides.is_some())
        {
            return fail(format!(
                "{entry}: @workgroup_size must stay {:?}: the engine sizes its dispatch grids by it",
                want.workgroup_size
            ));
        }
    }
    let overrides = |c: &CheckedShader| -> Vec<(String, String, bool)> {
        c.module
            .overrides
            .iter()
            .map(|(_, o)| {
                let ty = format!("{:?}", c.module.types[o.ty].inner);
                (o.name.clone().unwrap_or_default(), ty, o.init.is_some())
            })
            .collect()
    };
    let (want, got) = (overrides(&builtin), overrides(checked));
    for (name, ty, _) in &want {
        match got.iter().find(|(n, _, _)| n == name) {
            None => {
                return fail(format!(
                    "has no override constant {name}, which the engine sets"
                ))
            }
            Some((_, t, _)) if t != ty => {
                return fail(format!(
                "override {name} changed its type: the engine sets it as the built-in declares it"
            ))
            }
            Some(_) => {}
        }
    }
    if let Some((name, _, _)) = got
        .iter()
        .find(|(n, _, init)| !init && !want.iter().any(|(w, _, _)| w == n))
    {
        return fail(format!(
            "override {name} is new and has no default: the engine does not set it"
        ));
    }
    Ok(())
}

fn describe(b: &EntryBindings) -> String {
    let mut parts: Vec<String> = b
        .storage
        .iter()
        .map(|&(n, read_only)| format!("{n}: {}", if read_only { "read" } else { "read_write" }))
        .collect();
    parts.extend(b.uniform.map(|n| format!("{n}: uniform")));
    format!("[{}]", parts.join(", "))
}

fn fields(b: &EntryBindings) -> String {
    let f: Vec<String> = b
        .uniform_fields
        .iter()
        .map(|(n, off)| format!("{n}@{off}"))
        .collect();
    format!("[{}]", f.join(", "))
}
