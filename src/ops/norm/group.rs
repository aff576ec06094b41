//! group_norm and instance_norm (group norm with one channel per group): statistics
//! per image over each group of channels and its pixels.

use super::layout::{
    channel_dims, check_param, normalize, Affine, Layout, NormActivation, Normalized,
};
use crate::error::{Error, Result};
use crate::tensor::{shape_str, Tensor};

/// torch.nn.functional.instance_norm of `x` [N, C, ...] with the input's statistics.
pub fn instance_norm(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Normalized> {
    let op = "instance_norm";
    let (_, c, s) = channel_dims(op, x)?;
    check_param(op, "weight", weight, &[c])?;
    check_param(op, "bias", bias, &[c])?;
    if s == 1 {
        return Err(Error::op(
            op,
            format!(
                "expected more than 1 spatial element, got input of shape {}",
                shape_str(x.shape())
            ),
        ));
    }
    channel_groups(op, x, c, weight, bias, eps)
}

/// torch.nn.functional.group_norm of `x` [N, C, ...] over `num_groups` channel groups.
pub fn group_norm(
    x: &Tensor,
    num_groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Normalized> {
    let op = "group_norm";
    let (n, c, s) = channel_dims(op, x)?;
    if num_groups == 0 || !c.is_multiple_of(num_groups) {
        return Err(Error::op(
            op,
            format!("num_groups={num_groups} must divide the {c} channels of input"),
        ));
    }
    check_param(op, "weight", weight, &[c])?;
    check_param(op, "bias", bias, &[c])?;
    let per_group = c / num_groups;
    // PyTorch's check: N * C/G * spatial values must not be a single one.
    if n * per_group * s == 1 {
        return Err(Error::op(
            op,
            format!(
                "expected more than 1 value per group, got input of shape {} with num_groups={num_groups}",
                shape_str(x.shape())
            ),
        ));
    }
    channel_groups(op, x, num_groups, weight, bias, eps)
}

/// Normalises `x` [N, C, ...] over groups of C / `groups` channels (instance norm:
/// one channel per group) with per-channel affine parameters; shapes are checked.
fn channel_groups(
    op: &'static str,
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Normalized> {
    let (n, c, s) = channel_dims(op, x)?;
    let per_group = c / groups;
    let layout = Layout {
        op,
        rows: n * c,
        row_len: s,
        groups: n * groups,
        group_div: per_group,
        stride: 1,
        count: per_group,
        channels: c,
        affine: Affine::Channels,
        param_shape: vec![c],
        eps,
        momentum: 0.0,
        activation: NormActivation::None,
    };
    normalize(layout, x, None, None, weight, bias)
}
