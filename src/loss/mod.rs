//! Loss functions, filed by kind rather than by paper: each a fused WGSL forward and
//! backward with a raw tensor-level fn, a `Var` method and an op-table entry
//! (`wgseg op`, gradcheck). InfoNCE over mask prototypes, pixel contrast (with its
//! anchor sampler), pixel-prototype contrast, PatchNCE, cross-entropy, balanced BCE,
//! and the pointwise losses (L1, MSE, LSGAN, entropy).
//!
//! Scalar losses reduce in two steps: a grid-stride kernel leaves one partial sum per
//! invocation (at most [`PARTIALS`] of them), then reduce.wgsl or the one-workgroup
//! [`ratio_of_sums`] adds them up.

pub mod anchor_sampler;
pub mod balanced_bce;
pub mod cross_entropy;
pub mod mask_infonce;
pub mod patch_nce;
pub mod pixel_contrast;
pub mod proto_contrast;
pub mod simple_loss;

use crate::error::{Error, Result};
use crate::gpu::Kernel;
use crate::ops::reduce::reduce_sum;
use crate::tensor::{DType, Tensor};

pub use anchor_sampler::{AnchorSampler, Anchors};
pub use balanced_bce::{balanced_bce, balanced_bce_backward, BalancedBce};
pub use cross_entropy::{check_targets, cross_entropy, cross_entropy_backward, CrossEntropy};
pub use pixel_contrast::{check_positives, ContrastForward, Memory, PixelContrast};
use simple_loss::LossParams;
pub use simple_loss::{
    entropy, entropy_backward, lsgan_loss, pointwise_loss, pointwise_loss_backward, Pointwise,
    Target,
};

/// Most partial sums a reduction's first pass leaves (one per invocation).
pub const PARTIALS: usize = 1 << 16;

/// Invocations of a grid-stride partial-sum kernel over `n` items.
pub(crate) fn partial_count(n: usize) -> usize {
    n.clamp(1, PARTIALS)
}

/// torch's `reduction` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    None,
    Mean,
    Sum,
}

impl Reduction {
    /// Parses "none", "mean" or "sum".
    pub fn parse(op: &str, s: &str) -> Result<Reduction> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            other => Err(Error::op(
                op,
                format!("reduction must be \"none\", \"mean\" or \"sum\", got {other:?}"),
            )),
        }
    }
}

/// `factor * sum(x)` as a scalar (shape []).
pub(crate) fn sum_all(op: &str, x: &Tensor, factor: f32) -> Result<Tensor> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    reduce_sum(op, x, &axes, false, factor)
}

/// (sum(num) / sum(den), sum(den)) as scalars, for means whose denominator is data
/// dependent (weighted cross-entropy, anchors with positives). `num` and `den` have
/// equally many elements.
pub fn ratio_of_sums(op: &str, num: &Tensor, den: &Tensor) -> Result<(Tensor, Tensor)> {
    let gpu = num.gpu();
    let out = Tensor::empty(gpu, &[], DType::F32)?;
    let den_sum = Tensor::empty(gpu, &[], DType::F32)?;
    let p = LossParams {
        n: num.numel(),
        ..Default::default()
    }
    .build(op)?;
    gpu.dispatch(
        &Kernel::new("simple_loss", "ratio"),
        &[out.buffer(), num.buffer(), den.buffer(), den_sum.buffer()],
        &p,
        [1, 1, 1],
    )?;
    Ok((out, den_sum))
}
