//! Class prototypes (shaders/class_prototypes.wgsl): per-class masked means of a feature
//! map, an EMA prototype bank, and the class-wise domain-bias calibration of
//! bi-directional pixel-prototype contrast.
//!
//! `class_prototypes(features [B, D, H, W], target [B, H, W])`:
//! `proto_c = sum_{n: y_n = c} x_n / count_c` (zeros for a class without pixels), with
//! pixels labelled `ignore_index` or `>= num_classes` left out. The counts are exact
//! up to 2^24 pixels per class.

use super::feature_map::{
    check_target, feature_map, ignore_index, num_classes, FeatureMap, PIXEL_CHUNK,
};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Gpu, Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, f32_in, InputSpec, OpSpec};
use crate::tensor::{shape_str, DType, Tensor};

/// The uniform block of shaders/include/prototypes.wgsl, shared by the
/// class_prototypes, prototype_bank and label_transfer kernels.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Launch {
    pub dim: usize,
    pub hw: usize,
    pub classes: usize,
    pub pixels: usize,
    pub ignore: u32,
    pub per_image: usize,
    pub chunks: usize,
    pub momentum: f32,
    pub scale: f32,
}

impl Launch {
    pub fn of_map(map: &FeatureMap, classes: usize, ignore: u32) -> Self {
        let (per_image, chunks) = map.chunks();
        Launch {
            dim: map.dim,
            hw: map.hw,
            classes,
            pixels: map.pixels(),
            ignore,
            per_image,
            chunks,
            ..Default::default()
        }
    }

    /// For the [C, D] bank kernels.
    pub fn of_bank(classes: usize, dim: usize, momentum: f32) -> Self {
        Launch {
            dim,
            classes,
            momentum,
            ..Default::default()
        }
    }

    pub fn params(&self, op: &str) -> Result<Params> {
        Ok(Params::new(op)
            .idx("dim", self.dim)?
            .idx("hw", self.hw)?
            .idx("classes", self.classes)?
            .idx("pixels", self.pixels)?
            .u32("ignore", self.ignore)
            .idx("chunk", PIXEL_CHUNK)?
            .idx("chunks_per_image", self.per_image)?
            .idx("partials", self.chunks)?
            .f32("momentum", self.momentum)
            .f32("scale", self.scale))
    }

    /// Dispatches `kernel` over `items` invocations.
    pub fn run(
        &self,
        gpu: &Gpu,
        kernel: Kernel<'static>,
        bufs: &[&wgpu::Buffer],
        items: usize,
    ) -> Result<()> {
        gpu.dispatch(
            &kernel,
            bufs,
            &self.params(kernel.entry)?,
            gpu.grid(items as u64, WORKGROUP),
        )
    }
}

/// Per-class mean features [C, D] and per-class pixel counts (u32 [C]).
pub fn class_prototypes(
    features: &Tensor,
    target: &Tensor,
    num_classes: usize,
    ignore_index: u32,
) -> Result<(Tensor, Tensor)> {
    let op = "class_prototypes";
    let map = feature_map(op, "features", features)?;
    check_target(op, target, &map)?;
    if num_classes == 0 {
        return Err(Error::op(op, "num_classes must be at least 1"));
    }
    let l = Launch::of_map(&map, num_classes, ignore_index);
    let gpu = features.gpu();
    let cols = map.dim + 1;
    let partial = Tensor::empty(gpu, &[l.chunks, num_classes, cols], DType::F32)?;
    l.run(
        gpu,
        Kernel::new("class_prototypes", "class_partial"),
        &[features.buffer(), target.buffer(), partial.buffer()],
        partial.numel(),
    )?;
    let protos = Tensor::empty(gpu, &[num_classes, map.dim], DType::F32)?;
    let counts = Tensor::empty(gpu, &[num_classes], DType::U32)?;
    l.run(
        gpu,
        Kernel::new("class_prototypes", "class_finish"),
        &[partial.buffer(), protos.buffer(), counts.buffer()],
        num_classes * cols,
    )?;
    Ok((protos, counts))
}

/// Gradient to the features of [`class_prototypes`] for `grad` [C, D]: each labelled
/// pixel gets its class's row divided by the class count.
pub fn class_prototypes_backward(
    grad: &Tensor,
    target: &Tensor,
    counts: &Tensor,
    features_shape: &[usize],
    ignore_index: u32,
) -> Result<Tensor> {
    let op = "class_prototypes_backward";
    let gx = Tensor::empty(grad.gpu(), features_shape, DType::F32)?;
    let map = feature_map(op, "features", &gx)?;
    check_target(op, target, &map)?;
    let classes = counts.numel();
    if grad.shape() != [classes, map.dim] {
        return Err(Error::op(
            op,
            format!(
                "grad must be [{classes}, {}], got {}",
                map.dim,
                shape_str(grad.shape())
            ),
        ));
    }
    let l = Launch::of_map(&map, classes, ignore_index);
    l.run(
        grad.gpu(),
        Kernel::new("class_prototypes", "class_backward"),
        &[target.buffer(), counts.buffer(), grad.buffer(), gx.buffer()],
        map.pixels(),
    )?;
    Ok(gx)
}

impl Var {
    /// Per-class mean of these [B, D, H, W] features over the pixels of each class of
    /// `target` [B, H, W]: the prototypes [C, D] (differentiable) and the counts.
    pub fn class_prototypes(
        &self,
        target: &Tensor,
        num_classes: usize,
        ignore_index: u32,
    ) -> Result<(Var, Tensor)> {
        let x = self.value();
        let (protos, counts) = class_prototypes(&x, target, num_classes, ignore_index)?;
        let (target, saved_counts, shape) = (target.clone(), counts.clone(), x.shape().to_vec());
        let out = Var::from_op(protos, &[self], move |g| {
            Ok(vec![Some(class_prototypes_backward(
                g,
                &target,
                &saved_counts,
                &shape,
                ignore_index,
            )?)])
        });
        Ok((out, counts))
    }
}

const TARGET: InputSpec = InputSpec {
    name: "target",
    dtype: DType::U32,
    differentiable: false,
    variadic: false,
    optional: false,
};

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "class_prototypes",
    summary: "per-class mean feature over the pixels of each class (zeros for absent classes)",
    inputs: &[f32_in("features"), TARGET],
    attrs: &[
        attr("num_classes", AttrKind::Int, None),
        attr("ignore_index", AttrKind::Int, Some("255")),
    ],
    run: |c| {
        let classes = num_classes(c.op, c.attrs.int("num_classes")?)?;
        let ignore = ignore_index(c.op, c.attrs.int("ignore_index")?)?;
        let (protos, _) =
            c.input("features")?
                .class_prototypes(&c.input("target")?.value(), classes, ignore)?;
        Ok(protos)
    },
}];

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn class_means_and_counts() {
        let gpu = Gpu::shared().unwrap();
        // One image, D = 2, three pixels: classes 1, ignore, 1; class 0 and 2 absent.
        let f = Tensor::from_slice(&gpu, &[1.0, 5.0, 3.0, 2.0, 7.0, 4.0], &[1, 2, 1, 3]).unwrap();
        let t = Tensor::from_u32(&gpu, &[1, 255, 1], &[1, 1, 3]).unwrap();
        let (p, n) = class_prototypes(&f, &t, 3, 255).unwrap();
        assert!(close(&p.to_vec().unwrap(), &[0.0, 0.0, 2.0, 3.0, 0.0, 0.0]));
        assert_eq!(n.to_vec_u32().unwrap(), vec![0, 2, 0]);
    }
}
