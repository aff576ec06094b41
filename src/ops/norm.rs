//! batch_norm, instance_norm, group_norm and layer_norm (shaders/norm.wgsl). All four
//! normalise groups of rows by the group's mean and biased variance and then apply a
//! per-channel (or, for layer_norm, per-element) affine; they differ only in how rows
//! form groups, which a [`Layout`] describes.

use super::attrs::{AttrKind, AttrSpec};
use super::reduce::reduce_sum;
use super::spec::{attr, f32_in, optional_in, InputSpec, OpCall, OpSpec};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, WORKGROUP};
use crate::tensor::elementwise::{expect_f32, full, mul, zeros};
use crate::tensor::params::Params;
use crate::tensor::{shape_str, DType, Tensor};

/// Rows at least this long are reduced by a whole workgroup each.
const WORKGROUP_ROW_MIN: usize = 256;

/// Where weight and bias vary: per channel (row r has channel r % channels) or along
/// each row (layer_norm, with weight and bias of `normalized_shape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Affine {
    Channels,
    AlongRows,
}

/// The input as `rows` rows of `row_len` elements; group g is the `count` rows
/// g * group_div + t * stride (see shaders/norm.wgsl for each op's values).
#[derive(Clone, Debug)]
struct Layout {
    op: &'static str,
    rows: usize,
    row_len: usize,
    groups: usize,
    group_div: usize,
    stride: usize,
    count: usize,
    channels: usize,
    affine: Affine,
    /// Shape of weight and bias.
    param_shape: Vec<usize>,
    eps: f32,
    momentum: f32,
}

impl Layout {
    fn params(&self) -> Result<Params> {
        let op = self.op;
        Ok(Params::new()
            .idx(op, self.rows)?
            .idx(op, self.row_len)?
            .idx(op, self.groups)?
            .idx(op, self.group_div)?
            .idx(op, self.stride)?
            .idx(op, self.count)?
            .idx(op, self.channels)?
            .idx(op, self.rows * self.row_len)?
            .f32(self.eps)
            .f32(self.momentum))
    }

    /// One invocation per item (row, group, channel or element).
    fn run(
        &self,
        gpu: &Gpu,
        entry: &'static str,
        buffers: &[&wgpu::Buffer],
        items: usize,
    ) -> Result<()> {
        gpu.dispatch(
            &Kernel::new("norm", entry),
            buffers,
            self.params()?.bytes(),
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
        if self.row_len >= WORKGROUP_ROW_MIN {
            gpu.dispatch(
                &Kernel::new("norm", wide),
                buffers,
                self.params()?.bytes(),
                gpu.grid(self.rows as u64, 1),
            )
        } else {
            self.run(gpu, narrow, buffers, self.rows)
        }
    }

    fn elements(&self) -> usize {
        self.rows * self.row_len
    }

    /// Mean and biased variance of every group.
    fn batch_stats(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
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
        self.run(
            gpu,
            "group_moments",
            &[
                row_mean.buffer(),
                row_m2.buffer(),
                mean.buffer(),
                var.buffer(),
            ],
            self.groups,
        )?;
        Ok((mean, var))
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

    /// Per row: sum(u) and sum(u * xhat).
    fn row_sums(
        &self,
        u: &Tensor,
        x: &Tensor,
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
            ],
        )?;
        Ok((su, sux))
    }

    /// The input gradient from the groups' sums of g*w and g*w*xhat; `u` is g, or
    /// g*w when the weight runs along rows (then `w` is a single 1).
    #[allow(clippy::too_many_arguments)]
    fn grad_input(
        &self,
        u: &Tensor,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        w: &Tensor,
        sum_gw: &Tensor,
        sum_gwx: &Tensor,
    ) -> Result<Tensor> {
        let gpu = x.gpu();
        let coef = Tensor::empty(gpu, &[self.rows, 4], DType::F32)?;
        self.run(
            gpu,
            "coef_backward",
            &[
                mean.buffer(),
                var.buffer(),
                w.buffer(),
                sum_gw.buffer(),
                sum_gwx.buffer(),
                coef.buffer(),
            ],
            self.rows,
        )?;
        let dx = Tensor::empty(gpu, x.shape(), DType::F32)?;
        self.run(
            gpu,
            "grad_rows",
            &[x.buffer(), u.buffer(), coef.buffer(), dx.buffer()],
            self.elements(),
        )?;
        Ok(dx)
    }

    /// Sums per-row values over the rows of each group, weighted by the row's weight.
    fn group_sums(&self, su: &Tensor, sux: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor)> {
        let gpu = su.gpu();
        let a = Tensor::empty(gpu, &[self.groups], DType::F32)?;
        let b = Tensor::empty(gpu, &[self.groups], DType::F32)?;
        self.run(
            gpu,
            "group_sums",
            &[
                w.buffer(),
                su.buffer(),
                sux.buffer(),
                a.buffer(),
                b.buffer(),
            ],
            self.groups,
        )?;
        Ok((a, b))
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
    layout: Layout,
    mean: Tensor,
    var: Tensor,
    batch_stats: bool,
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
                let need_sums = needs.weight || needs.bias || (needs.input && self.batch_stats);
                let sums = if need_sums {
                    Some(l.row_sums(g, x, &self.mean, &self.var)?)
                } else {
                    None
                };
                let input = match (needs.input, &sums) {
                    (false, _) => None,
                    (true, Some((su, sux))) if self.batch_stats => {
                        let (sgw, sgwx) = l.group_sums(su, sux, &w)?;
                        Some(l.grad_input(g, x, &self.mean, &self.var, &w, &sgw, &sgwx)?)
                    }
                    // Fixed statistics: dx = g * w * rstd, the forward's slope.
                    (true, _) => {
                        let zero = zeros(gpu, &[l.channels])?;
                        let coef = l.coef_forward(&zero, &self.var, &w, &zero)?;
                        Some(l.apply_rows(g, &coef)?)
                    }
                };
                let (weight, bias) = match &sums {
                    Some((su, sux)) => (
                        needs.weight.then(|| l.sum_over_rows(sux)).transpose()?,
                        needs.bias.then(|| l.sum_over_rows(su)).transpose()?,
                    ),
                    None => (None, None),
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
                    let (sgw, sgwx) = l.row_sums(&u, x, &self.mean, &self.var)?;
                    Some(l.grad_input(&u, x, &self.mean, &self.var, &one, &sgw, &sgwx)?)
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
fn check_param(op: &str, name: &str, t: Option<&Tensor>, shape: &[usize]) -> Result<()> {
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
fn channel_dims(op: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
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

/// Normalises `x` by `stats` (the batch's when `None`) and applies the affine.
fn normalize(
    layout: Layout,
    x: &Tensor,
    stats: Option<(Tensor, Tensor)>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
) -> Result<Normalized> {
    let gpu = x.gpu();
    let batch_stats = stats.is_none();
    let (mean, var) = match stats {
        Some(s) => s,
        None => layout.batch_stats(x)?,
    };
    let ones = |n| full(gpu, &[n], 1.0);
    let output = match layout.affine {
        Affine::Channels => {
            let c = layout.channels;
            let w = weight.cloned().map_or_else(|| ones(c), Ok)?;
            let b = bias.cloned().map_or_else(|| zeros(gpu, &[c]), Ok)?;
            let coef = layout.coef_forward(&mean, &var, &w, &b)?;
            layout.apply_rows(x, &coef)?
        }
        Affine::AlongRows => {
            let d = layout.row_len;
            let coef = layout.coef_forward(&mean, &var, &ones(1)?, &zeros(gpu, &[1])?)?;
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
    Ok(Normalized {
        output,
        saved: NormSaved {
            layout,
            mean,
            var,
            batch_stats,
        },
    })
}

/// batch_norm's mode and constants, as torch.nn.functional.batch_norm takes them.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormOpts {
    pub training: bool,
    pub momentum: f32,
    pub eps: f32,
}

impl Default for BatchNormOpts {
    fn default() -> Self {
        BatchNormOpts {
            training: false,
            momentum: 0.1,
            eps: 1e-5,
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

/// torch.nn.functional.batch_norm of `x` [N, C, ...]. In training mode it normalises
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
    };
    if !opts.training {
        let (m, v) = running.ok_or_else(|| {
            Error::op(
                op,
                "eval mode (training=false) needs running_mean and running_var",
            )
        })?;
        return normalize(layout, x, Some((snapshot(m)?, snapshot(v)?)), weight, bias);
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
    let out = normalize(layout, x, None, weight, bias)?;
    if let Some((m, v)) = running {
        let saved = &out.saved;
        saved.layout.run(
            x.gpu(),
            "running_update",
            &[
                saved.mean.buffer(),
                saved.var.buffer(),
                m.buffer(),
                v.buffer(),
            ],
            c,
        )?;
    }
    Ok(out)
}

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
    };
    normalize(layout, x, None, weight, bias)
}

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
    };
    normalize(layout, x, None, weight, bias)
}

impl Var {
    /// Records a normalisation of `self` with optional affine parameters.
    fn record_norm(&self, n: Normalized, weight: Option<&Var>, bias: Option<&Var>) -> Var {
        let mut parents = vec![self];
        parents.extend(weight);
        parents.extend(bias);
        let needs = NormNeeds {
            input: self.requires_grad(),
            weight: weight.is_some_and(Var::requires_grad),
            bias: bias.is_some_and(Var::requires_grad),
        };
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        let x = self.value();
        let w = weight.map(Var::value);
        let saved = n.saved;
        Var::from_op(n.output, &parents, move |g| {
            let grads = saved.backward(&x, g, w.as_ref(), needs)?;
            let mut out = vec![grads.input];
            if has_w {
                out.push(grads.weight);
            }
            if has_b {
                out.push(grads.bias);
            }
            Ok(out)
        })
    }

    /// torch.nn.functional.batch_norm. `running_mean`/`running_var` are plain tensors
    /// (a module's buffers): in training mode they are updated IN PLACE, see
    /// [`batch_norm`]. Gradients flow to input, weight and bias in both modes.
    pub fn batch_norm(
        &self,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        weight: Option<&Var>,
        bias: Option<&Var>,
        opts: BatchNormOpts,
    ) -> Result<Var> {
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = batch_norm(
            &self.value(),
            running_mean,
            running_var,
            w.as_ref(),
            b.as_ref(),
            opts,
        )?;
        Ok(self.record_norm(n, weight, bias))
    }

    /// torch.nn.functional.instance_norm with the input's statistics.
    pub fn instance_norm(&self, weight: Option<&Var>, bias: Option<&Var>, eps: f32) -> Result<Var> {
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = instance_norm(&self.value(), w.as_ref(), b.as_ref(), eps)?;
        Ok(self.record_norm(n, weight, bias))
    }

    /// torch.nn.functional.group_norm.
    pub fn group_norm(
        &self,
        num_groups: i64,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> Result<Var> {
        let groups = usize::try_from(num_groups).map_err(|_| {
            Error::op(
                "group_norm",
                format!("num_groups={num_groups} must be positive"),
            )
        })?;
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = group_norm(&self.value(), groups, w.as_ref(), b.as_ref(), eps)?;
        Ok(self.record_norm(n, weight, bias))
    }

    /// torch.nn.functional.layer_norm over the trailing `normalized_shape` dims.
    pub fn layer_norm(
        &self,
        normalized_shape: &[i64],
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> Result<Var> {
        let shape = normalized_shape
            .iter()
            .map(|&d| {
                usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
                    Error::op(
                        "layer_norm",
                        format!("normalized_shape has a non-positive size {d}"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = layer_norm(&self.value(), &shape, w.as_ref(), b.as_ref(), eps)?;
        Ok(self.record_norm(n, weight, bias))
    }
}

const AFFINE_INPUTS: &[InputSpec] = &[
    f32_in("input"),
    optional_in("weight", true),
    optional_in("bias", true),
];

const EPS: AttrSpec = attr("eps", AttrKind::Float, Some("1e-5"));

fn affine(c: &OpCall) -> (Option<&Var>, Option<&Var>) {
    (c.opt_input("weight"), c.opt_input("bias"))
}

pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "batch_norm",
        summary: "normalise each channel by batch statistics (training, updating running_mean/var in place) or running statistics (eval)",
        inputs: &[
            f32_in("input"),
            optional_in("running_mean", false),
            optional_in("running_var", false),
            optional_in("weight", true),
            optional_in("bias", true),
        ],
        attrs: &[
            attr("training", AttrKind::Bool, Some("false")),
            attr("momentum", AttrKind::Float, Some("0.1")),
            EPS,
        ],
        run: |c| {
            let (w, b) = affine(c);
            let (rm, rv) = (
                c.opt_input("running_mean").map(Var::value),
                c.opt_input("running_var").map(Var::value),
            );
            let opts = BatchNormOpts {
                training: c.attrs.bool("training")?,
                momentum: c.attrs.float("momentum")? as f32,
                eps: c.attrs.float("eps")? as f32,
            };
            c.input("input")?
                .batch_norm(rm.as_ref(), rv.as_ref(), w, b, opts)
        },
    },
    OpSpec {
        name: "instance_norm",
        summary: "normalise each (sample, channel) plane by its own statistics",
        inputs: AFFINE_INPUTS,
        attrs: &[EPS],
        run: |c| {
            let (w, b) = affine(c);
            c.input("input")?
                .instance_norm(w, b, c.attrs.float("eps")? as f32)
        },
    },
    OpSpec {
        name: "layer_norm",
        summary: "normalise over the trailing normalized_shape dims, elementwise affine",
        inputs: AFFINE_INPUTS,
        attrs: &[attr("normalized_shape", AttrKind::Ints, None), EPS],
        run: |c| {
            let (w, b) = affine(c);
            c.input("input")?.layer_norm(
                &c.attrs.ints("normalized_shape")?,
                w,
                b,
                c.attrs.float("eps")? as f32,
            )
        },
    },
    OpSpec {
        name: "group_norm",
        summary: "normalise each sample's num_groups channel groups by their statistics",
        inputs: AFFINE_INPUTS,
        attrs: &[attr("num_groups", AttrKind::Int, None), EPS],
        run: |c| {
            let (w, b) = affine(c);
            c.input("input")?.group_norm(
                c.attrs.int("num_groups")?,
                w,
                b,
                c.attrs.float("eps")? as f32,
            )
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    const N: usize = 3;
    const C: usize = 2;
    const S: usize = 4;

    fn input() -> Vec<f32> {
        (0..N * C * S)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3 + (i / S % C) as f32)
            .collect()
    }

    fn channel_values(x: &[f32], c: usize) -> Vec<f64> {
        (0..x.len())
            .filter(|i| i / S % C == c)
            .map(|i| x[i] as f64)
            .collect()
    }

    fn close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= tol, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn training_updates_running_stats_in_place() {
        let gpu = Gpu::shared().unwrap();
        let data = input();
        let x = Tensor::from_slice(&gpu, &data, &[N, C, 2, 2]).unwrap();
        let mut rm = vec![0.5f64, -0.25];
        let mut rv = vec![2.0f64, 0.75];
        let rm_t = Tensor::from_slice(&gpu, &[0.5, -0.25], &[C]).unwrap();
        let rv_t = Tensor::from_slice(&gpu, &[2.0, 0.75], &[C]).unwrap();
        let opts = BatchNormOpts {
            training: true,
            ..Default::default()
        };
        // Twice, so the second update starts from the first one's result.
        for _ in 0..2 {
            let out = batch_norm(&x, Some(&rm_t), Some(&rv_t), None, None, opts).unwrap();
            let mut want_y = vec![0.0; data.len()];
            for c in 0..C {
                let v = channel_values(&data, c);
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n;
                rm[c] = 0.9 * rm[c] + 0.1 * mean;
                rv[c] = 0.9 * rv[c] + 0.1 * var * n / (n - 1.0);
                for (i, y) in want_y.iter_mut().enumerate() {
                    if i / S % C == c {
                        *y = (data[i] as f64 - mean) / (var + 1e-5).sqrt();
                    }
                }
            }
            close(&out.output.to_vec().unwrap(), &want_y, 1e-5);
        }
        close(&rm_t.to_vec().unwrap(), &rm, 1e-6);
        close(&rv_t.to_vec().unwrap(), &rv, 1e-6);
    }

    #[test]
    fn eval_uses_running_stats_and_leaves_them() {
        let gpu = Gpu::shared().unwrap();
        let data = input();
        let (rm, rv, w, b) = (
            [0.5f32, -0.25],
            [2.0f32, 0.75],
            [1.5f32, -0.5],
            [0.1f32, 0.2],
        );
        let x = Var::leaf(Tensor::from_slice(&gpu, &data, &[N, C, 2, 2]).unwrap());
        let rm_t = Tensor::from_slice(&gpu, &rm, &[C]).unwrap();
        let rv_t = Tensor::from_slice(&gpu, &rv, &[C]).unwrap();
        let wv = Var::leaf(Tensor::from_slice(&gpu, &w, &[C]).unwrap());
        let bv = Var::leaf(Tensor::from_slice(&gpu, &b, &[C]).unwrap());
        let y = x
            .batch_norm(
                Some(&rm_t),
                Some(&rv_t),
                Some(&wv),
                Some(&bv),
                Default::default(),
            )
            .unwrap();
        let scale = |c: usize| w[c] as f64 / (rv[c] as f64 + 1e-5).sqrt();
        let want: Vec<f64> = (0..data.len())
            .map(|i| {
                let c = i / S % C;
                (data[i] as f64 - rm[c] as f64) * scale(c) + b[c] as f64
            })
            .collect();
        close(&y.value().to_vec().unwrap(), &want, 1e-5);
        let ones = full(&gpu, &y.shape(), 1.0).unwrap();
        let grads = y.backward_with(ones).unwrap();
        let dx: Vec<f64> = (0..data.len()).map(|i| scale(i / S % C)).collect();
        close(&grads.get(&x).unwrap().to_vec().unwrap(), &dx, 1e-5);
        let db = vec![(N * S) as f64; C];
        close(&grads.get(&bv).unwrap().to_vec().unwrap(), &db, 1e-4);
        close(&rm_t.to_vec().unwrap(), &[0.5, -0.25], 0.0);
        close(&rv_t.to_vec().unwrap(), &[2.0, 0.75], 0.0);
    }

    #[test]
    fn refuses_bad_inputs() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &input(), &[N, C, 2, 2]).unwrap();
        let three = full(&gpu, &[3], 1.0).unwrap();
        let two = full(&gpu, &[C], 1.0).unwrap();
        let err = |r: Result<Normalized>| match r {
            Ok(_) => panic!("accepted a bad call"),
            Err(e) => e.to_string(),
        };
        let train = BatchNormOpts {
            training: true,
            ..Default::default()
        };
        let e = err(batch_norm(&x, None, None, Some(&three), None, train));
        assert!(e.contains("weight must have shape [2], got [3]"), "{e}");
        let e = err(batch_norm(&x, Some(&three), Some(&two), None, None, train));
        assert!(e.contains("running_mean must have shape [2]"), "{e}");
        let e = err(batch_norm(&x, None, None, None, None, Default::default()));
        assert!(e.contains("eval mode"), "{e}");
        let e = err(batch_norm(&x, Some(&two), None, None, None, train));
        assert!(e.contains("given together"), "{e}");
        let single = x.reshape(&[1, N * C * S, 1]).unwrap();
        let e = err(batch_norm(&single, None, None, None, None, train));
        assert!(e.contains("more than 1 value per channel"), "{e}");
        let e = err(group_norm(&x, 3, None, None, 1e-5));
        assert!(e.contains("num_groups=3 must divide the 2 channels"), "{e}");
        let e = err(layer_norm(&x, &[2, 3], None, None, 1e-5));
        assert!(e.contains("normalized_shape [2, 3]"), "{e}");
        let e = err(layer_norm(&x, &[2, 2], Some(&two), None, 1e-5));
        assert!(e.contains("weight must have shape [2, 2]"), "{e}");
        let e = err(instance_norm(
            &x.reshape(&[N, C * S]).unwrap(),
            None,
            None,
            1e-5,
        ));
        assert!(e.contains("more than 1 spatial element"), "{e}");
    }
}
