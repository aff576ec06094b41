//! Reading an experiment file: YAML into the typed schema, `--set a.b.c=value`
//! overrides, and one-line errors that name the file, the line, the key path and
//! the nearest valid key.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::config::Experiment;
use crate::error::{Error, Result};

/// The closest of the backticked names after "expected" in a serde message.
fn suggestion(message: &str) -> Option<String> {
    let unknown = message.split('`').nth(1)?;
    let expected = message.split_once("expected")?.1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|c| (strsim::levenshtein(unknown, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| c.to_string())
}

fn describe(file: &Path, line: Option<usize>, path: &str, message: &str, origin: &str) -> Error {
    let at = match line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    };
    // serde_yaml appends its own location and may prefix its own path: the line and
    // the full key path are given in front instead.
    let mut message = message.split(" at line ").next().unwrap_or(message);
    if let Some((prefix, rest)) = message.split_once(": ") {
        if path.starts_with(prefix) {
            message = rest;
        }
    }
    let hint = suggestion(message)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    let key = if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    };
    Error::File {
        path: at,
        msg: format!("{origin}{key}{message}{hint}"),
    }
}

/// Deserialises from YAML text, keeping the line of any error.
fn from_text(file: &Path, text: &str) -> Result<Experiment> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let line = inner
            .location()
            .map(|l| duplicate_line(text, l.line(), &message).unwrap_or(l.line()));
        describe(file, line, &path, &message, "")
    })
}

/// serde names a duplicate key at the first line of its mapping; the line a reader
/// needs is the key's second occurrence at that mapping's indentation.
fn duplicate_line(text: &str, mapping_line: usize, message: &str) -> Option<usize> {
    // serde's own message, or serde_yaml's when it parses a tree for --set.
    let key = match message.split_once("duplicate field `") {
        Some((_, rest)) => rest.split('`').next()?,
        None => message
            .split_once("duplicate entry with key \"")?
            .1
            .split('"')
            .next()?,
    };
    // (indentation, text) of a line; a list item's key sits after its "- ".
    fn split(l: &str) -> (usize, &str) {
        let t = l.trim_start();
        let depth = l.len() - t.len();
        match t.strip_prefix("- ") {
            Some(rest) => (
                depth + 2 + rest.len() - rest.trim_start().len(),
                rest.trim_start(),
            ),
            None => (depth, t),
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let (depth, _) = split(lines.get(mapping_line.checked_sub(1)?)?);
    let mut seen = 0;
    for (i, l) in lines.iter().enumerate().skip(mapping_line - 1) {
        let (d, t) = split(l);
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let starts_item = i + 1 > mapping_line && l.trim_start().starts_with("- ");
        if i + 1 > mapping_line && (d < depth || starts_item && d == depth) {
            break;
        }
        let named = t
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'));
        if named && d == depth {
            seen += 1;
            if seen == 2 {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Sets `a.b.c` in a YAML tree to `value` (parsed as YAML), creating mappings; a
/// number after a list (`stages.1.iters`) is an index into it.
fn apply_set(root: &mut Value, assignment: &str) -> Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("--set {assignment:?}: expected KEY.PATH=VALUE")))?;
    let value: Value = serde_yaml::from_str(raw)
        .map_err(|e| Error::Usage(format!("--set {key}: value {raw:?} is not YAML: {e}")))?;
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if let Value::Sequence(items) = node {
            let len = items.len();
            let item = part.parse::<usize>().ok().and_then(|n| items.get_mut(n));
            let item = item.ok_or_else(|| {
                Error::Usage(format!(
                    "--set {key}: {} is a list of {len}: {part:?} is not an index into it",
                    parts[..i].join(".")
                ))
            })?;
            if i + 1 == parts.len() {
                *item = value;
                return Ok(());
            }
            node = item;
            continue;
        }
        let Some(map) = node.as_mapping_mut() else {
            return Err(Error::Usage(format!(
                "--set {key}: {} is not a mapping",
                parts[..i].join(".")
            )));
        };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map
            .entry(k)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    Err(Error::Usage(format!("--set {assignment:?}: empty key")))
}

/// The override behind a deserialisation error at key `path`: one whose key is on
/// that path, preferring the one that names the unknown field of `message` (inside a
/// tagged enum the path stops at the enum).
fn culprit<'a>(sets: &'a [String], path: &str, message: &str) -> Option<&'a String> {
    let key = |s: &String| s.split('=').next().unwrap_or_default().to_string();
    let related: Vec<&String> = sets
        .iter()
        .filter(|s| {
            let k = key(s);
            path.starts_with(&k) || k.starts_with(path)
        })
        .collect();
    let unknown = message.split('`').nth(1).unwrap_or_default();
    related
        .iter()
        .find(|s| key(s).rsplit('.').next() == Some(unknown))
        .or(related.first())
        .copied()
}

/// Loads `file` with `--set` overrides applied.
pub fn load(file: &Path, sets: &[String]) -> Result<Experiment> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::file(file, e))?;
    if sets.is_empty() {
        return from_text(file, &text);
    }
    let mut tree: Value = serde_yaml::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let line = e
            .location()
            .map(|l| duplicate_line(&text, l.line(), &message).unwrap_or(l.line()));
        describe(file, line, "", &message, "")
    })?;
    for s in sets {
        apply_set(&mut tree, s)?;
    }
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let set = culprit(sets, &path, &message);
        match set {
            Some(s) => describe(file, None, &path, &message, &format!("--set {s}: ")),
            // Not caused by an override: point at the file's line when the file alone shows it.
            None => match from_text(file, &text) {
                Err(e) => e,
                Ok(_) => describe(file, None, &path, &message, ""),
            },
        }
    })
}

/// `exp` (resolved, from `file`) as a YAML tree changed by `edit` and read back;
/// errors start with `origin` and the `--set` of `sets` behind them.
fn edited(
    file: &Path,
    exp: &Experiment,
    origin: &str,
    sets: &[String],
    edit: impl FnOnce(&mut Value) -> Result<()>,
) -> Result<Experiment> {
    let mut tree = serde_yaml::to_value(exp).map_err(|e| Error::file(file, e))?;
    edit(&mut tree).map_err(|e| Error::file(file, format!("{origin}{e}")))?;
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let origin = match culprit(sets, &path, &message) {
            Some(s) => format!("{origin}--set {s}: "),
            None => origin.to_string(),
        };
        describe(file, None, &path, &message, &origin)
    })
}

/// `exp` (resolved, from `file`) with `sets` applied as `--set` does, its own
/// `baselines` dropped: the experiment of baseline `name`.
pub fn baseline(file: &Path, exp: &Experiment, name: &str, sets: &[String]) -> Result<Experiment> {
    let mut exp = exp.clone();
    exp.baselines.clear();
    edited(file, &exp, &format!("baselines.{name}: "), sets, |tree| {
        sets.iter().try_for_each(|s| apply_set(tree, s))
    })
}

/// Sets each key of `keys` in the mapping at `section` of `tree`.
fn merge(tree: &mut Value, section: &[&str], keys: &Mapping) -> Result<()> {
    let mut node = tree;
    for part in section {
        node = node.get_mut(*part).ok_or_else(|| {
            Error::Usage(format!("{} is not in the experiment", section.join(".")))
        })?;
    }
    let map = node
        .as_mapping_mut()
        .ok_or_else(|| Error::Usage(format!("{} is not a mapping", section.join("."))))?;
    for (k, v) in keys {
        map.insert(k.clone(), v.clone());
    }
    Ok(())
}

/// The single-stage experiment of stage `index` of `exp` (resolved, from `file`):
/// its overrides applied, `schedule` its steps and policy, no stages.
pub fn stage(file: &Path, exp: &Experiment, index: usize) -> Result<Experiment> {
    let s = &exp.stages[index];
    let mut base = exp.clone();
    base.stages.clear();
    base.schedule.iters = s.iters;
    if let Some(p) = &s.policy {
        base.schedule.policy = p.clone();
    }
    if let Some(w) = &s.warmup {
        base.schedule.warmup = Some(w.clone());
    }
    let origin = format!("stages.{}: ", s.name);
    edited(file, &base, &origin, &[], |tree| {
        merge(tree, &["method"], &s.method)?;
        merge(tree, &["optim"], &s.optim)?;
        s.optimizers
            .iter()
            .try_for_each(|(set, keys)| match exp.optimizers.contains_key(set) {
                true => merge(tree, &["optimizers", set], keys),
                false => Err(Error::Usage(format!(
                    "optimizers.{set}: the experiment has no optimiser for {set:?}"
                ))),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("wgseg_{name}_{}.yaml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = "name: t\ndata:\n  source: {kind: synthetic, train: 8, val: 4, size: 32}\n  batch_size: 4\n  image_size: 32\nmodel:\n  backbone: resnet\n  depth: 18\nmethod:\n  kind: maskcontrast\noptim:\n  kind: sgd\n  lr: 0.01\nschedule:\n  iters: 10\n";

    #[test]
    fn a_duplicate_key_is_reported_at_its_second_line() {
        let cases = [
            ("name: a\nseed: 1\nname: b\n", ":3: duplicate field `name`"),
            (
                "# c\ndata:\n  image_size: 64\n  batch_size: 4\n  image_size: 32\n",
                ":5: data: duplicate field `image_size`",
            ),
            (
                "stages:\n  - name: a\n    iters: 3\n  - name: b\n    iters: 4\n    iters: 5\n",
                ":6: stages[1]: duplicate field `iters`",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let p = write(&format!("dup{i}"), text);
            for sets in [vec![], vec!["seed=3".to_string()]] {
                let e = load(&p, &sets).unwrap_err().to_string();
                let line = want.split(' ').next().unwrap();
                assert!(e.contains(line) && e.contains("duplicate"), "{e} / {want}");
            }
            let e = load(&p, &[]).unwrap_err().to_string();
            assert!(e.ends_with(want), "{e} / {want}");
        }
    }

    #[test]
    fn loads_with_defaults_and_overrides() {
        let p = write("good", GOOD);
        let e = load(&p, &[]).unwrap();
        assert_eq!(e.model.output_stride, 8);
        let e = load(
            &p,
            &[
                "optim.lr=0.5".into(),
                "model.aspp_rates=[1, 2]".into(),
                "eval.kmeans.restarts=7".into(),
            ],
        )
        .unwrap();
        assert_eq!(e.optim.lr, 0.5);
        assert_eq!(e.model.aspp_rates, vec![1, 2]);
        assert_eq!(e.eval.kmeans.restarts, 7);
    }

    #[test]
    fn unknown_keys_name_file_line_path_and_suggestion() {
        let p = write("typo", &GOOD.replace("  batch_size: 4", "  batch_sise: 4"));
        let msg = load(&p, &[]).unwrap_err().to_string();
        assert!(
            msg.contains(&format!(
                "{}:4: data.batch_sise: unknown field",
                p.display()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("data")
                && msg.contains("batch_sise")
                && msg.contains("did you mean `batch_size`?"),
            "{msg}"
        );
        let msg = load(&write("good2", GOOD), &["optim.lrr=1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("--set optim.lrr=1") && msg.contains("did you mean `lr`?"),
            "{msg}"
        );
        let msg = load(
            &write("variant", &GOOD.replace("kind: sgd", "kind: sdg")),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("did you mean `sgd`?"), "{msg}");
        let msg = load(&write("missing", &GOOD.replace("  lr: 0.01\n", "")), &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing field `lr`"), "{msg}");
        assert!(load(Path::new("/nonexistent.yaml"), &[])
            .unwrap_err()
            .to_string()
            .contains("/nonexistent.yaml"));
    }
}
