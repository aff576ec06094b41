//! F.cross_entropy on logits: log-softmax fused with the weighted NLL
//! (shaders/cross_entropy.wgsl).
//!
//! For logits x [N, C] or [B, C, d...] and labels y [N] or [B, d...]:
//!   l_i = weight[y_i] * (logsumexp_c x_ic - x_{i,y_i}),  0 where y_i == ignore_index
//! reduction "none" returns l, "sum" sum_i l_i, "mean" sum_i l_i / sum_{i counted} weight[y_i]
//! (NaN when every label is ignored, as torch). The gradient is
//! coef_i * weight[y_i] * (softmax(x_i) - onehot(y_i)).

use super::{partial_count, ratio_of_sums, sum_all, Reduction};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::fixed_in;
use crate::ops::spec::{attr, f32_in, OpSpec};
use crate::tensor::elementwise::{expect_f32, full};
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "cross_entropy";

/// The forward's result and what its backward needs.
pub struct CrossEntropy {
    /// The loss: a scalar, or the target's shape for reduction "none".
    pub loss: Tensor,
    reduction: Reduction,
    ignore: u32,
    weight: Tensor,
    /// Per-pixel log-sum-exp of the logits.
    lse: Tensor,
    /// The weight total a mean divides by.
    den: Option<Tensor>,
}

/// Layout of a cross-entropy call: (classes, inner, pixels).
fn layout(input: &Tensor, target: &Tensor, weight: Option<&Tensor>) -> Result<(usize, usize)> {
    expect_f32(OP, "input", input)?;
    if input.rank() < 2 {
        return Err(Error::op(
            OP,
            format!(
                "input must be [N, C] or [B, C, d...] logits, got shape {}",
                shape_str(input.shape())
            ),
        ));
    }
    if target.dtype() != DType::U32 {
        return Err(Error::op(
            OP,
            format!("target must be u32 class labels, got {}", target.dtype()),
        ));
    }
    let s = input.shape();
    let want: Vec<usize> = std::iter::once(s[0])
        .chain(s[2..].iter().copied())
        .collect();
    if target.shape() != want.as_slice() {
        return Err(Error::op(
            OP,
            format!(
                "target shape {} must be {} for input {}",
                shape_str(target.shape()),
                shape_str(&want),
                shape_str(s)
            ),
        ));
    }
    if let Some(w) = weight {
        expect_f32(OP, "weight", w)?;
        if w.shape() != [s[1]] {
            return Err(Error::op(
                OP,
                format!(
                    "weight shape {} must be [{}] (one per class)",
                    shape_str(w.shape()),
                    s[1]
                ),
            ));
        }
    }
    Ok((s[1], s[2..].iter().product()))
}

/// A label no pixel can carry when ignore_index is not a u32 (e.g. torch's -100):
/// such labels are out of range anyway.
fn ignore_label(ignore_index: i64) -> u32 {
    u32::try_from(ignore_index).unwrap_or(u32::MAX)
}

/// Errors unless every label is `ignore_index` or a class in [0, classes), as torch
/// refuses other targets. The kernels only skip such labels.
pub fn check_targets(labels: &[u32], classes: usize, ignore_index: i64) -> Result<()> {
    match labels
        .iter()
        .find(|&&y| y as i64 != ignore_index && y as usize >= classes)
    {
        Some(y) => Err(Error::op(
            OP,
            format!(
                "target label {y} is outside [0, {classes}) and is not ignore_index={ignore_index}"
            ),
        )),
        None => Ok(()),
    }
}

fn params(
    classes: usize,
    inner: usize,
    pixels: usize,
    threads: usize,
    ignore: u32,
    mode: u32,
) -> Result<Params> {
    Ok(Params::new(OP)
        .idx("classes", classes)?
        .idx("inner", inner)?
        .idx("pixels", pixels)?
        .idx("threads", threads)?
        .u32("ignore", ignore)
        .u32("mode", mode))
}

/// Cross-entropy of logits `input` against u32 labels `target` without validating
/// the labels (see [`check_targets`]): labels outside [0, C) count as ignored.
pub fn cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: Reduction,
) -> Result<CrossEntropy> {
    let (classes, inner) = layout(input, target, weight)?;
    let gpu = input.gpu();
    let pixels = target.numel();
    let ignore = ignore_label(ignore_index);
    let weight = match weight {
        Some(w) => w.clone(),
        None => full(gpu, &[classes], 1.0)?,
    };
    let lse = Tensor::empty(gpu, &[pixels], DType::F32)?;
    let (loss, den) = if reduction == Reduction::None {
        let loss = Tensor::empty(gpu, target.shape(), DType::F32)?;
        gpu.dispatch(
            &Kernel::new("cross_entropy", "forward_none"),
            &[
                input.buffer(),
                target.buffer(),
                weight.buffer(),
                lse.buffer(),
                loss.buffer(),
            ],
            &params(classes, inner, pixels, 0, ignore, 0)?,
            gpu.grid(pixels as u64, WORKGROUP),
        )?;
        (loss, None)
    } else {
        let threads = partial_count(pixels);
        let loss_part = Tensor::empty(gpu, &[threads], DType::F32)?;
        let weight_part = Tensor::empty(gpu, &[threads], DType::F32)?;
        gpu.dispatch(
            &Kernel::new("cross_entropy", "forward_sums"),
            &[
                input.buffer(),
                target.buffer(),
                weight.buffer(),
                lse.buffer(),
                loss_part.buffer(),
                weight_part.buffer(),
            ],
            &params(classes, inner, pixels, threads, ignore, 0)?,
            gpu.grid(threads as u64, WORKGROUP),
        )?;
        if reduction == Reduction::Mean {
            let (loss, den) = ratio_of_sums(OP, &loss_part, &weight_part)?;
            (loss, Some(den))
        } else {
            (sum_all(OP, &loss_part, 1.0)?, None)
        }
    };
    Ok(CrossEntropy {
        loss,
        reduction,
        ignore,
        weight,
        lse,
        den,
    })
}

/// Gradient with respect to the logits, given the loss's output gradient `g`.
pub fn cross_entropy_backward(
    input: &Tensor,
    target: &Tensor,
    fwd: &CrossEntropy,
    g: &Tensor,
) -> Result<Tensor> {
    let (classes, inner) = layout(input, target, Some(&fwd.weight))?;
    let gpu = input.gpu();
    let pixels = target.numel();
    let mode = match fwd.reduction {
        Reduction::None => 0,
        Reduction::Mean => 1,
        Reduction::Sum => 2,
    };
    let den = fwd.den.as_ref().unwrap_or(g);
    let dx = Tensor::empty(gpu, input.shape(), DType::F32)?;
    gpu.dispatch(
        &Kernel::new("cross_entropy", "backward"),
        &[
            input.buffer(),
            target.buffer(),
            fwd.weight.buffer(),
            fwd.lse.buffer(),
            g.buffer(),
            den.buffer(),
            dx.buffer(),
        ],
        &params(classes, inner, pixels, 0, fwd.ignore, mode)?,
        gpu.grid(pixels as u64, WORKGROUP),
    )?;
    Ok(dx)
}

impl Var {
    /// F.cross_entropy(self, target, weight, ignore_index, reduction) on logits
    /// [N, C] or [B, C, d...] with u32 labels. The labels are read back to the host
    /// and validated first (they normally come from the host data loader, so this
    /// costs a sync, not a transfer that matters); [`cross_entropy`] skips that.
    pub fn cross_entropy(
        &self,
        target: &Var,
        weight: Option<&Var>,
        ignore_index: i64,
        reduction: Reduction,
    ) -> Result<Var> {
        let (x, y) = (self.value(), target.value());
        let w = weight.map(|w| w.value());
        let (classes, _) = layout(&x, &y, w.as_ref())?;
        check_targets(&y.to_vec_u32()?, classes, ignore_index)?;
        self.cross_entropy_checked(target, weight, ignore_index, reduction)
    }

    /// [`Var::cross_entropy`] without the readback, for labels already validated on
    /// the host with [`check_targets`] (a training loop's data loader).
    pub fn cross_entropy_checked(
        &self,
        target: &Var,
        weight: Option<&Var>,
        ignore_index: i64,
        reduction: Reduction,
    ) -> Result<Var> {
        let (x, y) = (self.value(), target.value());
        let w = weight.map(|w| w.value());
        let fwd = cross_entropy(&x, &y, w.as_ref(), ignore_index, reduction)?;
        let loss = fwd.loss.clone();
        Ok(Var::from_op(loss, &[self], move |g| {
            Ok(vec![Some(cross_entropy_backward(&x, &y, &fwd, g)?)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "cross_entropy",
    summary: "log_softmax + weighted NLL over dim 1 with u32 labels, ignore_index, reduction",
    inputs: &[
        f32_in("input"),
        fixed_in("target", DType::U32, false),
        fixed_in("weight", DType::F32, true),
    ],
    attrs: &[
        attr("ignore_index", AttrKind::Int, Some("255")),
        attr("reduction", AttrKind::Str, Some("mean")),
    ],
    run: |c| {
        let r = Reduction::parse(c.op, c.attrs.str("reduction")?)?;
        c.input("input")?.cross_entropy(
            c.input("target")?,
            c.opt_input("weight"),
            c.attrs.int("ignore_index")?,
            r,
        )
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn var_path_refuses_labels_out_of_range() {
        let gpu = Gpu::shared().unwrap();
        let x = Var::leaf(Tensor::from_slice(&gpu, &[0.0; 6], &[2, 3]).unwrap());
        let ok = Var::constant(Tensor::from_u32(&gpu, &[2, 255], &[2]).unwrap());
        assert!(x.cross_entropy(&ok, None, 255, Reduction::Mean).is_ok());
        let bad = Var::constant(Tensor::from_u32(&gpu, &[3, 0], &[2]).unwrap());
        let e = x
            .cross_entropy(&bad, None, 255, Reduction::Mean)
            .unwrap_err();
        assert!(e.to_string().contains("label 3 is outside [0, 3)"), "{e}");
    }

    /// More pixels than partial sums, so invocations loop; uniform logits give ln C.
    #[test]
    fn mean_over_many_pixels() {
        let gpu = Gpu::shared().unwrap();
        let pixels = super::super::PARTIALS + 1001;
        let x = crate::tensor::elementwise::zeros(&gpu, &[1, 3, pixels]).unwrap();
        let labels: Vec<u32> = (0..pixels as u32).map(|i| i % 4).collect();
        let y = Tensor::from_u32(&gpu, &labels, &[1, pixels]).unwrap();
        let w = Tensor::from_slice(&gpu, &[1.0, 2.0, 4.0], &[3]).unwrap();
        let fwd = cross_entropy(&x, &y, Some(&w), 3, Reduction::Mean).unwrap();
        let got = fwd.loss.item().unwrap();
        assert!((got - 3f32.ln()).abs() < 1e-5, "{got}");
        let sum = cross_entropy(&x, &y, Some(&w), 3, Reduction::Sum).unwrap();
        let weight_total: f64 = labels
            .iter()
            .filter(|&&l| l < 3)
            .map(|&l| [1.0, 2.0, 4.0][l as usize])
            .sum();
        let want = weight_total * 3f64.ln();
        let got = sum.loss.item().unwrap() as f64;
        assert!((got - want).abs() / want < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn mean_of_all_ignored_is_nan_as_torch() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[0.5, -0.5], &[1, 2]).unwrap();
        let y = Tensor::from_u32(&gpu, &[255], &[1]).unwrap();
        let fwd = cross_entropy(&x, &y, None, 255, Reduction::Mean).unwrap();
        assert!(fwd.loss.item().unwrap().is_nan());
    }
}
