//! PatchNCE as in CUT (shaders/patch_nce.wgsl): rows of `query` [N, D] and `key`
//! [N, D] are features of the same N patch locations in two images, taken as already
//! L2-normalised. Row i's logits are [q_i . k_i, q_i . k_j (j != i)] / temperature and
//! its loss the cross-entropy to the positive (index 0):
//!
//! ```text
//! loss = mean_i ( logsumexp_j (q_i . k_j / T) - q_i . k_i / T )
//! ```
//!
//! CUT detaches the key branch; the op stays general and returns both gradients.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, f32_in, OpSpec};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const SHADER: &str = "patch_nce";

/// What the backward of [`patch_nce`] needs: the inputs, per-row log-sum-exp and
/// per-row loss.
#[derive(Debug)]
pub struct PatchNceSaved {
    query: Tensor,
    key: Tensor,
    lse: Tensor,
    loss_row: Tensor,
    temperature: f32,
}

fn params(op: &str, n: usize, dim: usize, temperature: f32) -> Result<Params> {
    Ok(Params::new(op)
        .idx("n", n)?
        .idx("dim", dim)?
        .f32("inv_t", 1.0 / temperature)
        .f32("inv_n", 1.0 / n as f32))
}

fn rows(op: &str, query: &Tensor, key: &Tensor) -> Result<(usize, usize)> {
    expect_f32(op, "query", query)?;
    let (n, dim) = match *query.shape() {
        [n, d] => (n, d),
        _ => {
            return Err(Error::op(
                op,
                format!("query must be [N, D], got {}", shape_str(query.shape())),
            ))
        }
    };
    if key.shape() != query.shape() {
        return Err(Error::op(
            op,
            format!(
                "key {} must have the query's shape {}",
                shape_str(key.shape()),
                shape_str(query.shape())
            ),
        ));
    }
    expect_f32(op, "key", key)?;
    Ok((n, dim))
}

/// The loss (a scalar tensor) and what its backward needs.
pub fn patch_nce(
    query: &Tensor,
    key: &Tensor,
    temperature: f32,
) -> Result<(Tensor, PatchNceSaved)> {
    let op = "patch_nce";
    let (n, dim) = rows(op, query, key)?;
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::op(
            op,
            format!("temperature must be positive, got {temperature}"),
        ));
    }
    let gpu = query.gpu();
    let p = params(op, n, dim, temperature)?;
    let lse = Tensor::empty(gpu, &[n], DType::F32)?;
    let loss_row = Tensor::empty(gpu, &[n], DType::F32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "row_forward"),
        &[
            query.buffer(),
            key.buffer(),
            lse.buffer(),
            loss_row.buffer(),
        ],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    let loss = Tensor::empty(gpu, &[], DType::F32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "reduce_mean"),
        &[loss_row.buffer(), loss.buffer()],
        &p,
        [1, 1, 1],
    )?;
    let saved = PatchNceSaved {
        query: query.clone(),
        key: key.clone(),
        lse,
        loss_row,
        temperature,
    };
    Ok((loss, saved))
}

/// Gradients for the scalar output gradient `grad`: to the query when `want_query`,
/// to the key when `want_key`.
pub fn patch_nce_backward(
    saved: &PatchNceSaved,
    grad: &Tensor,
    want_query: bool,
    want_key: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let op = "patch_nce_backward";
    if grad.numel() != 1 || grad.dtype() != DType::F32 {
        return Err(Error::op(
            op,
            format!(
                "grad must be one f32 value, got {} {}",
                grad.dtype(),
                shape_str(grad.shape())
            ),
        ));
    }
    let s = saved;
    let (n, dim) = rows(op, &s.query, &s.key)?;
    let gpu = s.query.gpu();
    let p = params(op, n, dim, s.temperature)?;
    let run = |entry: &'static str| -> Result<Tensor> {
        let out = Tensor::empty(gpu, &[n, dim], DType::F32)?;
        gpu.dispatch(
            &Kernel::new(SHADER, entry),
            &[
                s.query.buffer(),
                s.key.buffer(),
                s.loss_row.buffer(),
                s.lse.buffer(),
                grad.buffer(),
                out.buffer(),
            ],
            &p,
            gpu.grid(n as u64, WORKGROUP),
        )?;
        Ok(out)
    };
    let gq = if want_query {
        Some(run("grad_query")?)
    } else {
        None
    };
    let gk = if want_key {
        Some(run("grad_key")?)
    } else {
        None
    };
    Ok((gq, gk))
}

impl Var {
    /// PatchNCE of these query rows [N, D] against `key` [N, D]; see the module docs.
    pub fn patch_nce(&self, key: &Var, temperature: f32) -> Result<Var> {
        let (loss, saved) = patch_nce(&self.value(), &key.value(), temperature)?;
        let (want_q, want_k) = (self.requires_grad(), key.requires_grad());
        Ok(Var::from_op(loss, &[self, key], move |g| {
            let (gq, gk) = patch_nce_backward(&saved, g, want_q, want_k)?;
            Ok(vec![gq, gk])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "patch_nce",
    summary: "CUT's PatchNCE: mean cross-entropy of [q_i.k_i, q_i.k_j (j != i)] / temperature to the positive",
    inputs: &[f32_in("query"), f32_in("key")],
    attrs: &[attr("temperature", AttrKind::Float, Some("0.07"))],
    run: |c| {
        c.input("query")?
            .patch_nce(c.input("key")?, c.attrs.float("temperature")? as f32)
    },
}];
