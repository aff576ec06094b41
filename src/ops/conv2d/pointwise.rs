//! The 1x1 convolutions (stride 1, no padding, one group) that make up most of
//! MobileNetV2's and ResNet's work, computed as the matmuls they are with the tiled
//! matmul kernel instead of the direct convolution: per image, y = W x with x viewed
//! as [C_in, H*W], the batch's images side by side as the columns of one product.
//! The weight gradient sums the images inside the product's K loop. The direct
//! kernels stay the reference these are tested against.

use super::geometry::Conv2dGeometry;
use crate::error::Result;
use crate::ops::matmul::{matmul_folded, Folds, MatView};
use crate::ops::reduce::reduce_sum;
use crate::tensor::Tensor;

/// Workgroups a weight gradient's launch should have at least: below that, the
/// batch is summed in as many groups as bring it there (each summing its images
/// inside the matmul's K loop), then the groups' products are added.
const MIN_WEIGHT_GRAD_GROUPS: usize = 16;

/// Whether `g` is a convolution these matmuls compute.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    let p = &g.params;
    g.kh == 1 && g.kw == 1 && p.stride == [1, 1] && p.padding == [0, 0] && p.groups == 1
}

fn pixels(g: &Conv2dGeometry) -> usize {
    g.h * g.w
}

/// The batch's images side by side as the columns of one product: image n's pixels
/// are columns n * H*W .. (n + 1) * H*W, so small maps fill whole tiles and one
/// launch covers the batch.
fn image_columns(hw: usize) -> Folds {
    Folds {
        batch: 1,
        n_segment: hw,
        k_segments: 1,
    }
}

/// y[n] = W [C_out, C_in] @ x[n] [C_in, H*W].
pub(super) fn forward(input: &Tensor, weight: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    let hw = pixels(g);
    let out = matmul_folded(
        weight,
        MatView::contiguous(g.cout, g.cin, false),
        input,
        MatView::contiguous(g.cin, hw, true),
        image_columns(hw),
        g.cout,
        g.cin,
        g.n * hw,
    )?;
    out.reshape(&g.output_shape())
}

/// dx[n] = W^T [C_in, C_out] @ dy[n] [C_out, H*W].
pub(super) fn input_grad(grad_out: &Tensor, weight: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    let hw = pixels(g);
    let out = matmul_folded(
        weight,
        MatView::contiguous(g.cout, g.cin, false).t(),
        grad_out,
        MatView::contiguous(g.cout, hw, true),
        image_columns(hw),
        g.cin,
        g.cout,
        g.n * hw,
    )?;
    out.reshape(&g.input_shape())
}

/// dW = sum over n of dy[n] [C_out, H*W] @ x[n]^T [H*W, C_in], the images summed
/// inside the product in as few groups as keep the device busy.
pub(super) fn weight_grad(grad_out: &Tensor, input: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    let hw = pixels(g);
    let tiles = g.cout.div_ceil(64) * g.cin.div_ceil(64);
    let wanted = MIN_WEIGHT_GRAD_GROUPS.div_ceil(tiles).min(g.n);
    // The most groups up to `wanted` that split the batch evenly.
    let groups = (1..=wanted)
        .rev()
        .find(|d| g.n.is_multiple_of(*d))
        .unwrap_or(1);
    let images = g.n / groups;
    let per_group = matmul_folded(
        grad_out,
        MatView::contiguous(g.cout, hw, true),
        input,
        MatView::contiguous(g.cin, hw, true).t(),
        Folds {
            batch: groups,
            n_segment: g.cin,
            k_segments: images,
        },
        g.cout,
        hw,
        g.cin,
    )?;
    if groups == 1 {
        return per_group.reshape(&g.weight_shape());
    }
    reduce_sum("conv2d", &per_group, &[0], false, 1.0)?.reshape(&g.weight_shape())
}
