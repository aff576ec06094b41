//! Op attributes as `wgseg op --attr k=v` and gradcheck cases give them: parsed
//! against each op's declared kinds, with defaults, into typed values.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Int,
    Float,
    Bool,
    Str,
    /// A comma-separated integer tuple.
    Ints,
    /// An integer pair; a single integer means both.
    Pair,
    /// An integer tuple or `none` (e.g. reduction dims: none means all).
    OptInts,
}

impl fmt::Display for AttrKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            AttrKind::Int => "int",
            AttrKind::Float => "float",
            AttrKind::Bool => "bool",
            AttrKind::Str => "str",
            AttrKind::Ints => "ints",
            AttrKind::Pair => "int pair",
            AttrKind::OptInts => "ints or none",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Ints(Vec<i64>),
    None,
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write!(f, "{v}"),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Str(v) => write!(f, "{v}"),
            AttrValue::Ints(v) => {
                let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "{}", s.join(","))
            }
            AttrValue::None => write!(f, "none"),
        }
    }
}

/// One attribute an op takes; `default` None means required.
#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub kind: AttrKind,
    pub default: Option<&'static str>,
}

fn parse_ints(s: &str) -> Option<Vec<i64>> {
    s.split(',').map(|p| p.trim().parse::<i64>().ok()).collect()
}

/// Parses `text` as a value of `kind`.
pub fn parse_value(kind: AttrKind, text: &str) -> Option<AttrValue> {
    let t = text.trim();
    match kind {
        AttrKind::Int => t.parse().ok().map(AttrValue::Int),
        AttrKind::Float => t.parse().ok().map(AttrValue::Float),
        AttrKind::Bool => match t {
            "true" | "True" => Some(AttrValue::Bool(true)),
            "false" | "False" => Some(AttrValue::Bool(false)),
            _ => None,
        },
        AttrKind::Str => Some(AttrValue::Str(t.to_string())),
        AttrKind::Ints => parse_ints(t).map(AttrValue::Ints),
        AttrKind::Pair => match parse_ints(t)?.as_slice() {
            [v] => Some(AttrValue::Ints(vec![*v, *v])),
            [a, b] => Some(AttrValue::Ints(vec![*a, *b])),
            _ => None,
        },
        AttrKind::OptInts => {
            if t.eq_ignore_ascii_case("none") {
                Some(AttrValue::None)
            } else {
                parse_ints(t).map(AttrValue::Ints)
            }
        }
    }
}

/// Resolved attributes of one op call.
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    op: String,
    values: BTreeMap<String, AttrValue>,
}

impl Attrs {
    /// Resolves `given` (name, text) pairs against `specs`: unknown names, bad values
    /// and missing required attributes are errors naming the op and attribute.
    pub fn resolve(op: &str, specs: &[AttrSpec], given: &[(String, String)]) -> Result<Attrs> {
        let mut values = BTreeMap::new();
        for (name, text) in given {
            let spec = specs.iter().find(|s| s.name == name).ok_or_else(|| {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                Error::op(
                    op,
                    format!(
                        "unknown attribute {name:?}; {op} takes: {}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            let v = parse_value(spec.kind, text).ok_or_else(|| {
                Error::op(
                    op,
                    format!("attribute {name}={text:?} is not a valid {}", spec.kind),
                )
            })?;
            values.insert(name.clone(), v);
        }
        for spec in specs {
            if values.contains_key(spec.name) {
                continue;
            }
            let default = spec.default.ok_or_else(|| {
                Error::op(
                    op,
                    format!("missing required attribute {} ({})", spec.name, spec.kind),
                )
            })?;
            let v = parse_value(spec.kind, default).ok_or_else(|| {
                Error::op(
                    op,
                    format!(
                        "default {default:?} of {} is not a {}",
                        spec.name, spec.kind
                    ),
                )
            })?;
            values.insert(spec.name.to_string(), v);
        }
        Ok(Attrs {
            op: op.to_string(),
            values,
        })
    }

    fn get(&self, name: &str) -> Result<&AttrValue> {
        self.values
            .get(name)
            .ok_or_else(|| Error::op(&self.op, format!("attribute {name} is not declared")))
    }

    fn wrong(&self, name: &str, want: &str) -> Error {
        Error::op(&self.op, format!("attribute {name} must be {want}"))
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        match self.get(name)? {
            AttrValue::Int(v) => Ok(*v),
            _ => Err(self.wrong(name, "an int")),
        }
    }

    pub fn float(&self, name: &str) -> Result<f64> {
        match self.get(name)? {
            AttrValue::Float(v) => Ok(*v),
            AttrValue::Int(v) => Ok(*v as f64),
            _ => Err(self.wrong(name, "a float")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            AttrValue::Bool(v) => Ok(*v),
            _ => Err(self.wrong(name, "true or false")),
        }
    }

    pub fn str(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            AttrValue::Str(v) => Ok(v),
            _ => Err(self.wrong(name, "a string")),
        }
    }

    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        match self.get(name)? {
            AttrValue::Ints(v) => Ok(v.clone()),
            AttrValue::Int(v) => Ok(vec![*v]),
            _ => Err(self.wrong(name, "an integer tuple")),
        }
    }

    /// An integer tuple, or `None` when the attribute is `none`.
    pub fn opt_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name)? {
            AttrValue::None => Ok(None),
            _ => self.ints(name).map(Some),
        }
    }

    /// `name=value` pairs, for printing a case.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[AttrSpec] = &[
        AttrSpec {
            name: "dim",
            kind: AttrKind::OptInts,
            default: Some("none"),
        },
        AttrSpec {
            name: "stride",
            kind: AttrKind::Pair,
            default: Some("1"),
        },
        AttrSpec {
            name: "keepdim",
            kind: AttrKind::Bool,
            default: Some("false"),
        },
        AttrSpec {
            name: "eps",
            kind: AttrKind::Float,
            default: None,
        },
    ];

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_kinds_and_defaults() {
        let a = Attrs::resolve(
            "t",
            SPECS,
            &given(&[("eps", "1e-5"), ("stride", "2"), ("dim", "1,-1")]),
        )
        .unwrap();
        assert_eq!(a.ints("stride").unwrap(), vec![2, 2]);
        assert_eq!(a.opt_ints("dim").unwrap(), Some(vec![1, -1]));
        assert!(!a.bool("keepdim").unwrap());
        assert_eq!(a.float("eps").unwrap(), 1e-5);
    }

    #[test]
    fn refuses_unknown_bad_and_missing() {
        let e = Attrs::resolve("t", SPECS, &given(&[("eps", "1"), ("bogus", "1")])).unwrap_err();
        assert!(e.to_string().contains("unknown attribute \"bogus\""), "{e}");
        let e = Attrs::resolve("t", SPECS, &given(&[("eps", "x")])).unwrap_err();
        assert!(
            e.to_string().contains("eps=\"x\" is not a valid float"),
            "{e}"
        );
        let e = Attrs::resolve("t", SPECS, &[]).unwrap_err();
        assert!(
            e.to_string().contains("missing required attribute eps"),
            "{e}"
        );
        let e =
            Attrs::resolve("t", SPECS, &given(&[("eps", "1"), ("stride", "1,2,3")])).unwrap_err();
        assert!(e.to_string().contains("int pair"), "{e}");
    }
}
