//! The 1x1 convolutions (stride 1, no padding, one group) that make up most of
//! MobileNetV2's and ResNet's work, computed as the matmuls they are with the tiled
//! matmul kernel instead of the direct convolution: per image, y = W x with x viewed
//! as [C_in, H*W]. The weight gradient is one product per image, summed over the
//! batch. The direct kernels stay the reference these are tested against.

use super::geometry::Conv2dGeometry;
use crate::error::Result;
use crate::ops::matmul::{matmul_views, MatView};
use crate::ops::reduce::reduce_sum;
use crate::tensor::Tensor;

/// Whether `g` is a convolution these matmuls compute.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    let p = &g.params;
    g.kh == 1 && g.kw == 1 && p.stride == [1, 1] && p.padding == [0, 0] && p.groups == 1
}

fn pixels(g: &Conv2dGeometry) -> usize {
    g.h * g.w
}

/// y[n] = W [C_out, C_in] @ x[n] [C_in, H*W].
pub(super) fn forward(input: &Tensor, weight: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    let hw = pixels(g);
    let out = matmul_views(
        weight,
        MatView::contiguous(g.cout, g.cin, false),
        input,
        MatView::contiguous(g.cin, hw, true),
        g.n,
        g.cout,
        g.cin,
        hw,
    )?;
    out.reshape(&g.output_shape())
}

/// dx[n] = W^T [C_in, C_out] @ dy[n] [C_out, H*W].
pub(super) fn input_grad(grad_out: &Tensor, weight: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    let hw = pixels(g);
    let out = matmul_views(
        weight,
        MatView::contiguous(g.cout, g.cin, false).t(),
        grad_out,
        MatView::contiguous(g.cout, hw, true),
        g.n,
        g.cin,
        g.cout,
        hw,
    )?;
    out.reshape(&g.input_shape())
}

/// dW = sum over n of dy[n] [C_out, H*W] @ x[n]^T [H*W, C_in].
pub(super) fn weight_grad(grad_out: &Tensor, input: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    let hw = pixels(g);
    let per_image = matmul_views(
        grad_out,
        MatView::contiguous(g.cout, hw, true),
        input,
        MatView::contiguous(g.cin, hw, true).t(),
        g.n,
        g.cout,
        hw,
        g.cin,
    )?;
    if g.n == 1 {
        return per_image.reshape(&g.weight_shape());
    }
    reduce_sum("conv2d", &per_image, &[0], false, 1.0)?.reshape(&g.weight_shape())
}
