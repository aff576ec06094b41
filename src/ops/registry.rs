//! The op table behind `wgseg op`, `wgseg op --list` and `wgseg gradcheck`: every op
//! with its inputs and attributes named as in torch.nn.functional / torch.

use super::attrs::{AttrKind, AttrSpec, Attrs};
use super::elementwise::UnaryOp;
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

    pub fn inputs_of(&self, name: &str) -> Result<&[Var]> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| Error::op(self.op, format!("missing input {name}")))
    }
}

const fn f32_in(name: &'static str) -> InputSpec {
    InputSpec {
        name,
        dtype: DType::F32,
        differentiable: true,
        variadic: false,
    }
}

const fn attr(name: &'static str, kind: AttrKind, default: Option<&'static str>) -> AttrSpec {
    AttrSpec {
        name,
        kind,
        default,
    }
}

const INPUT: &[InputSpec] = &[f32_in("input")];
const INPUT_OTHER: &[InputSpec] = &[f32_in("input"), f32_in("other")];
const SCALAR_OTHER: &[AttrSpec] = &[attr("other", AttrKind::Float, None)];
const DIM: &[AttrSpec] = &[attr("dim", AttrKind::Int, None)];
const REDUCE: &[AttrSpec] = &[
    attr("dim", AttrKind::OptInts, Some("none")),
    attr("keepdim", AttrKind::Bool, Some("false")),
];

fn unary_op(c: &OpCall, op: UnaryOp, alpha: f32) -> Result<Var> {
    c.input("input")?.unary(op, alpha)
}

macro_rules! unary_spec {
    ($name:literal, $op:expr, $summary:literal) => {
        OpSpec {
            name: $name,
            summary: $summary,
            inputs: INPUT,
            attrs: &[],
            run: |c| unary_op(c, $op, 0.0),
        }
    };
}

static OPS: &[OpSpec] = &[
    OpSpec {
        name: "add",
        summary: "input + other, broadcasting",
        inputs: INPUT_OTHER,
        attrs: &[],
        run: |c| c.input("input")?.add(c.input("other")?),
    },
    OpSpec {
        name: "sub",
        summary: "input - other, broadcasting",
        inputs: INPUT_OTHER,
        attrs: &[],
        run: |c| c.input("input")?.sub(c.input("other")?),
    },
    OpSpec {
        name: "mul",
        summary: "input * other, broadcasting",
        inputs: INPUT_OTHER,
        attrs: &[],
        run: |c| c.input("input")?.mul(c.input("other")?),
    },
    OpSpec {
        name: "div",
        summary: "input / other, broadcasting",
        inputs: INPUT_OTHER,
        attrs: &[],
        run: |c| c.input("input")?.div(c.input("other")?),
    },
    OpSpec {
        name: "add_scalar",
        summary: "input + other (a number)",
        inputs: INPUT,
        attrs: SCALAR_OTHER,
        run: |c| c.input("input")?.add_scalar(c.attrs.float("other")? as f32),
    },
    OpSpec {
        name: "mul_scalar",
        summary: "input * other (a number)",
        inputs: INPUT,
        attrs: SCALAR_OTHER,
        run: |c| c.input("input")?.mul_scalar(c.attrs.float("other")? as f32),
    },
    unary_spec!("neg", UnaryOp::Neg, "-input"),
    unary_spec!("relu", UnaryOp::Relu, "max(input, 0)"),
    unary_spec!("relu6", UnaryOp::Relu6, "min(max(input, 0), 6)"),
    OpSpec {
        name: "leaky_relu",
        summary: "input if input > 0 else negative_slope * input",
        inputs: INPUT,
        attrs: &[attr("negative_slope", AttrKind::Float, Some("0.01"))],
        run: |c| {
            unary_op(
                c,
                UnaryOp::LeakyRelu,
                c.attrs.float("negative_slope")? as f32,
            )
        },
    },
    unary_spec!("sigmoid", UnaryOp::Sigmoid, "1 / (1 + exp(-input))"),
    unary_spec!("tanh", UnaryOp::Tanh, "tanh(input)"),
    unary_spec!("exp", UnaryOp::Exp, "exp(input)"),
    unary_spec!("log", UnaryOp::Log, "natural log of input"),
    unary_spec!("sqrt", UnaryOp::Sqrt, "square root of input"),
    OpSpec {
        name: "pow",
        summary: "input ** exponent (a number)",
        inputs: INPUT,
        attrs: &[attr("exponent", AttrKind::Float, None)],
        run: |c| unary_op(c, UnaryOp::Pow, c.attrs.float("exponent")? as f32),
    },
    OpSpec {
        name: "sum",
        summary: "sum over dim (all when none)",
        inputs: INPUT,
        attrs: REDUCE,
        run: |c| {
            let dims = c.attrs.opt_ints("dim")?;
            c.input("input")?
                .sum(dims.as_deref(), c.attrs.bool("keepdim")?)
        },
    },
    OpSpec {
        name: "mean",
        summary: "mean over dim (all when none)",
        inputs: INPUT,
        attrs: REDUCE,
        run: |c| {
            let dims = c.attrs.opt_ints("dim")?;
            c.input("input")?
                .mean(dims.as_deref(), c.attrs.bool("keepdim")?)
        },
    },
    OpSpec {
        name: "matmul",
        summary: "batched matrix product, [..., m, k] @ [..., k, n]",
        inputs: INPUT_OTHER,
        attrs: &[],
        run: |c| c.input("input")?.matmul(c.input("other")?),
    },
    OpSpec {
        name: "reshape",
        summary: "same values, new shape (one dim may be -1)",
        inputs: INPUT,
        attrs: &[attr("shape", AttrKind::Ints, None)],
        run: |c| c.input("input")?.reshape(&c.attrs.ints("shape")?),
    },
    OpSpec {
        name: "permute",
        summary: "reorder dims: output dim i is input dim dims[i]",
        inputs: INPUT,
        attrs: &[attr("dims", AttrKind::Ints, None)],
        run: |c| c.input("input")?.permute(&c.attrs.ints("dims")?),
    },
    OpSpec {
        name: "transpose",
        summary: "swap dims dim0 and dim1",
        inputs: INPUT,
        attrs: &[
            attr("dim0", AttrKind::Int, None),
            attr("dim1", AttrKind::Int, None),
        ],
        run: |c| {
            c.input("input")?
                .transpose(c.attrs.int("dim0")?, c.attrs.int("dim1")?)
        },
    },
    OpSpec {
        name: "cat",
        summary: "concatenate tensors.0, tensors.1, ... along dim",
        inputs: &[InputSpec {
            name: "tensors",
            dtype: DType::F32,
            differentiable: true,
            variadic: true,
        }],
        attrs: &[attr("dim", AttrKind::Int, Some("0"))],
        run: |c| Var::concat(c.inputs_of("tensors")?, c.attrs.int("dim")?),
    },
    OpSpec {
        name: "slice",
        summary: "input[..., start:end:step, ...] along dim (aten::slice)",
        inputs: INPUT,
        attrs: &[
            attr("dim", AttrKind::Int, Some("0")),
            attr("start", AttrKind::Int, Some("0")),
            attr("end", AttrKind::Int, Some("9223372036854775807")),
            attr("step", AttrKind::Int, Some("1")),
        ],
        run: |c| {
            let a = &c.attrs;
            c.input("input")?.slice(
                a.int("dim")?,
                a.int("start")?,
                a.int("end")?,
                a.int("step")?,
            )
        },
    },
    OpSpec {
        name: "softmax",
        summary: "softmax along dim",
        inputs: INPUT,
        attrs: DIM,
        run: |c| c.input("input")?.softmax(c.attrs.int("dim")?),
    },
    OpSpec {
        name: "log_softmax",
        summary: "log of softmax along dim, computed stably",
        inputs: INPUT,
        attrs: DIM,
        run: |c| c.input("input")?.log_softmax(c.attrs.int("dim")?),
    },
];

/// Every op, in listing order.
pub fn all() -> &'static [OpSpec] {
    OPS
}

/// Looks an op up by name; the error lists the known ones.
pub fn find(name: &str) -> Result<&'static OpSpec> {
    OPS.iter().find(|o| o.name == name).ok_or_else(|| {
        let names: Vec<&str> = OPS.iter().map(|o| o.name).collect();
        Error::op(name, format!("unknown op; known ops: {}", names.join(", ")))
    })
}

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
            if vars.len() == 1 && !name.contains('.') && find_variadic(self.op, name).is_none() {
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

fn find_variadic(op: &str, input: &str) -> Option<&'static InputSpec> {
    find(op)
        .ok()?
        .inputs
        .iter()
        .find(|i| i.name == input && i.variadic)
}
