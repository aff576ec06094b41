//! What an op of the op table is: its inputs and attributes, named as in
//! torch.nn.functional / torch, and how a call binds them. Each op family declares
//! its `OPS` with these; src/op_table.rs lists the families.

use super::attrs::{AttrKind, AttrSpec, Attrs};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// One input of an op.
#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    pub name: &'static str,
    pub dtype: DType,
    /// Whether backward produces `grad_<name>` for it.
    pub differentiable: bool,
    /// A list given as `name.0`, `name.1`, ... (torch.cat's `tensors`).
    pub variadic: bool,
    /// May be left out (e.g. batch_norm's running stats in training mode).
    pub optional: bool,
}

/// One op: its interface and how to run it on [`Var`]s.
pub struct OpSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub inputs: &'static [InputSpec],
    pub attrs: &'static [AttrSpec],
    pub run: fn(&OpCall) -> Result<Var>,
}

/// The inputs and resolved attributes of one call.
pub struct OpCall {
    pub op: &'static str,
    spec: &'static OpSpec,
    /// (input name, its values in order: one unless variadic).
    pub inputs: Vec<(&'static str, Vec<Var>)>,
    pub attrs: Attrs,
}

impl OpCall {
    pub fn input(&self, name: &str) -> Result<&Var> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.first())
            .ok_or_else(|| Error::op(self.op, format!("missing input {name}")))
    }

    /// An optional input, `None` when the call left it out.
    pub fn opt_input(&self, name: &str) -> Option<&Var> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.first())
    }

    pub fn inputs_of(&self, name: &str) -> Result<&[Var]> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| Error::op(self.op, format!("missing input {name}")))
    }
}

/// An input that gets no gradient (labels, class weights, running statistics, a
/// detached memory bank).
pub(crate) const fn fixed_in(name: &'static str, dtype: DType, optional: bool) -> InputSpec {
    InputSpec {
        name,
        dtype,
        differentiable: false,
        variadic: false,
        optional,
    }
}

/// An f32 input that may be left out (e.g. an affine weight).
pub(crate) const fn optional_in(name: &'static str, differentiable: bool) -> InputSpec {
    InputSpec {
        optional: true,
        differentiable,
        ..f32_in(name)
    }
}

pub(crate) const fn f32_in(name: &'static str) -> InputSpec {
    InputSpec {
        name,
        dtype: DType::F32,
        differentiable: true,
        variadic: false,
        optional: false,
    }
}

pub(crate) const fn attr(
    name: &'static str,
    kind: AttrKind,
    default: Option<&'static str>,
) -> AttrSpec {
    AttrSpec {
        name,
        kind,
        default,
    }
}

pub(crate) const INPUT: &[InputSpec] = &[f32_in("input")];
pub(crate) const INPUT_OTHER: &[InputSpec] = &[f32_in("input"), f32_in("other")];
impl OpSpec {
    /// Binds named tensors (`tensors.0`, ... for a variadic input) and attribute texts
    /// into a call. Differentiable inputs become leaves so backward reaches them; a
    /// missing, extra or mistyped tensor is an error naming it.
    pub fn bind(
        &'static self,
        mut tensors: Vec<(String, Tensor)>,
        attrs: &[(String, String)],
    ) -> Result<OpCall> {
        let attrs = Attrs::resolve(self.name, self.attrs, attrs)?;
        let mut inputs = Vec::new();
        for spec in self.inputs {
            let mut take = |name: &str| -> Option<Tensor> {
                let pos = tensors.iter().position(|(n, _)| n == name)?;
                Some(tensors.remove(pos).1)
            };
            let mut values = Vec::new();
            if spec.variadic {
                while let Some(t) = take(&format!("{}.{}", spec.name, values.len())) {
                    values.push(t);
                }
                if values.is_empty() {
                    return Err(Error::op(
                        self.name,
                        format!("missing input {0}: give {0}.0, {0}.1, ...", spec.name),
                    ));
                }
            } else if spec.optional {
                match take(spec.name) {
                    Some(t) => values.push(t),
                    None => continue,
                }
            } else {
                values.push(take(spec.name).ok_or_else(|| {
                    Error::op(self.name, format!("missing input tensor {}", spec.name))
                })?);
            }
            let mut vars = Vec::new();
            for (i, t) in values.into_iter().enumerate() {
                if t.dtype() != spec.dtype {
                    let label = if spec.variadic {
                        format!("{}.{i}", spec.name)
                    } else {
                        spec.name.to_string()
                    };
                    return Err(Error::op(
                        self.name,
                        format!("input {label} must be {}, got {}", spec.dtype, t.dtype()),
                    ));
                }
                vars.push(if spec.differentiable {
                    Var::leaf(t)
                } else {
                    Var::constant(t)
                });
            }
            inputs.push((spec.name, vars));
        }
        if let Some((extra, _)) = tensors.first() {
            let names: Vec<&str> = self.inputs.iter().map(|i| i.name).collect();
            return Err(Error::op(
                self.name,
                format!(
                    "unexpected tensor {extra}; {} takes: {}",
                    self.name,
                    names.join(", ")
                ),
            ));
        }
        Ok(OpCall {
            op: self.name,
            spec: self,
            inputs,
            attrs,
        })
    }
}

impl OpCall {
    /// Every bound input with its file name (`input`, `tensors.1`, ...).
    pub fn named(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (name, vars) in &self.inputs {
            let variadic = self
                .spec
                .inputs
                .iter()
                .any(|i| i.name == *name && i.variadic);
            if vars.len() == 1 && !name.contains('.') && !variadic {
                out.push((name.to_string(), &vars[0]));
            } else {
                for (i, v) in vars.iter().enumerate() {
                    out.push((format!("{name}.{i}"), v));
                }
            }
        }
        out
    }
}
