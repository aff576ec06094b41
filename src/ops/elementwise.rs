//! Elementwise ops on the tape: broadcasting binary arithmetic, unary activations and
//! scalar ops, with their backward rules and op-table entries. The kernels they record
//! are in src/tensor/elementwise.rs.

use super::attrs::{AttrKind, AttrSpec};
use super::reduce::sum_to_shape;
use super::spec::{attr, OpCall, OpSpec, INPUT, INPUT_OTHER};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::elementwise::{binary, div, mul, neg, unary, unary_backward, BinaryOp, UnaryOp};

impl Var {
    fn binary_op(&self, other: &Var, op: BinaryOp) -> Result<Var> {
        let (a, b) = (self.value(), other.value());
        let out = binary(op, &a, &b)?;
        let saved_out = out.clone();
        Ok(Var::from_op(out, &[self, other], move |g| {
            let (ga, gb) = match op {
                BinaryOp::Add => (g.clone(), g.clone()),
                BinaryOp::Sub => (g.clone(), neg(g)?),
                BinaryOp::Mul => (mul(g, &b)?, mul(g, &a)?),
                BinaryOp::Div => (div(g, &b)?, neg(&div(&mul(g, &saved_out)?, &b)?)?),
            };
            Ok(vec![
                Some(sum_to_shape(&ga, a.shape())?),
                Some(sum_to_shape(&gb, b.shape())?),
            ])
        }))
    }

    pub fn add(&self, other: &Var) -> Result<Var> {
        self.binary_op(other, BinaryOp::Add)
    }

    pub fn sub(&self, other: &Var) -> Result<Var> {
        self.binary_op(other, BinaryOp::Sub)
    }

    pub fn mul(&self, other: &Var) -> Result<Var> {
        self.binary_op(other, BinaryOp::Mul)
    }

    pub fn div(&self, other: &Var) -> Result<Var> {
        self.binary_op(other, BinaryOp::Div)
    }

    /// Any unary op of shaders/elementwise_unary.wgsl.
    pub fn unary(&self, op: UnaryOp, alpha: f32) -> Result<Var> {
        let x = self.value();
        let y = unary(op, &x, alpha)?;
        let saved_y = y.clone();
        Ok(Var::from_op(y, &[self], move |g| {
            Ok(vec![Some(unary_backward(op, &x, &saved_y, g, alpha)?)])
        }))
    }

    pub fn relu(&self) -> Result<Var> {
        self.unary(UnaryOp::Relu, 0.0)
    }

    pub fn relu6(&self) -> Result<Var> {
        self.unary(UnaryOp::Relu6, 0.0)
    }

    pub fn leaky_relu(&self, negative_slope: f32) -> Result<Var> {
        self.unary(UnaryOp::LeakyRelu, negative_slope)
    }

    pub fn sigmoid(&self) -> Result<Var> {
        self.unary(UnaryOp::Sigmoid, 0.0)
    }

    pub fn tanh(&self) -> Result<Var> {
        self.unary(UnaryOp::Tanh, 0.0)
    }

    pub fn exp(&self) -> Result<Var> {
        self.unary(UnaryOp::Exp, 0.0)
    }

    pub fn log(&self) -> Result<Var> {
        self.unary(UnaryOp::Log, 0.0)
    }

    pub fn sqrt(&self) -> Result<Var> {
        self.unary(UnaryOp::Sqrt, 0.0)
    }

    pub fn pow(&self, exponent: f32) -> Result<Var> {
        self.unary(UnaryOp::Pow, exponent)
    }

    pub fn add_scalar(&self, s: f32) -> Result<Var> {
        self.unary(UnaryOp::AddScalar, s)
    }

    pub fn mul_scalar(&self, s: f32) -> Result<Var> {
        self.unary(UnaryOp::MulScalar, s)
    }

    pub fn neg(&self) -> Result<Var> {
        self.unary(UnaryOp::Neg, 0.0)
    }

    /// F.gelu: `approximate` is "none" (the exact erf form) or "tanh".
    pub fn gelu(&self, approximate: &str) -> Result<Var> {
        let op = match approximate {
            "none" => UnaryOp::Gelu,
            "tanh" => UnaryOp::GeluTanh,
            other => {
                return Err(Error::op(
                    "gelu",
                    format!("approximate must be \"none\" or \"tanh\", got {other:?}"),
                ))
            }
        };
        self.unary(op, 0.0)
    }
}

const SCALAR_OTHER: &[AttrSpec] = &[attr("other", AttrKind::Float, None)];

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

pub static OPS: &[OpSpec] = &[
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
    OpSpec {
        name: "gelu",
        summary: "input * Phi(input) (erf form), or its tanh approximation",
        inputs: INPUT,
        attrs: &[attr("approximate", AttrKind::Str, Some("none"))],
        run: |c| c.input("input")?.gelu(c.attrs.str("approximate")?),
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
];
