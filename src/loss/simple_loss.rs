//! Pointwise regression losses (l1_loss, mse_loss, lsgan_loss) and the mean softmax
//! entropy (shaders/simple_loss.wgsl).

use super::{partial_count, sum_all, Reduction};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, f32_in, OpSpec, INPUT};
use crate::tensor::elementwise::{expect_f32, neg};
use crate::tensor::{shape_str, DType, Tensor};

/// The uniform block of shaders/simple_loss.wgsl.
#[derive(Default)]
pub(crate) struct LossParams {
    pub n: usize,
    pub threads: usize,
    pub scale: f32,
    pub per_elem: bool,
    /// A constant target instead of the `t` tensor.
    pub target: Option<f32>,
    pub classes: usize,
    pub inner: usize,
}

impl LossParams {
    pub fn build(&self, op: &str) -> Result<Params> {
        Params::new(op)
            .idx("n", self.n)?
            .idx("threads", self.threads)?
            .f32("scale", self.scale)
            .u32("per_elem", self.per_elem as u32)
            .u32("const_target", self.target.is_some() as u32)
            .f32("target_value", self.target.unwrap_or(0.0))
            .idx("classes", self.classes)?
            .idx("inner", self.inner)
    }
}

/// The elementwise penalty of a pointwise loss, on d = input - target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pointwise {
    /// |d| (l1_loss)
    L1 = 0,
    /// d^2 (mse_loss, lsgan_loss)
    Squared = 1,
}

impl Pointwise {
    fn name(self) -> &'static str {
        match self {
            Pointwise::L1 => "l1_loss",
            Pointwise::Squared => "mse_loss",
        }
    }
}

/// What an input is compared with: a tensor of its shape or one constant.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    Tensor(&'a Tensor),
    Const(f32),
}

fn check_pair(op: &str, input: &Tensor, target: Target) -> Result<()> {
    expect_f32(op, "input", input)?;
    if let Target::Tensor(t) = target {
        expect_f32(op, "target", t)?;
        if t.shape() != input.shape() {
            return Err(Error::op(
                op,
                format!(
                    "target shape {} must equal input shape {}",
                    shape_str(t.shape()),
                    shape_str(input.shape())
                ),
            ));
        }
    }
    Ok(())
}

/// reduction(f(input - target)) with f = |.| or (.)^2, as F.l1_loss / F.mse_loss:
/// "none" keeps input's shape, "mean" and "sum" give a scalar.
pub fn pointwise_loss(
    kind: Pointwise,
    input: &Tensor,
    target: Target,
    reduction: Reduction,
) -> Result<Tensor> {
    let op = kind.name();
    check_pair(op, input, target)?;
    let gpu = input.gpu();
    let n = input.numel();
    let t = match target {
        Target::Tensor(t) => t,
        Target::Const(_) => input,
    };
    let consts = [("OP", kind as u32 as f64)];
    let mut lp = LossParams {
        n,
        target: match target {
            Target::Tensor(_) => None,
            Target::Const(v) => Some(v),
        },
        ..Default::default()
    };
    if reduction == Reduction::None {
        let out = Tensor::empty(gpu, input.shape(), DType::F32)?;
        gpu.dispatch(
            &Kernel::new("simple_loss", "pointwise_none").with(&consts),
            &[input.buffer(), t.buffer(), out.buffer()],
            &lp.build(op)?,
            gpu.grid(n as u64, WORKGROUP),
        )?;
        return Ok(out);
    }
    lp.threads = partial_count(n);
    let partials = Tensor::empty(gpu, &[lp.threads], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("simple_loss", "pointwise_sums").with(&consts),
        &[input.buffer(), t.buffer(), partials.buffer()],
        &lp.build(op)?,
        gpu.grid(lp.threads as u64, WORKGROUP),
    )?;
    let factor = if reduction == Reduction::Mean {
        1.0 / n as f32
    } else {
        1.0
    };
    sum_all(op, &partials, factor)
}

/// Gradient of [`pointwise_loss`] with respect to `input` (the target's is its
/// negation), given the output gradient `g`.
pub fn pointwise_loss_backward(
    kind: Pointwise,
    input: &Tensor,
    target: Target,
    reduction: Reduction,
    g: &Tensor,
) -> Result<Tensor> {
    let op = kind.name();
    let gpu = input.gpu();
    let n = input.numel();
    let t = match target {
        Target::Tensor(t) => t,
        Target::Const(_) => input,
    };
    let lp = LossParams {
        n,
        scale: if reduction == Reduction::Mean {
            1.0 / n as f32
        } else {
            1.0
        },
        per_elem: reduction == Reduction::None,
        target: match target {
            Target::Tensor(_) => None,
            Target::Const(v) => Some(v),
        },
        ..Default::default()
    };
    let dx = Tensor::empty(gpu, input.shape(), DType::F32)?;
    let consts = [("OP", kind as u32 as f64)];
    gpu.dispatch(
        &Kernel::new("simple_loss", "pointwise_backward").with(&consts),
        &[input.buffer(), t.buffer(), g.buffer(), dx.buffer()],
        &lp.build(op)?,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(dx)
}

/// mean((input - t)^2) with t = 1 for `target_is_real`, else 0: the least-squares GAN
/// loss. The discriminator's loss is 0.5 * (lsgan_loss(D(real), true) +
/// lsgan_loss(D(fake), false)); the generator's is lsgan_loss(D(fake), true).
pub fn lsgan_loss(input: &Tensor, target_is_real: bool) -> Result<Tensor> {
    pointwise_loss(
        Pointwise::Squared,
        input,
        Target::Const(lsgan_target(target_is_real)),
        Reduction::Mean,
    )
}

fn lsgan_target(real: bool) -> f32 {
    if real {
        1.0
    } else {
        0.0
    }
}

/// The [outer, classes, inner] view of a logits tensor [B, C, ...] or [N, C]:
/// (classes, inner, positions).
fn class_view(op: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
    expect_f32(op, "input", x)?;
    if x.rank() < 2 {
        return Err(Error::op(
            op,
            format!(
                "input must be [N, C] or [B, C, ...] logits, got shape {}",
                shape_str(x.shape())
            ),
        ));
    }
    let classes = x.shape()[1];
    let inner: usize = x.shape()[2..].iter().product();
    Ok((classes, inner, x.numel() / classes))
}

/// Mean over positions of the softmax entropy along dim 1:
/// mean_i ( -sum_c p_ic log p_ic ), p_i = softmax(x_i).
pub fn entropy(input: &Tensor) -> Result<Tensor> {
    let (classes, inner, positions) = class_view("entropy", input)?;
    let gpu = input.gpu();
    let threads = partial_count(positions);
    let partials = Tensor::empty(gpu, &[threads], DType::F32)?;
    let p = LossParams {
        n: positions,
        threads,
        classes,
        inner,
        ..Default::default()
    };
    gpu.dispatch(
        &Kernel::new("simple_loss", "entropy_sums"),
        &[input.buffer(), partials.buffer()],
        &p.build("entropy")?,
        gpu.grid(threads as u64, WORKGROUP),
    )?;
    sum_all("entropy", &partials, 1.0 / positions as f32)
}

/// Gradient of [`entropy`]: -p_c (log p_c + H) * g / positions.
pub fn entropy_backward(input: &Tensor, g: &Tensor) -> Result<Tensor> {
    let (classes, inner, positions) = class_view("entropy", input)?;
    let gpu = input.gpu();
    let dx = Tensor::empty(gpu, input.shape(), DType::F32)?;
    let p = LossParams {
        n: positions,
        scale: 1.0 / positions as f32,
        classes,
        inner,
        ..Default::default()
    };
    gpu.dispatch(
        &Kernel::new("simple_loss", "entropy_backward"),
        &[input.buffer(), g.buffer(), dx.buffer()],
        &p.build("entropy")?,
        gpu.grid(positions as u64, WORKGROUP),
    )?;
    Ok(dx)
}

impl Var {
    fn pointwise_loss(&self, target: &Var, kind: Pointwise, reduction: Reduction) -> Result<Var> {
        let (x, t) = (self.value(), target.value());
        let out = pointwise_loss(kind, &x, Target::Tensor(&t), reduction)?;
        let target_grad = target.requires_grad();
        Ok(Var::from_op(out, &[self, target], move |g| {
            let dx = pointwise_loss_backward(kind, &x, Target::Tensor(&t), reduction, g)?;
            let dt = if target_grad { Some(neg(&dx)?) } else { None };
            Ok(vec![Some(dx), dt])
        }))
    }

    /// F.l1_loss(input, target, reduction): reduction(|input - target|).
    pub fn l1_loss(&self, target: &Var, reduction: Reduction) -> Result<Var> {
        self.pointwise_loss(target, Pointwise::L1, reduction)
    }

    /// F.mse_loss(input, target, reduction): reduction((input - target)^2).
    pub fn mse_loss(&self, target: &Var, reduction: Reduction) -> Result<Var> {
        self.pointwise_loss(target, Pointwise::Squared, reduction)
    }

    /// The least-squares GAN loss, see [`lsgan_loss`].
    pub fn lsgan_loss(&self, target_is_real: bool) -> Result<Var> {
        let x = self.value();
        let out = lsgan_loss(&x, target_is_real)?;
        let target = Target::Const(lsgan_target(target_is_real));
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(pointwise_loss_backward(
                Pointwise::Squared,
                &x,
                target,
                Reduction::Mean,
                g,
            )?)])
        }))
    }

    /// Mean softmax entropy of logits along dim 1, see [`entropy`].
    pub fn entropy(&self) -> Result<Var> {
        let x = self.value();
        let out = entropy(&x)?;
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(entropy_backward(&x, g)?)])
        }))
    }
}

const REDUCTION: crate::ops::attrs::AttrSpec = attr("reduction", AttrKind::Str, Some("mean"));

pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "l1_loss",
        summary: "reduction(|input - target|), reduction none|mean|sum",
        inputs: &[f32_in("input"), f32_in("target")],
        attrs: &[REDUCTION],
        run: |c| {
            let r = Reduction::parse(c.op, c.attrs.str("reduction")?)?;
            c.input("input")?.l1_loss(c.input("target")?, r)
        },
    },
    OpSpec {
        name: "mse_loss",
        summary: "reduction((input - target)^2), reduction none|mean|sum",
        inputs: &[f32_in("input"), f32_in("target")],
        attrs: &[REDUCTION],
        run: |c| {
            let r = Reduction::parse(c.op, c.attrs.str("reduction")?)?;
            c.input("input")?.mse_loss(c.input("target")?, r)
        },
    },
    OpSpec {
        name: "lsgan_loss",
        summary: "mean((input - t)^2), t = 1 if target_is_real else 0",
        inputs: INPUT,
        attrs: &[attr("target_is_real", AttrKind::Bool, None)],
        run: |c| {
            c.input("input")?
                .lsgan_loss(c.attrs.bool("target_is_real")?)
        },
    },
    OpSpec {
        name: "entropy",
        summary: "mean over positions of -sum_c p log p, p = softmax(input, dim=1)",
        inputs: INPUT,
        attrs: &[],
        run: |c| c.input("input")?.entropy(),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    /// More elements than partial sums, so invocations loop.
    #[test]
    fn sums_beyond_the_partials() {
        let gpu = Gpu::shared().unwrap();
        let n = crate::loss::PARTIALS * 2 + 37;
        let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25).collect();
        let xt = Tensor::from_slice(&gpu, &x, &[n]).unwrap();
        let want: f64 = x.iter().map(|&v| (v as f64 - 1.0).powi(2)).sum::<f64>() / n as f64;
        let got = lsgan_loss(&xt, true).unwrap().item().unwrap() as f64;
        assert!((got - want).abs() / want < 1e-5, "{got} vs {want}");
        let zeros = crate::tensor::elementwise::zeros(&gpu, &[n]).unwrap();
        let l1 = pointwise_loss(Pointwise::L1, &xt, Target::Tensor(&zeros), Reduction::Sum)
            .unwrap()
            .item()
            .unwrap() as f64;
        let want: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((l1 - want).abs() / want < 1e-5, "{l1} vs {want}");
    }

    #[test]
    fn entropy_of_uniform_logits_is_log_classes() {
        let gpu = Gpu::shared().unwrap();
        let x = crate::tensor::elementwise::full(&gpu, &[2, 5, 3, 3], 0.7).unwrap();
        let h = entropy(&x).unwrap().item().unwrap();
        assert!((h - 5f32.ln()).abs() < 1e-6, "{h}");
    }

    #[test]
    fn refuses_mismatched_target() {
        let gpu = Gpu::shared().unwrap();
        let x = Var::leaf(crate::tensor::elementwise::zeros(&gpu, &[2, 3]).unwrap());
        let t = Var::constant(crate::tensor::elementwise::zeros(&gpu, &[3, 2]).unwrap());
        let e = x.mse_loss(&t, Reduction::Mean).unwrap_err();
        assert!(e.to_string().contains("target shape [3, 2]"), "{e}");
        let e = Reduction::parse("l1_loss", "avg").unwrap_err();
        assert!(e.to_string().contains("reduction must be"), "{e}");
    }
}
