//! What the four norms share: the [`Layout`] of rows and groups, the statistics and
//! affine kernels over it, and the backward of every norm.

use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Gpu, Kernel, WORKGROUP};
use crate::ops::reduce::reduce_sum;
use crate::tensor::elementwise::{expect_f32, full, mul, unary_backward, zeros, UnaryOp};
use crate::tensor::{shape_str, DType, Tensor};

/// Rows at least this long are reduced by a whole workgroup each...
const WORKGROUP_ROW_MIN: usize = 256;
/// ...when there are fewer of them than this. With more rows, one invocation per row
/// already keeps the device busy, and on lavapipe a workgroup's reduction costs more
/// than its loads: batch norm of a 16 x 144 x 32 x 32 batch took 2.5 times as long
/// reduced by workgroups.
const WORKGROUP_ROWS_MAX: usize = 256;

/// Where weight and bias vary: per channel (row r has channel r % channels) or along
/// each row (layer_norm, with weight and bias of `normalized_shape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Affine {
    Channels,
    AlongRows,
}

/// An activation fused after the affine (batch_norm's, as in conv-BN-ReLU6 blocks):
/// one pass over the output instead of two, and its backward inside the norm's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormActivation {
    #[default]
    None,
    Relu,
    Relu6,
}

impl NormActivation {
    /// Its code in shaders/norm.wgsl's `act`.
    fn code(self) -> u32 {
        match self {
            NormActivation::None => 0,
            NormActivation::Relu => 1,
            NormActivation::Relu6 => 2,
        }
    }

    /// The elementwise op it fuses, if any.
    fn unary(self) -> Option<UnaryOp> {
        match self {
            NormActivation::None => None,
            NormActivation::Relu => Some(UnaryOp::Relu),
            NormActivation::Relu6 => Some(UnaryOp::Relu6),
        }
    }
}

/// The input as `rows` rows of `row_len` elements; group g is the `count` rows
/// g * group_div + t * stride (see shaders/norm.wgsl for each op's values).
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) op: &'static str,
    pub(super) rows: usize,
    pub(super) row_len: usize,
    pub(super) groups: usize,
    pub(super) group_div: usize,
    pub(super) stride: usize,
    pub(super) count: usize,
    pub(super) channels: usize,
    pub(super) affine: Affine,
    /// Shape of weight and bias.
    pub(super) param_shape: Vec<usize>,
    pub(super) eps: f32,
    pub(super) momentum: f32,
    pub(super) activation: NormActivation,
}

impl Layout {
    fn params(&self) -> Result<Params> {
        let op = self.op;
        Ok(Params::new(op)
            .idx("rows", self.rows)?
            .idx("row_len", self.row_len)?
            .idx("groups", self.groups)?
            .idx("group_div", self.group_div)?
            .idx("stride", self.stride)?
            .idx("count", self.count)?
            .idx("channels", self.channels)?
            .idx("total", self.rows * self.row_len)?
            .f32("eps", self.eps)
            .f32("momentum", self.momentum)
            .u32("act", self.activation.code()))
    }

    /// One invocation per item (row, group, channel or element).
    pub(super) fn run(
        &self,
        gpu: &Gpu,
        entry: &'static str,
        buffers: &[&wgpu::Buffer],
        items: usize,
    ) -> Result<()> {
        gpu.dispatch(
            &Kernel::new("norm", entry),
            buffers,
            &self.params()?,
            gpu.grid(items as u64, WORKGROUP),
        )
    }

    /// A per-row reduction: `wide` (a workgroup per row) for long rows, else `narrow`.
    fn run_rows(
        &self,
        gpu: &Gpu,
        narrow: &'static str,
        wide: &'static str,
        buffers: &[&wgpu::Buffer],
    ) -> Result<()> {
        if self.row_len >= WORKGROUP_ROW_MIN && self.rows < WORKGROUP_ROWS_MAX {
            gpu.dispatch(
                &Kernel::new("norm", wide),
                buffers,
                &self.params()?,
                gpu.grid(self.rows as u64, 1),
            )
        } else {
            self.run(gpu, narrow, buffers, self.rows)
        }
    }

    fn elements(&self) -> usize {
        self.rows * self.row_len
    }

    /// Mean and biased variance of every group and the forward coefficients of every
    /// row (see [`Layout::coef_forward`]); with `running`, batch_norm's running
    /// statistics are updated in place from the same kernel.
    fn batch_coef(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        running: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let gpu = x.gpu();
        let row_mean = Tensor::empty(gpu, &[self.rows], DType::F32)?;
        let row_m2 = Tensor::empty(gpu, &[self.rows], DType::F32)?;
        self.run_rows(
            gpu,
            "row_moments",
            "row_moments_wg",
            &[x.buffer(), row_mean.buffer(), row_m2.buffer()],
        )?;
        let mean = Tensor::empty(gpu, &[self.groups], DType::F32)?;
        let var = Tensor::empty(gpu, &[self.groups], DType::F32)?;
        let coef = Tensor::empty(gpu, &[self.rows, 4], DType::F32)?;
        let mut buffers = vec![
            w.buffer(),
            b.buffer(),
            row_mean.buffer(),
            row_m2.buffer(),
            mean.buffer(),
            var.buffer(),
            coef.buffer(),
        ];
        let entry = match running {
            Some((m, v)) => {
                buffers.extend([m.buffer(), v.buffer()]);
                "group_coef_running"
            }
            None => "group_coef",
        };
        self.run(gpu, entry, &buffers, self.groups)?;
        Ok((mean, var, coef))
    }

    /// Per-row (mean, rstd * w[channel], b[channel], 0).
    fn coef_forward(&self, mean: &Tensor, var: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        let gpu = mean.gpu();
        let coef = Tensor::empty(gpu, &[self.rows, 4], DType::F32)?;
        self.run(
            gpu,
            "coef_forward",
            &[
                mean.buffer(),
                var.buffer(),
                w.buffer(),
                b.buffer(),
                coef.buffer(),
            ],
            self.rows,
        )?;
        Ok(coef)
    }

    /// `coef.y * (x - coef.x) + coef.z` with each row's coefficients.
    fn apply_rows(&self, x: &Tensor, coef: &Tensor) -> Result<Tensor> {
        let gpu = x.gpu();
        let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
        self.run(
            gpu,
            "apply_rows",
            &[x.buffer(), coef.buffer(), y.buffer()],
            self.elements(),
        )?;
        Ok(y)
    }

    /// Per row: sum(u) and sum(u * xhat), u taken behind the activation whose output
    /// is `activated` (x when there is none).
    fn row_sums(
        &self,
        u: &Tensor,
        x: &Tensor,
        activated: &Tensor,
        mean: &Tensor,
        var: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let gpu = x.gpu();
        let su = Tensor::empty(gpu, &[self.rows], DType::F32)?;
        let sux = Tensor::empty(gpu, &[self.rows], DType::F32)?;
        self.run_rows(
            gpu,
            "row_sums",
            "row_sums_wg",
            &[
                x.buffer(),
                u.buffer(),
                mean.buffer(),
                var.buffer(),
                su.buffer(),
                sux.buffer(),
                activated.buffer(),
            ],
        )?;
        Ok((su, sux))
    }

    /// `dx = coef.y * (x - coef.x) + coef.z + coef.w * u` with each row's coefficients,
    /// u behind the activation whose output is `activated`.
    fn grad_rows(
        &self,
        u: &Tensor,
        x: &Tensor,
        activated: &Tensor,
        coef: &Tensor,
    ) -> Result<Tensor> {
        let gpu = x.gpu();
        let dx = Tensor::empty(gpu, x.shape(), DType::F32)?;
        self.run(
            gpu,
            "grad_rows",
            &[
                x.buffer(),
                u.buffer(),
                coef.buffer(),
                dx.buffer(),
                activated.buffer(),
            ],
            self.elements(),
        )?;
        Ok(dx)
    }

    /// The input gradient of a normalisation with batch statistics, from the rows'
    /// sums of u and u * xhat (`su`, `sux`); `u` is g, or g*w when the weight runs
    /// along rows (then `w` is a single 1). Also returns each group's unweighted sums
    /// (of u * xhat, of u): the weight and bias gradients when the groups are the
    /// channels.
    #[allow(clippy::too_many_arguments)]
    fn grad_input(
        &self,
        u: &Tensor,
        x: &Tensor,
        activated: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        w: &Tensor,
        su: &Tensor,
        sux: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let gpu = x.gpu();
        let coef = Tensor::empty(gpu, &[self.rows, 4], DType::F32)?;
        let group_sux = Tensor::empty(gpu, &[self.groups], DType::F32)?;
        let group_su = Tensor::empty(gpu, &[self.groups], DType::F32)?;
        self.run(
            gpu,
            "group_backward",
            &[
                mean.buffer(),
                var.buffer(),
                w.buffer(),
                su.buffer(),
                sux.buffer(),
                group_sux.buffer(),
                group_su.buffer(),
                coef.buffer(),
            ],
            self.groups,
        )?;
        Ok((self.grad_rows(u, x, activated, &coef)?, group_sux, group_su))
    }

    /// Whether every row of group g has channel g (batch_norm; instance and group
    /// norm of one image with one channel per group), so that a group's sums are its
    /// channel's.
    fn groups_are_channels(&self) -> bool {
        self.groups == self.channels
            && self.group_div == 1
            && (self.count == 1 || self.stride.is_multiple_of(self.channels))
    }

    /// Sums a per-row tensor (or the rows of an input-shaped one) over the leading
    /// index, leaving one value per weight element.
    fn sum_over_rows(&self, t: &Tensor) -> Result<Tensor> {
        let per = self.param_shape.iter().product::<usize>();
        let lead = t.numel() / per;
        reduce_sum(self.op, &t.reshape(&[lead, per])?, &[0], false, 1.0)?.reshape(&self.param_shape)
    }
}

/// A normalisation's output and what its backward needs.
pub struct Normalized {
    pub output: Tensor,
    pub saved: NormSaved,
}

/// The statistics an output was normalised with: the batch's, or batch_norm's
/// running statistics in eval mode (then the input gradient is just the affine's).
pub struct NormSaved {
    pub(super) layout: Layout,
    pub(super) mean: Tensor,
    pub(super) var: Tensor,
    pub(super) batch_stats: bool,
    /// The output, when an activation was fused: its backward reads the mask off it.
    pub(super) activated: Option<Tensor>,
}

/// Which gradients a backward pass should produce.
#[derive(Clone, Copy, Debug, Default)]
pub struct NormNeeds {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

pub struct NormGrads {
    pub input: Option<Tensor>,
    pub weight: Option<Tensor>,
    pub bias: Option<Tensor>,
}

impl NormSaved {
    /// Gradients of the normalisation of `x` (with `weight`, if it had one) from the
    /// output gradient `g`.
    pub fn backward(
        &self,
        x: &Tensor,
        g: &Tensor,
        weight: Option<&Tensor>,
        needs: NormNeeds,
    ) -> Result<NormGrads> {
        let l = &self.layout;
        let gpu = x.gpu();
        match l.affine {
            Affine::Channels => {
                let w = match weight {
                    Some(w) => w.clone(),
                    None => full(gpu, &[l.channels], 1.0)?,
                };
                let activated = self.activated.as_ref().unwrap_or(x);
                let need_sums = needs.weight || needs.bias || (needs.input && self.batch_stats);
                let sums = if need_sums {
                    Some(l.row_sums(g, x, activated, &self.mean, &self.var)?)
                } else {
                    None
                };
                let mut channel_sums = None;
                let input = match (needs.input, &sums) {
                    (false, _) => None,
                    (true, Some((su, sux))) if self.batch_stats => {
                        let (dx, group_sux, group_su) =
                            l.grad_input(g, x, activated, &self.mean, &self.var, &w, su, sux)?;
                        if l.groups_are_channels() {
                            channel_sums = Some((group_sux, group_su));
                        }
                        Some(dx)
                    }
                    // Fixed statistics: dx = g * w * rstd, the forward's slope, with g
                    // taken behind the activation first.
                    (true, _) => {
                        let g = match (l.activation.unary(), &self.activated) {
                            (Some(op), Some(y)) => unary_backward(op, y, y, g, 0.0)?,
                            _ => g.clone(),
                        };
                        let plain = Layout {
                            activation: NormActivation::None,
                            ..l.clone()
                        };
                        let zero = zeros(gpu, &[l.channels])?;
                        let coef = plain.coef_forward(&zero, &self.var, &w, &zero)?;
                        Some(plain.apply_rows(&g, &coef)?)
                    }
                };
                let (weight, bias) = match (channel_sums, &sums) {
                    (Some((dw, db)), _) => (needs.weight.then_some(dw), needs.bias.then_some(db)),
                    (None, Some((su, sux))) => (
                        needs.weight.then(|| l.sum_over_rows(sux)).transpose()?,
                        needs.bias.then(|| l.sum_over_rows(su)).transpose()?,
                    ),
                    (None, None) => (None, None),
                };
                Ok(NormGrads {
                    input,
                    weight,
                    bias,
                })
            }
            Affine::AlongRows => {
                let u = match weight {
                    Some(w) => mul(g, w)?,
                    None => g.clone(),
                };
                let one = full(gpu, &[1], 1.0)?;
                let input = if needs.input {
                    // Rows are groups here, so the row sums are the group sums.
                    let (su, sux) = l.row_sums(&u, x, x, &self.mean, &self.var)?;
                    Some(
                        l.grad_input(&u, x, x, &self.mean, &self.var, &one, &su, &sux)?
                            .0,
                    )
                } else {
                    None
                };
                let weight = if needs.weight {
                    let zero = zeros(gpu, &[1])?;
                    let xhat =
                        l.apply_rows(x, &l.coef_forward(&self.mean, &self.var, &one, &zero)?)?;
                    Some(l.sum_over_rows(&mul(g, &xhat)?)?)
                } else {
                    None
                };
                let bias = needs.bias.then(|| l.sum_over_rows(g)).transpose()?;
                Ok(NormGrads {
                    input,
                    weight,
                    bias,
                })
            }
        }
    }
}

/// Checks an optional parameter tensor's dtype and shape.
pub(super) fn check_param(op: &str, name: &str, t: Option<&Tensor>, shape: &[usize]) -> Result<()> {
    let Some(t) = t else { return Ok(()) };
    expect_f32(op, name, t)?;
    if t.shape() != shape {
        return Err(Error::op(
            op,
            format!(
                "{name} must have shape {}, got {}",
                shape_str(shape),
                shape_str(t.shape())
            ),
        ));
    }
    Ok(())
}

/// (N, C, spatial size) of an [N, C, ...] input.
pub(super) fn channel_dims(op: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
    expect_f32(op, "input", x)?;
    if x.rank() < 2 {
        return Err(Error::op(
            op,
            format!(
                "input must be [N, C, ...], got shape {}",
                shape_str(x.shape())
            ),
        ));
    }
    let s = x.shape();
    Ok((s[0], s[1], s[2..].iter().product()))
}

/// Normalises `x` by `stats` (the batch's when `None`, then updating batch_norm's
/// `running` statistics in place when given) and applies the affine.
pub(super) fn normalize(
    layout: Layout,
    x: &Tensor,
    stats: Option<(Tensor, Tensor)>,
    running: Option<(&Tensor, &Tensor)>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
) -> Result<Normalized> {
    let gpu = x.gpu();
    let batch_stats = stats.is_none();
    let ones = |n| full(gpu, &[n], 1.0);
    let (w, b) = match layout.affine {
        Affine::Channels => {
            let c = layout.channels;
            (
                weight.cloned().map_or_else(|| ones(c), Ok)?,
                bias.cloned().map_or_else(|| zeros(gpu, &[c]), Ok)?,
            )
        }
        // The rows are normalised first; weight and bias run along them after.
        Affine::AlongRows => (ones(1)?, zeros(gpu, &[1])?),
    };
    let (mean, var, coef) = match stats {
        Some((mean, var)) => {
            let coef = layout.coef_forward(&mean, &var, &w, &b)?;
            (mean, var, coef)
        }
        None => layout.batch_coef(x, &w, &b, running)?,
    };
    let output = match layout.affine {
        Affine::Channels => layout.apply_rows(x, &coef)?,
        Affine::AlongRows => {
            let d = layout.row_len;
            let w = weight.map_or_else(|| ones(d), |w| w.reshape(&[d]))?;
            let b = bias.map_or_else(|| zeros(gpu, &[d]), |b| b.reshape(&[d]))?;
            let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
            layout.run(
                gpu,
                "apply_cols",
                &[
                    x.buffer(),
                    w.buffer(),
                    b.buffer(),
                    coef.buffer(),
                    y.buffer(),
                ],
                layout.elements(),
            )?;
            y
        }
    };
    let activated = (layout.activation != NormActivation::None).then(|| output.clone());
    Ok(Normalized {
        output,
        saved: NormSaved {
            layout,
            mean,
            var,
            batch_stats,
            activated,
        },
    })
}
