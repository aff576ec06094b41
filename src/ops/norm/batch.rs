//! batch_norm: statistics per channel over batch and pixels in training (updating the
//! running statistics in place), the running statistics in eval.

use super::layout::{
    channel_dims, check_param, normalize, Affine, Layout, NormActivation, Normalized,
};
use crate::error::{Error, Result};
use crate::tensor::{shape_str, Tensor};

/// batch_norm's mode and constants, as torch.nn.functional.batch_norm takes them.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormOpts {
    pub training: bool,
    pub momentum: f32,
    pub eps: f32,
    /// An activation applied to the output in the same pass.
    pub activation: NormActivation,
}

impl Default for BatchNormOpts {
    fn default() -> Self {
        BatchNormOpts {
            training: false,
            momentum: 0.1,
            eps: 1e-5,
            activation: NormActivation::None,
        }
    }
}

/// A private copy of a small tensor, so later in-place updates do not reach it.
fn snapshot(t: &Tensor) -> Result<Tensor> {
    let copy = Tensor::empty(t.gpu(), t.shape(), t.dtype())?;
    t.gpu()
        .copy(t.buffer(), copy.buffer(), t.numel() as u64 * 4);
    Ok(copy)
}

/// torch.nn.functional.batch_norm of `x` [N, C, ...], followed by `opts.activation`. In training mode it normalises
/// with the batch statistics and, when running statistics are given, MUTATES
/// `running_mean` and `running_var` in place (their GPU buffers, so every tensor
/// sharing that storage sees the update): r = (1 - momentum) * r + momentum * batch,
/// with the unbiased batch variance. In eval mode it normalises with the running
/// statistics, which are then required.
pub fn batch_norm(
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    opts: BatchNormOpts,
) -> Result<Normalized> {
    let op = "batch_norm";
    let (n, c, s) = channel_dims(op, x)?;
    for (name, t) in [
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ] {
        check_param(op, name, t, &[c])?;
    }
    let running = match (running_mean, running_var) {
        (Some(m), Some(v)) => Some((m, v)),
        (None, None) => None,
        _ => {
            return Err(Error::op(
                op,
                "running_mean and running_var must be given together",
            ))
        }
    };
    let layout = Layout {
        op,
        rows: n * c,
        row_len: s,
        groups: c,
        group_div: 1,
        stride: c,
        count: n,
        channels: c,
        affine: Affine::Channels,
        param_shape: vec![c],
        eps: opts.eps,
        momentum: opts.momentum,
        activation: opts.activation,
    };
    if !opts.training {
        let (m, v) = running.ok_or_else(|| {
            Error::op(
                op,
                "eval mode (training=false) needs running_mean and running_var",
            )
        })?;
        return normalize(
            layout,
            x,
            Some((snapshot(m)?, snapshot(v)?)),
            None,
            weight,
            bias,
        );
    }
    if n * s == 1 {
        return Err(Error::op(
            op,
            format!(
                "expected more than 1 value per channel when training, got input of shape {}",
                shape_str(x.shape())
            ),
        ));
    }
    normalize(layout, x, None, running, weight, bias)
}
