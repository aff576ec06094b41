//! l2_normalize (torch.nn.functional.normalize with p=2), shaders/l2_normalize.wgsl:
//!   y = x / max(||x||_2, eps)   along `dim`.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, OpSpec, INPUT};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::shape;
use crate::tensor::{DType, Tensor};

const OP: &str = "l2_normalize";

/// The [outer, n, inner] lane view of `shape` around `dim`, as kernel parameters.
fn lanes(shape: &[usize], dim: usize, eps: f32) -> Result<(Params, usize)> {
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let lanes = outer * inner;
    let p = Params::new(OP)
        .idx("outer", outer)?
        .idx("n", shape[dim])?
        .idx("inner", inner)?
        .idx("lanes", lanes)?
        .f32("eps", eps);
    Ok((p, lanes))
}

fn resolve(x: &Tensor, dim: i64, eps: f32) -> Result<usize> {
    expect_f32(OP, "input", x)?;
    if x.rank() == 0 {
        return Err(Error::op(OP, "input must have at least one dim"));
    }
    if eps.is_nan() || eps <= 0.0 {
        return Err(Error::op(OP, format!("eps must be > 0, got {eps}")));
    }
    shape::axis(OP, dim, x.rank())
}

/// `x / max(||x||_2, eps)` along `dim` (negative counts from the end).
pub fn l2_normalize(x: &Tensor, dim: i64, eps: f32) -> Result<Tensor> {
    let d = resolve(x, dim, eps)?;
    let (p, n) = lanes(x.shape(), d, eps)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("l2_normalize", "forward"),
        &[x.buffer(), out.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// Gradient of [`l2_normalize`] from its input `x` and output gradient `g`:
/// `(g - y (y . g)) / ||x||` where `||x|| > eps`, else `g / eps`.
pub fn l2_normalize_backward(x: &Tensor, g: &Tensor, dim: i64, eps: f32) -> Result<Tensor> {
    let d = resolve(x, dim, eps)?;
    if g.shape() != x.shape() {
        return Err(Error::op(
            OP,
            format!(
                "grad_output shape {:?} does not match input {:?}",
                g.shape(),
                x.shape()
            ),
        ));
    }
    let (p, n) = lanes(x.shape(), d, eps)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("l2_normalize", "backward"),
        &[x.buffer(), g.buffer(), out.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

impl Var {
    /// torch.nn.functional.normalize(input, p=2, dim, eps).
    pub fn l2_normalize(&self, dim: i64, eps: f32) -> Result<Var> {
        let x = self.value();
        let y = l2_normalize(&x, dim, eps)?;
        Ok(Var::from_op(y, &[self], move |g| {
            Ok(vec![Some(l2_normalize_backward(&x, g, dim, eps)?)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "l2_normalize",
    summary: "input / max(||input||_2, eps) along dim (F.normalize, p=2)",
    inputs: INPUT,
    attrs: &[
        attr("dim", AttrKind::Int, Some("1")),
        attr("eps", AttrKind::Float, Some("1e-12")),
    ],
    run: |c| {
        c.input("input")?
            .l2_normalize(c.attrs.int("dim")?, c.attrs.float("eps")? as f32)
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn rows_get_unit_norm_and_tiny_rows_are_divided_by_eps() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[3.0, 4.0, 1e-4, 0.0], &[2, 2]).unwrap();
        let y = l2_normalize(&x, 1, 1e-3).unwrap().to_vec().unwrap();
        let want = [0.6, 0.8, 0.1, 0.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
        let e = l2_normalize(&x, 2, 1e-12).unwrap_err().to_string();
        assert!(e.contains("l2_normalize") && e.contains("dim 2"), "{e}");
    }
}
