//! softmax and log_softmax over one axis (shaders/softmax.wgsl).

use super::attrs::{AttrKind, AttrSpec};
use super::spec::{attr, OpSpec, INPUT};
use crate::autograd::Var;
use crate::error::Result;
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::shape;
use crate::tensor::{DType, Tensor};

/// The [outer, n, inner] view of `shape` around `dim`, as kernel parameters.
fn lanes(op: &str, shape: &[usize], dim: usize) -> Result<(Params, usize)> {
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let lanes = outer * inner;
    let p = Params::new(op)
        .idx("outer", outer)?
        .idx("n", shape[dim])?
        .idx("inner", inner)?
        .idx("lanes", lanes)?;
    Ok((p, lanes))
}

/// softmax (or log_softmax when `log`) of `x` along `dim`.
pub fn softmax(x: &Tensor, dim: i64, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    expect_f32(op, "input", x)?;
    let d = shape::axis(op, dim, x.rank())?;
    let (p, n) = lanes(op, x.shape(), d)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("softmax", op),
        &[x.buffer(), out.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// Gradient of softmax/log_softmax from its output `y` and output gradient `g`.
pub fn softmax_backward(y: &Tensor, g: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
    let op = if log {
        "log_softmax_backward"
    } else {
        "softmax_backward"
    };
    let (p, n) = lanes(op, y.shape(), dim)?;
    let out = Tensor::empty(y.gpu(), y.shape(), DType::F32)?;
    let gpu = y.gpu();
    gpu.dispatch(
        &Kernel::new("softmax", op),
        &[y.buffer(), g.buffer(), out.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

impl Var {
    fn softmax_op(&self, dim: i64, log: bool) -> Result<Var> {
        let x = self.value();
        let y = softmax(&x, dim, log)?;
        let d = shape::axis("softmax", dim, x.rank())?;
        let saved = y.clone();
        Ok(Var::from_op(y, &[self], move |g| {
            Ok(vec![Some(softmax_backward(&saved, g, d, log)?)])
        }))
    }

    /// torch.softmax(input, dim).
    pub fn softmax(&self, dim: i64) -> Result<Var> {
        self.softmax_op(dim, false)
    }

    /// torch.log_softmax(input, dim).
    pub fn log_softmax(&self, dim: i64) -> Result<Var> {
        self.softmax_op(dim, true)
    }
}

const DIM: &[AttrSpec] = &[attr("dim", AttrKind::Int, None)];

pub static OPS: &[OpSpec] = &[
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
