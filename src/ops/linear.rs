//! F.linear: input @ weight^T + bias, reading the weight transposed in place
//! (shaders/matmul.wgsl with swapped strides) rather than copying it.

use super::attrs::AttrSpec;
use super::matmul::{matmul_views, MatView};
use super::reduce::reduce_sum;
use super::spec::{f32_in, InputSpec, OpSpec};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::elementwise::{add, expect_f32};
use crate::tensor::{shape_str, Tensor};

/// Rows (all leading dims), in-features and out-features of `input @ weight^T`.
fn dims(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<(usize, usize, usize)> {
    expect_f32("linear", "input", input)?;
    expect_f32("linear", "weight", weight)?;
    let k = *input.shape().last().unwrap_or(&0);
    if weight.rank() != 2 || weight.shape()[1] != k {
        return Err(Error::op(
            "linear",
            format!(
                "weight {} must be [out_features, {k}] for input {}",
                shape_str(weight.shape()),
                shape_str(input.shape())
            ),
        ));
    }
    let n = weight.shape()[0];
    if let Some(b) = bias {
        if b.shape() != [n] {
            return Err(Error::op(
                "linear",
                format!("bias {} must be [{n}]", shape_str(b.shape())),
            ));
        }
    }
    Ok((input.numel() / k, k, n))
}

/// input [.., in] @ weight [out, in]^T (+ bias [out]) -> [.., out].
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (m, k, n) = dims(input, weight, bias)?;
    let wt = MatView::contiguous(n, k, false).t();
    let out = matmul_views(
        input,
        MatView::contiguous(m, k, false),
        weight,
        wt,
        1,
        m,
        k,
        n,
    )?;
    let out = match bias {
        Some(b) => add(&out, b)?,
        None => out,
    };
    let mut shape = input.shape().to_vec();
    *shape.last_mut().expect("rank checked") = n;
    out.reshape(&shape)
}

impl Var {
    /// F.linear(input, weight, bias).
    pub fn linear(&self, weight: &Var, bias: Option<&Var>) -> Result<Var> {
        let (x, w) = (self.value(), weight.value());
        let b = bias.map(|b| b.value());
        let out = linear(&x, &w, b.as_ref())?;
        let (m, k, n) = dims(&x, &w, b.as_ref())?;
        let mut parents = vec![self, weight];
        parents.extend(bias);
        let has_bias = bias.is_some();
        Ok(Var::from_op(out, &parents, move |g| {
            let gv = MatView::contiguous(m, n, false);
            let gx = matmul_views(g, gv, &w, MatView::contiguous(n, k, false), 1, m, n, k)?
                .reshape(x.shape())?;
            let gw = matmul_views(g, gv.t(), &x, MatView::contiguous(m, k, false), 1, n, m, k)?
                .reshape(&[n, k])?;
            let mut grads = vec![Some(gx), Some(gw)];
            if has_bias {
                grads.push(Some(reduce_sum(
                    "linear",
                    &g.reshape(&[m, n])?,
                    &[0],
                    false,
                    1.0,
                )?));
            }
            Ok(grads)
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "linear",
    summary: "input @ weight^T + bias (weight is [out_features, in_features])",
    inputs: &[
        f32_in("input"),
        f32_in("weight"),
        InputSpec {
            optional: true,
            ..f32_in("bias")
        },
    ],
    attrs: &[] as &[AttrSpec],
    run: |c| {
        c.input("input")?
            .linear(c.input("weight")?, c.opt_input("bias"))
    },
}];
