//! Pixel-prototype contrast (shaders/proto_contrast.wgsl), the loss used in both
//! directions of bi-directional domain adaptation (target pixels against source
//! prototypes and source pixels against target prototypes):
//!
//! ```text
//! cos(x, p) = x / max(||x||, 1e-12) . p / max(||p||, 1e-12)     (as F.normalize)
//! loss      = mean over pixels n with y_n != ignore_index of
//!             -log softmax_c(scale * cos(x_n, p_c))[y_n]
//! ```
//!
//! over the C prototypes, for features [B, D, H, W], prototypes [C, D] and labels
//! [B, H, W]. Forward and backward are fused per pixel; only the prototype gradient
//! needs the [C, B*H*W] matrix of per-pixel logit gradients, which the backward
//! writes once and reduces in pixel chunks.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Gpu, Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::feature_map::{
    check_prototypes, check_target, feature_map, ignore_index, FeatureMap, PIXEL_CHUNK,
};
use crate::ops::spec::{attr, f32_in, InputSpec, OpSpec};
use crate::tensor::{shape_str, DType, Tensor};

const SHADER: &str = "proto_contrast";

/// What the backward of [`proto_contrast`] needs from its forward.
#[derive(Debug)]
pub struct ProtoContrastSaved {
    features: Tensor,
    target: Tensor,
    phat: Tensor,
    pnorm: Tensor,
    lse: Tensor,
    map: FeatureMap,
    classes: usize,
    scale: f32,
    ignore_index: u32,
    labelled: u32,
}

impl ProtoContrastSaved {
    /// Pixels that entered the mean.
    pub fn labelled_pixels(&self) -> u32 {
        self.labelled
    }
}

fn params(
    op: &str,
    map: &FeatureMap,
    classes: usize,
    ignore_index: u32,
    scale: f32,
    inv_count: f32,
) -> Result<Params> {
    let (per_image, chunks) = map.chunks();
    Ok(Params::new(op)
        .idx("dim", map.dim)?
        .idx("hw", map.hw)?
        .idx("classes", classes)?
        .idx("pixels", map.pixels())?
        .u32("ignore", ignore_index)
        .idx("chunk", PIXEL_CHUNK)?
        .idx("chunks_per_image", per_image)?
        .idx("partials", chunks)?
        .f32("scale", scale)
        .f32("inv_count", inv_count))
}

/// Unit-norm prototypes p / max(||p||, 1e-12) [C, D] and the raw norms [C].
fn normalize_prototypes(prototypes: &Tensor) -> Result<(Tensor, Tensor)> {
    let op = "normalize_prototypes";
    let (classes, dim) = match *prototypes.shape() {
        [c, d] => (c, d),
        _ => {
            return Err(Error::op(
                op,
                format!(
                    "prototypes must be [C, D], got {}",
                    shape_str(prototypes.shape())
                ),
            ))
        }
    };
    let gpu = prototypes.gpu();
    let phat = Tensor::empty(gpu, &[classes, dim], DType::F32)?;
    let pnorm = Tensor::empty(gpu, &[classes], DType::F32)?;
    let map = FeatureMap {
        batch: 1,
        dim,
        h: 1,
        w: 1,
        hw: 1,
    };
    let p = params(op, &map, classes, 0, 0.0, 0.0)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "proto_normalize"),
        &[prototypes.buffer(), phat.buffer(), pnorm.buffer()],
        &p,
        gpu.grid(classes as u64, WORKGROUP),
    )?;
    Ok((phat, pnorm))
}

/// The loss (a scalar tensor) and what its backward needs. Reads back two counts to
/// refuse a batch in which every pixel is ignored, or labels that are neither a class
/// nor `ignore_index` (one small readback per call).
pub fn proto_contrast(
    features: &Tensor,
    prototypes: &Tensor,
    target: &Tensor,
    scale: f32,
    ignore_index: u32,
) -> Result<(Tensor, ProtoContrastSaved)> {
    let op = "proto_contrast";
    let map = feature_map(op, "features", features)?;
    let classes = check_prototypes(op, prototypes, map.dim)?;
    check_target(op, target, &map)?;
    let gpu = features.gpu();
    let (phat, pnorm) = normalize_prototypes(prototypes)?;
    let n = map.pixels();
    let lse = Tensor::empty(gpu, &[n], DType::F32)?;
    let loss_px = Tensor::empty(gpu, &[n], DType::F32)?;
    let p = params(op, &map, classes, ignore_index, scale, 0.0)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "pixel_forward"),
        &[
            features.buffer(),
            phat.buffer(),
            target.buffer(),
            lse.buffer(),
            loss_px.buffer(),
        ],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    let loss = Tensor::empty(gpu, &[], DType::F32)?;
    let counts = Tensor::empty(gpu, &[2], DType::U32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "reduce_loss"),
        &[
            target.buffer(),
            loss_px.buffer(),
            loss.buffer(),
            counts.buffer(),
        ],
        &p,
        [1, 1, 1],
    )?;
    let counts = counts.to_vec_u32()?;
    if counts[1] > 0 {
        return Err(Error::op(
            op,
            format!(
                "target has {} pixels whose label is neither a class in 0..{classes} nor ignore_index {ignore_index}",
                counts[1]
            ),
        ));
    }
    if counts[0] == 0 {
        return Err(Error::op(
            op,
            format!("every pixel of target is ignore_index {ignore_index}; the mean is undefined"),
        ));
    }
    let saved = ProtoContrastSaved {
        features: features.clone(),
        target: target.clone(),
        phat,
        pnorm,
        lse,
        map,
        classes,
        scale,
        ignore_index,
        labelled: counts[0],
    };
    Ok((loss, saved))
}

/// Gradients of the loss for the scalar output gradient `grad`: to the features,
/// and to the prototypes when `prototypes_grad`.
pub fn proto_contrast_backward(
    saved: &ProtoContrastSaved,
    grad: &Tensor,
    prototypes_grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let op = "proto_contrast_backward";
    if grad.numel() != 1 || grad.dtype() != DType::F32 {
        return Err(Error::op(
            op,
            format!(
                "grad must be one f32 value, got {} {}",
                grad.dtype(),
                shape_str(grad.shape())
            ),
        ));
    }
    let s = saved;
    let gpu: &Gpu = s.features.gpu();
    let n = s.map.pixels();
    let inv_count = 1.0 / s.labelled as f32;
    let p = params(op, &s.map, s.classes, s.ignore_index, s.scale, inv_count)?;
    let gx = Tensor::empty(gpu, s.features.shape(), DType::F32)?;
    let wbuf = Tensor::empty(gpu, &[s.classes, n], DType::F32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "pixel_backward"),
        &[
            s.features.buffer(),
            s.phat.buffer(),
            s.target.buffer(),
            s.lse.buffer(),
            grad.buffer(),
            gx.buffer(),
            wbuf.buffer(),
        ],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    if !prototypes_grad {
        return Ok((gx, None));
    }
    let (_, chunks) = s.map.chunks();
    let cd = s.classes * s.map.dim;
    let partial = Tensor::empty(gpu, &[chunks, cd], DType::F32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "proto_partial"),
        &[s.features.buffer(), wbuf.buffer(), partial.buffer()],
        &p,
        gpu.grid((chunks * cd) as u64, WORKGROUP),
    )?;
    let gp = Tensor::empty(gpu, &[s.classes, s.map.dim], DType::F32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "proto_sum"),
        &[partial.buffer(), gp.buffer()],
        &p,
        gpu.grid(cd as u64, WORKGROUP),
    )?;
    gpu.dispatch(
        &Kernel::new(SHADER, "proto_project"),
        &[s.phat.buffer(), s.pnorm.buffer(), gp.buffer()],
        &p,
        gpu.grid(s.classes as u64, WORKGROUP),
    )?;
    Ok((gx, Some(gp)))
}

impl Var {
    /// Pixel-prototype cross-entropy of these [B, D, H, W] features against
    /// `prototypes` [C, D] for u32 labels `target` [B, H, W]; see the module docs.
    pub fn proto_contrast(
        &self,
        prototypes: &Var,
        target: &Tensor,
        scale: f32,
        ignore_index: u32,
    ) -> Result<Var> {
        let (loss, saved) = proto_contrast(
            &self.value(),
            &prototypes.value(),
            target,
            scale,
            ignore_index,
        )?;
        let want_protos = prototypes.requires_grad();
        Ok(Var::from_op(loss, &[self, prototypes], move |g| {
            let (gx, gp) = proto_contrast_backward(&saved, g, want_protos)?;
            Ok(vec![Some(gx), gp])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "proto_contrast",
    summary:
        "mean cross-entropy of softmax(scale * cos(pixel, prototype)) against the pixel labels",
    inputs: &[
        f32_in("features"),
        f32_in("prototypes"),
        InputSpec {
            name: "target",
            dtype: DType::U32,
            differentiable: false,
            variadic: false,
            optional: false,
        },
    ],
    attrs: &[
        attr("scale", AttrKind::Float, Some("10")),
        attr("ignore_index", AttrKind::Int, Some("255")),
    ],
    run: |c| {
        let ignore = ignore_index(c.op, c.attrs.int("ignore_index")?)?;
        c.input("features")?.proto_contrast(
            c.input("prototypes")?,
            &c.input("target")?.value(),
            c.attrs.float("scale")? as f32,
            ignore,
        )
    },
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_all_ignored_and_stray_labels() {
        let gpu = Gpu::shared().unwrap();
        let f = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[1, 2, 1, 2]).unwrap();
        let p = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
        let all_ignored = Tensor::from_u32(&gpu, &[255, 255], &[1, 1, 2]).unwrap();
        let e = proto_contrast(&f, &p, &all_ignored, 10.0, 255).unwrap_err();
        assert!(e.to_string().contains("every pixel"), "{e}");
        let stray = Tensor::from_u32(&gpu, &[0, 7], &[1, 1, 2]).unwrap();
        let e = proto_contrast(&f, &p, &stray, 10.0, 255).unwrap_err();
        assert!(e.to_string().contains("neither a class"), "{e}");
    }

    #[test]
    fn matching_prototypes_give_low_loss() {
        let gpu = Gpu::shared().unwrap();
        // Pixel 0 points along prototype 0, pixel 1 along prototype 1.
        let f = Tensor::from_slice(&gpu, &[2.0, 0.0, 0.0, 3.0], &[1, 2, 1, 2]).unwrap();
        let p = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
        let t = Tensor::from_u32(&gpu, &[0, 1], &[1, 1, 2]).unwrap();
        let (loss, saved) = proto_contrast(&f, &p, &t, 10.0, 255).unwrap();
        let want = (1.0 + (-10.0f64).exp()).ln();
        assert!((loss.item().unwrap() as f64 - want).abs() < 1e-6);
        assert_eq!(saved.labelled_pixels(), 2);
    }
}
