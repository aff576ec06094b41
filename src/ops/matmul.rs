//! Batched matrix multiply (shaders/matmul.wgsl) with torch.matmul's batch
//! broadcasting for the common cases: equal batch dims, or one 2-D operand.

use super::reduce::sum_to_shape;
use super::spec::{OpSpec, INPUT_OTHER};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::Kernel;
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

/// One operand as the kernel reads it: element strides of (batch, row, col).
#[derive(Clone, Copy)]
pub struct MatView {
    pub batch_stride: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl MatView {
    /// A contiguous [.., rows, cols] tensor; `batched` false broadcasts it (stride 0).
    pub fn contiguous(rows: usize, cols: usize, batched: bool) -> Self {
        MatView {
            batch_stride: if batched { rows * cols } else { 0 },
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of this view.
    pub fn t(self) -> Self {
        MatView {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// C[b] = A[b] @ B[b], C contiguous [batch, m, n].
#[allow(clippy::too_many_arguments)]
pub fn matmul_views(
    a: &Tensor,
    av: MatView,
    b: &Tensor,
    bv: MatView,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Tensor> {
    let out = Tensor::empty(a.gpu(), &[batch, m, n], DType::F32)?;
    let op = "matmul";
    let p = Params::new(op)
        .idx("m", m)?
        .idx("n", n)?
        .idx("k", k)?
        .idx("batch", batch)?
        .idx("a_batch_stride", av.batch_stride)?
        .idx("a_row_stride", av.row_stride)?
        .idx("a_col_stride", av.col_stride)?
        .idx("b_batch_stride", bv.batch_stride)?
        .idx("b_row_stride", bv.row_stride)?
        .idx("b_col_stride", bv.col_stride)?
        .align16();
    let groups = [n.div_ceil(64) as u32, m.div_ceil(64) as u32, batch as u32];
    let gpu = a.gpu();
    gpu.dispatch(
        &Kernel::new("matmul", "main"),
        &[a.buffer(), b.buffer(), out.buffer()],
        &p,
        groups,
    )?;
    Ok(out)
}

/// The batch shape and sizes of `input @ other`.
struct Plan {
    batch_shape: Vec<usize>,
    batch: usize,
    a_batched: bool,
    b_batched: bool,
    m: usize,
    k: usize,
    n: usize,
}

fn plan(a: &[usize], b: &[usize]) -> Result<Plan> {
    if a.len() < 2 || b.len() < 2 {
        return Err(Error::op(
            "matmul",
            format!(
                "input {} and other {} must both have at least 2 dims",
                shape_str(a),
                shape_str(b)
            ),
        ));
    }
    let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
    let (k2, n) = (b[b.len() - 2], b[b.len() - 1]);
    if k != k2 {
        return Err(Error::op(
            "matmul",
            format!(
                "input {} and other {}: inner dims {k} and {k2} differ",
                shape_str(a),
                shape_str(b)
            ),
        ));
    }
    let (ab, bb) = (&a[..a.len() - 2], &b[..b.len() - 2]);
    let (pa, pb): (usize, usize) = (ab.iter().product(), bb.iter().product());
    let batch_shape = if ab == bb || pb == 1 && bb.len() <= ab.len() {
        ab.to_vec()
    } else if pa == 1 && ab.len() <= bb.len() {
        bb.to_vec()
    } else {
        return Err(Error::op(
            "matmul",
            format!(
                "batch dims of input {} and other {} must match, or one operand must be 2-D",
                shape_str(a),
                shape_str(b)
            ),
        ));
    };
    let batch = batch_shape.iter().product();
    Ok(Plan {
        batch,
        a_batched: pa == batch && batch > 1,
        b_batched: pb == batch && batch > 1,
        batch_shape,
        m,
        k,
        n,
    })
}

/// torch.matmul for operands of rank >= 2.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    expect_f32("matmul", "input", a)?;
    expect_f32("matmul", "other", b)?;
    let p = plan(a.shape(), b.shape())?;
    let av = MatView::contiguous(p.m, p.k, p.a_batched);
    let bv = MatView::contiguous(p.k, p.n, p.b_batched);
    let out = matmul_views(a, av, b, bv, p.batch, p.m, p.k, p.n)?;
    let mut shape = p.batch_shape.clone();
    shape.extend([p.m, p.n]);
    out.reshape(&shape)
}

impl Var {
    /// torch.matmul(input, other) for operands of rank >= 2.
    pub fn matmul(&self, other: &Var) -> Result<Var> {
        let (a, b) = (self.value(), other.value());
        let out = matmul(&a, &b)?;
        Ok(Var::from_op(out, &[self, other], move |g| {
            let p = plan(a.shape(), b.shape())?;
            let gv = MatView::contiguous(p.m, p.n, true);
            let av = MatView::contiguous(p.m, p.k, p.a_batched);
            let bv = MatView::contiguous(p.k, p.n, p.b_batched);
            // dA = dC @ B^T and dB = A^T @ dC per batch; a broadcast operand's gradient
            // is then summed over the batch.
            let ga = matmul_views(g, gv, &b, bv.t(), p.batch, p.m, p.n, p.k)?;
            let gb = matmul_views(&a, av.t(), g, gv, p.batch, p.k, p.m, p.n)?;
            let ga = if p.a_batched || p.batch == 1 {
                ga.reshape(a.shape())?
            } else {
                sum_to_shape(&ga, &[1, p.m, p.k])?.reshape(a.shape())?
            };
            let gb = if p.b_batched || p.batch == 1 {
                gb.reshape(b.shape())?
            } else {
                sum_to_shape(&gb, &[1, p.k, p.n])?.reshape(b.shape())?
            };
            Ok(vec![Some(ga), Some(gb)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "matmul",
    summary: "batched matrix product, [..., m, k] @ [..., k, n]",
    inputs: INPUT_OTHER,
    attrs: &[],
    run: |c| c.input("input")?.matmul(c.input("other")?),
}];
