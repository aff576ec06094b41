//! MaskContrast's class-balanced binary cross-entropy for the saliency head
//! (their BalancedCrossEntropyLoss; shaders/balanced_bce.wgsl).
//!
//! With t binarised at 0.5, w = #negatives / #elements over the whole batch (a
//! constant for the gradient), g = [x >= 0] and
//!   loss_val = x * (t - g) - log(1 + exp(x - 2 * x * g)),
//!   loss = w * sum(-t * loss_val) + (1 - w) * sum(-(1 - t) * loss_val),
//! divided by numel when `size_average` (their batch_average alternative, dividing
//! by the batch size, is not offered). d loss / dx = -c * (t - sigmoid(x)) with
//! c = w for positives and 1 - w for negatives.

use super::{partial_count, sum_all};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::fixed_in;
use crate::ops::spec::{attr, f32_in, OpSpec};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "balanced_bce";

/// The forward's result and what its backward needs.
pub struct BalancedBce {
    /// The scalar loss.
    pub loss: Tensor,
    /// The number of positive targets (a scalar).
    positives: Tensor,
    scale: f32,
}

fn check(input: &Tensor, target: &Tensor) -> Result<()> {
    expect_f32(OP, "input", input)?;
    expect_f32(OP, "target", target)?;
    if !matches!(input.rank(), 3 | 4) || (input.rank() == 4 && input.shape()[1] != 1) {
        return Err(Error::op(
            OP,
            format!(
                "input must be [B, 1, H, W] or [B, H, W] logits, got shape {}",
                shape_str(input.shape())
            ),
        ));
    }
    if target.shape() != input.shape() {
        return Err(Error::op(
            OP,
            format!(
                "target shape {} must equal input shape {}",
                shape_str(target.shape()),
                shape_str(input.shape())
            ),
        ));
    }
    Ok(())
}

fn params(n: usize, threads: usize, scale: f32) -> Result<Params> {
    Ok(Params::new(OP)
        .idx("n", n)?
        .idx("threads", threads)?
        .f32("scale", scale))
}

/// The balanced BCE of logits `input` against 0/1 `target` (same shape).
pub fn balanced_bce(input: &Tensor, target: &Tensor, size_average: bool) -> Result<BalancedBce> {
    check(input, target)?;
    let gpu = input.gpu();
    let n = input.numel();
    let threads = partial_count(n);
    let p = params(n, threads, 0.0)?;
    let grid = gpu.grid(threads as u64, WORKGROUP);
    let partial = Tensor::empty(gpu, &[threads], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("balanced_bce", "count_positive"),
        &[target.buffer(), partial.buffer()],
        &p,
        grid,
    )?;
    let positives = sum_all(OP, &partial, 1.0)?;
    let partial = Tensor::empty(gpu, &[threads], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("balanced_bce", "forward_sums"),
        &[
            input.buffer(),
            target.buffer(),
            positives.buffer(),
            partial.buffer(),
        ],
        &p,
        grid,
    )?;
    let scale = if size_average { 1.0 / n as f32 } else { 1.0 };
    Ok(BalancedBce {
        loss: sum_all(OP, &partial, scale)?,
        positives,
        scale,
    })
}

/// Gradient with respect to the logits, given the loss's output gradient `g`.
pub fn balanced_bce_backward(
    input: &Tensor,
    target: &Tensor,
    fwd: &BalancedBce,
    g: &Tensor,
) -> Result<Tensor> {
    let gpu = input.gpu();
    let n = input.numel();
    let dx = Tensor::empty(gpu, input.shape(), DType::F32)?;
    gpu.dispatch(
        &Kernel::new("balanced_bce", "backward"),
        &[
            input.buffer(),
            target.buffer(),
            fwd.positives.buffer(),
            g.buffer(),
            dx.buffer(),
        ],
        &params(n, 0, fwd.scale)?,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(dx)
}

impl Var {
    /// MaskContrast's balanced BCE of saliency logits against a 0/1 mask, see
    /// [`balanced_bce`]; no gradient reaches the target.
    pub fn balanced_bce(&self, target: &Var, size_average: bool) -> Result<Var> {
        let (x, t) = (self.value(), target.value());
        let fwd = balanced_bce(&x, &t, size_average)?;
        let loss = fwd.loss.clone();
        Ok(Var::from_op(loss, &[self], move |g| {
            Ok(vec![Some(balanced_bce_backward(&x, &t, &fwd, g)?)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "balanced_bce",
    summary: "MaskContrast's class-balanced BCE on logits (w = negatives / all over the batch)",
    inputs: &[f32_in("input"), fixed_in("target", DType::F32, false)],
    attrs: &[attr("size_average", AttrKind::Bool, Some("true"))],
    run: |c| {
        c.input("input")?
            .balanced_bce(c.input("target")?, c.attrs.bool("size_average")?)
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    /// Logits 0 make loss_val = -ln 2 everywhere, so the loss is
    /// ln 2 * (w * #pos + (1 - w) * #neg) / n with w = #neg / n.
    #[test]
    fn balances_by_the_negative_share() {
        let gpu = Gpu::shared().unwrap();
        let n = crate::loss::PARTIALS + 999;
        let t: Vec<f32> = (0..n).map(|i| (i % 5 == 0) as u32 as f32).collect();
        let pos = t.iter().filter(|&&v| v > 0.5).count() as f64;
        let neg = n as f64 - pos;
        let w = neg / n as f64;
        let x = crate::tensor::elementwise::zeros(&gpu, &[1, 1, 1, n]).unwrap();
        let tt = Tensor::from_slice(&gpu, &t, &[1, 1, 1, n]).unwrap();
        let got = balanced_bce(&x, &tt, true).unwrap().loss.item().unwrap() as f64;
        let want = 2f64.ln() * (w * pos + (1.0 - w) * neg) / n as f64;
        assert!((got - want).abs() / want < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn refuses_multichannel_input() {
        let gpu = Gpu::shared().unwrap();
        let x = crate::tensor::elementwise::zeros(&gpu, &[2, 3, 4, 4]).unwrap();
        let e = balanced_bce(&x, &x, true).err().unwrap();
        assert!(e.to_string().contains("[B, 1, H, W]"), "{e}");
    }
}
