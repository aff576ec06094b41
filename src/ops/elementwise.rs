//! Elementwise ops: broadcasting binary arithmetic, unary activations and scalar ops,
//! and fills. Kernels: shaders/binary.wgsl, shaders/unary.wgsl, shaders/fill.wgsl.

use super::attrs::{AttrKind, AttrSpec};
use super::params::Params;
use super::reduce::sum_to_shape;
use super::registry::{attr, OpCall, OpSpec, INPUT, INPUT_OTHER};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, WORKGROUP};
use crate::shape::{self, broadcast, broadcast_strides};
use crate::tensor::{DType, Tensor};

pub(crate) fn expect_f32(op: &str, name: &str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::op(
            op,
            format!("{name} must be f32, got {}", t.dtype()),
        ));
    }
    Ok(())
}

/// A tensor of `shape` filled with `value`.
pub fn full(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Tensor> {
    let out = Tensor::empty(gpu, shape, DType::F32)?;
    fill(&out, value)?;
    Ok(out)
}

pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
    full(gpu, shape, 0.0)
}

/// Overwrites every element of `t` with `value`.
pub fn fill(t: &Tensor, value: f32) -> Result<()> {
    let gpu = t.gpu();
    let n = t.numel();
    let p = Params::new().idx("fill", n)?.f32(value);
    gpu.dispatch(
        &Kernel::new("fill", "fill"),
        &[t.buffer()],
        p.bytes(),
        gpu.grid(n as u64, WORKGROUP),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }
}

/// `a OP b` with NumPy broadcasting.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let name = op.name();
    expect_f32(name, "input", a)?;
    expect_f32(name, "other", b)?;
    let out_shape = broadcast(name, a.shape(), b.shape())?;
    let out = Tensor::empty(a.gpu(), &out_shape, DType::F32)?;
    let n = out.numel();
    let p = Params::new().idx(name, n)?;
    let p = if a.shape() == b.shape() {
        p.u32(0)
            .align16()
            .dims(name, &[])?
            .dims(name, &[])?
            .dims(name, &[])?
    } else {
        let (folded, st) = shape::fold(
            &out_shape,
            &[
                broadcast_strides(a.shape(), &out_shape),
                broadcast_strides(b.shape(), &out_shape),
            ],
        );
        shape::check_rank(name, &folded)?;
        p.u32(folded.len() as u32)
            .align16()
            .dims(name, &folded)?
            .dims(name, &st[0])?
            .dims(name, &st[1])?
    };
    let gpu = a.gpu();
    let k = Kernel::new("binary", "main");
    let consts = [("OP", op as u32 as f64)];
    gpu.dispatch(
        &k.with(&consts),
        &[a.buffer(), b.buffer(), out.buffer()],
        p.bytes(),
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Add, a, b)
}

pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Sub, a, b)
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Mul, a, b)
}

pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Div, a, b)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Relu = 0,
    LeakyRelu = 1,
    Sigmoid = 2,
    Tanh = 3,
    Exp = 4,
    Log = 5,
    Sqrt = 6,
    Pow = 7,
    AddScalar = 8,
    MulScalar = 9,
    Neg = 10,
    Relu6 = 11,
    Gelu = 12,
    /// gelu with approximate="tanh".
    GeluTanh = 13,
}

impl UnaryOp {
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu => "leaky_relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Pow => "pow",
            UnaryOp::AddScalar => "add_scalar",
            UnaryOp::MulScalar => "mul_scalar",
            UnaryOp::Neg => "neg",
            UnaryOp::Relu6 => "relu6",
            UnaryOp::Gelu | UnaryOp::GeluTanh => "gelu",
        }
    }
}

/// `f(x)` elementwise; `alpha` is the op's scalar (slope, exponent or operand).
pub fn unary(op: UnaryOp, x: &Tensor, alpha: f32) -> Result<Tensor> {
    expect_f32(op.name(), "input", x)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let n = x.numel();
    let p = Params::new().idx(op.name(), n)?.f32(alpha);
    let gpu = x.gpu();
    let consts = [("OP", op as u32 as f64)];
    gpu.dispatch(
        &Kernel::new("unary", "forward").with(&consts),
        &[x.buffer(), out.buffer()],
        p.bytes(),
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// Gradient of `unary(op, x, alpha)` given its output `y` and output gradient `g`.
pub fn unary_backward(
    op: UnaryOp,
    x: &Tensor,
    y: &Tensor,
    g: &Tensor,
    alpha: f32,
) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let n = x.numel();
    let p = Params::new().idx(op.name(), n)?.f32(alpha);
    let gpu = x.gpu();
    let consts = [("OP", op as u32 as f64)];
    gpu.dispatch(
        &Kernel::new("unary", "backward").with(&consts),
        &[x.buffer(), y.buffer(), g.buffer(), out.buffer()],
        p.bytes(),
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

pub fn neg(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Neg, x, 0.0)
}

pub fn scale(x: &Tensor, s: f32) -> Result<Tensor> {
    unary(UnaryOp::MulScalar, x, s)
}

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

    /// Any unary op of shaders/unary.wgsl.
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
