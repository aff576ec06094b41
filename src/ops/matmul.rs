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
    let folds = Folds {
        batch,
        n_segment: n,
        k_segments: 1,
    };
    matmul_folded(a, av, b, bv, folds, m, k, n)
}

/// How [`matmul_folded`] lays a batch of products over one launch (shaders/matmul.wgsl).
#[derive(Clone, Copy, Debug)]
pub struct Folds {
    /// Products computed (C's leading dim, with the segments below).
    pub batch: usize,
    /// The n columns are segments of this many, segment s taken from batch entry s
    /// of B and stored as C [s, m, n_segment]; n itself for no fold.
    pub n_segment: usize,
    /// Each product is the sum over this many consecutive batch entries of A and B;
    /// 1 for no fold.
    pub k_segments: usize,
}

/// matmul_views with the column or batch folds of `folds` (one of them at a time).
#[allow(clippy::too_many_arguments)]
pub fn matmul_folded(
    a: &Tensor,
    av: MatView,
    b: &Tensor,
    bv: MatView,
    folds: Folds,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Tensor> {
    let whole = folds.n_segment > 0 && n.is_multiple_of(folds.n_segment);
    let segments = if whole { n / folds.n_segment } else { 0 };
    if segments == 0
        || folds.k_segments == 0
        || (segments > 1 && (folds.batch > 1 || folds.k_segments > 1))
    {
        return Err(Error::op(
            "matmul",
            format!("folds {folds:?} do not fit n = {n}: column segments must divide n, and fold one way at a time"),
        ));
    }
    let out = Tensor::empty(
        a.gpu(),
        &[folds.batch * segments, m, folds.n_segment],
        DType::F32,
    )?;
    let op = "matmul";
    let p = Params::new(op)
        .idx("m", m)?
        .idx("n", n)?
        .idx("k", k)?
        .idx("batch", folds.batch)?
        .idx("a_batch_stride", av.batch_stride)?
        .idx("a_row_stride", av.row_stride)?
        .idx("a_col_stride", av.col_stride)?
        .idx("b_batch_stride", bv.batch_stride)?
        .idx("b_row_stride", bv.row_stride)?
        .idx("b_col_stride", bv.col_stride)?
        .idx("n_segment", folds.n_segment)?
        .idx("k_segments", folds.k_segments)?;
    let groups = [
        n.div_ceil(64) as u32,
        m.div_ceil(64) as u32,
        folds.batch as u32,
    ];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn relative_error(got: &[f32], want: &[f64]) -> f64 {
        let diff: f64 = got
            .iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w).powi(2))
            .sum();
        let norm: f64 = want.iter().map(|w| w * w).sum();
        (diff / norm).sqrt()
    }

    /// Images side by side as columns: C [s, m, seg] = A [m, k] @ B[s] [k, seg], with
    /// tiles that straddle segment and matrix edges.
    #[test]
    fn column_segments_are_separate_products() {
        let gpu = Gpu::shared().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (m, k, seg, segs) = (70, 9, 13, 5);
        let a = random(m * k, &mut rng);
        let b = random(segs * k * seg, &mut rng);
        let ta = Tensor::from_slice(&gpu, &a, &[m, k]).unwrap();
        let tb = Tensor::from_slice(&gpu, &b, &[segs, k, seg]).unwrap();
        let folds = Folds {
            batch: 1,
            n_segment: seg,
            k_segments: 1,
        };
        let av = MatView::contiguous(m, k, false);
        let bv = MatView::contiguous(k, seg, true);
        let c = matmul_folded(&ta, av, &tb, bv, folds, m, k, segs * seg).unwrap();
        assert_eq!(c.shape(), [segs, m, seg]);
        let mut want = vec![0.0f64; segs * m * seg];
        for s in 0..segs {
            for i in 0..m {
                for j in 0..seg {
                    want[(s * m + i) * seg + j] = (0..k)
                        .map(|t| a[i * k + t] as f64 * b[(s * k + t) * seg + j] as f64)
                        .sum();
                }
            }
        }
        let e = relative_error(&c.to_vec().unwrap(), &want);
        assert!(e < 1e-6, "relative error {e}");
    }

    /// Sums inside K: C[g] = sum over t < 3 of A[3g + t] @ B[3g + t]^T, two groups.
    #[test]
    fn batch_segments_are_summed() {
        let gpu = Gpu::shared().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let (groups, per, m, k, n) = (2, 3, 9, 17, 66);
        let a = random(groups * per * m * k, &mut rng);
        let b = random(groups * per * n * k, &mut rng);
        let ta = Tensor::from_slice(&gpu, &a, &[groups * per, m, k]).unwrap();
        let tb = Tensor::from_slice(&gpu, &b, &[groups * per, n, k]).unwrap();
        let folds = Folds {
            batch: groups,
            n_segment: n,
            k_segments: per,
        };
        let av = MatView::contiguous(m, k, true);
        let bv = MatView::contiguous(n, k, true).t();
        let c = matmul_folded(&ta, av, &tb, bv, folds, m, k, n).unwrap();
        assert_eq!(c.shape(), [groups, m, n]);
        let mut want = vec![0.0f64; groups * m * n];
        for g in 0..groups {
            for t in 0..per {
                let e = g * per + t;
                for i in 0..m {
                    for j in 0..n {
                        want[(g * m + i) * n + j] += (0..k)
                            .map(|q| a[(e * m + i) * k + q] as f64 * b[(e * n + j) * k + q] as f64)
                            .sum::<f64>();
                    }
                }
            }
        }
        let e = relative_error(&c.to_vec().unwrap(), &want);
        assert!(e < 1e-6, "relative error {e}");
    }

    #[test]
    fn folds_that_do_not_fit_are_refused() {
        let gpu = Gpu::shared().unwrap();
        let a = Tensor::from_slice(&gpu, &[1.0; 12], &[2, 2, 3]).unwrap();
        let b = Tensor::from_slice(&gpu, &[1.0; 30], &[2, 3, 5]).unwrap();
        let (av, bv) = (
            MatView::contiguous(2, 3, true),
            MatView::contiguous(3, 5, true),
        );
        for folds in [
            Folds {
                batch: 1,
                n_segment: 3,
                k_segments: 1,
            },
            Folds {
                batch: 2,
                n_segment: 5,
                k_segments: 1,
            },
        ] {
            let e = matmul_folded(&a, av, &b, bv, folds, 2, 3, 10).unwrap_err();
            assert!(e.to_string().contains("do not fit n = 10"), "{e}");
        }
    }
}
