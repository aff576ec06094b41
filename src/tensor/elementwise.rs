//! Elementwise kernels on tensors, without autograd: fills, broadcasting binary
//! arithmetic and unary activations (shaders/elementwise_binary.wgsl, elementwise_unary.wgsl and
//! elementwise_fill.wgsl).
//! They sit below the tape because it seeds and accumulates gradients with them;
//! src/ops/elementwise.rs records them on the tape.

use super::shape::{self, broadcast, broadcast_strides};
use super::{DType, Tensor};
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Gpu, Kernel, WORKGROUP};

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
    let p = Params::new("fill").idx("n", n)?.f32("value", value);
    gpu.dispatch(
        &Kernel::new("elementwise_fill", "fill"),
        &[t.buffer()],
        &p,
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
    let p = Params::new(name).idx("n", n)?;
    let p = if a.shape() == b.shape() {
        p.u32("rank", 0)
            .align16()
            .dims("shape", &[])?
            .dims("a_strides", &[])?
            .dims("b_strides", &[])?
    } else {
        let (folded, st) = shape::fold(
            &out_shape,
            &[
                broadcast_strides(a.shape(), &out_shape),
                broadcast_strides(b.shape(), &out_shape),
            ],
        );
        shape::check_rank(name, &folded)?;
        p.u32("rank", folded.len() as u32)
            .align16()
            .dims("shape", &folded)?
            .dims("a_strides", &st[0])?
            .dims("b_strides", &st[1])?
    };
    let gpu = a.gpu();
    let k = Kernel::new("elementwise_binary", "main");
    let consts = [("OP", op as u32 as f64)];
    gpu.dispatch(
        &k.with(&consts),
        &[a.buffer(), b.buffer(), out.buffer()],
        &p,
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
    let p = Params::new(op.name()).idx("n", n)?.f32("alpha", alpha);
    let gpu = x.gpu();
    let consts = [("OP", op as u32 as f64)];
    gpu.dispatch(
        &Kernel::new("elementwise_unary", "forward").with(&consts),
        &[x.buffer(), out.buffer()],
        &p,
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
    let p = Params::new(op.name()).idx("n", n)?.f32("alpha", alpha);
    let gpu = x.gpu();
    let consts = [("OP", op as u32 as f64)];
    gpu.dispatch(
        &Kernel::new("elementwise_unary", "backward").with(&consts),
        &[x.buffer(), y.buffer(), g.buffer(), out.buffer()],
        &p,
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
