//! layer_norm: statistics per row over the trailing `normalized_shape` dims, with a
//! per-element affine.

use super::layout::{check_param, normalize, Affine, Layout, NormActivation, Normalized};
use crate::error::{Error, Result};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, Tensor};

/// torch.nn.functional.layer_norm of `x` over its trailing `normalized_shape` dims.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Normalized> {
    let op = "layer_norm";
    expect_f32(op, "input", x)?;
    let k = normalized_shape.len();
    if k == 0 || k > x.rank() || x.shape()[x.rank() - k..] != *normalized_shape {
        return Err(Error::op(
            op,
            format!(
                "normalized_shape {} must be non-empty and match the trailing dims of input {}",
                shape_str(normalized_shape),
                shape_str(x.shape())
            ),
        ));
    }
    check_param(op, "weight", weight, normalized_shape)?;
    check_param(op, "bias", bias, normalized_shape)?;
    let d: usize = normalized_shape.iter().product();
    let rows = x.numel() / d;
    let layout = Layout {
        op,
        rows,
        row_len: d,
        groups: rows,
        group_div: 1,
        stride: 1,
        count: 1,
        channels: 1,
        affine: Affine::AlongRows,
        param_shape: normalized_shape.to_vec(),
        eps,
        momentum: 0.0,
        activation: NormActivation::None,
    };
    normalize(layout, x, None, None, weight, bias)
}
