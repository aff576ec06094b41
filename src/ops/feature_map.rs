//! The [B, D, H, W] feature maps, label maps and prototype tables that the prototype
//! ops (class_prototypes, label_transfer, gather_pixels) and losses (proto_contrast,
//! patch_nce) take, with the shape checks they share.

use crate::error::{Error, Result};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

/// Pixels per chunk of the two-stage reductions over pixels (per-class sums): each
/// invocation of the first stage sums one chunk, so no float atomics are needed.
pub(crate) const PIXEL_CHUNK: usize = 512;

/// The sizes of a [B, D, H, W] f32 feature map.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FeatureMap {
    pub batch: usize,
    pub dim: usize,
    pub h: usize,
    pub w: usize,
    pub hw: usize,
}

impl FeatureMap {
    pub fn pixels(&self) -> usize {
        self.batch * self.hw
    }

    /// Chunks of at most [`PIXEL_CHUNK`] pixels per image, and in all.
    pub fn chunks(&self) -> (usize, usize) {
        let per_image = self.hw.div_ceil(PIXEL_CHUNK);
        (per_image, per_image * self.batch)
    }
}

pub(crate) fn feature_map(op: &str, name: &str, t: &Tensor) -> Result<FeatureMap> {
    expect_f32(op, name, t)?;
    match *t.shape() {
        [batch, dim, h, w] => Ok(FeatureMap {
            batch,
            dim,
            h,
            w,
            hw: h * w,
        }),
        _ => Err(Error::op(
            op,
            format!("{name} must be [B, D, H, W], got {}", shape_str(t.shape())),
        )),
    }
}

/// Checks a u32 label map against the feature map it labels.
pub(crate) fn check_target(op: &str, target: &Tensor, map: &FeatureMap) -> Result<()> {
    let want = [map.batch, map.h, map.w];
    if target.dtype() != DType::U32 || target.shape() != want {
        return Err(Error::op(
            op,
            format!(
                "target must be u32 {} to match the features, got {} {}",
                shape_str(&want),
                target.dtype(),
                shape_str(target.shape())
            ),
        ));
    }
    Ok(())
}

/// Checks f32 prototypes [C, dim] and returns C.
pub(crate) fn check_prototypes(op: &str, protos: &Tensor, dim: usize) -> Result<usize> {
    expect_f32(op, "prototypes", protos)?;
    match *protos.shape() {
        [c, d] if d == dim => Ok(c),
        _ => Err(Error::op(
            op,
            format!(
                "prototypes must be [C, {dim}] to match the feature dim, got {}",
                shape_str(protos.shape())
            ),
        )),
    }
}

/// An `ignore_index` attribute as the u32 label value it stands for.
pub(crate) fn ignore_index(op: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::op(
            op,
            format!("ignore_index must be a label value in 0..2^32, got {v}"),
        )
    })
}

/// `num_classes` attribute: at least one class.
pub(crate) fn num_classes(op: &str, v: i64) -> Result<usize> {
    match usize::try_from(v) {
        Ok(c) if c > 0 => Ok(c),
        _ => Err(Error::op(
            op,
            format!("num_classes must be at least 1, got {v}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::gpu::Gpu;
    use crate::gradcheck::check::{case, uniform};
    use crate::gradcheck::host::HostTensor;
    use crate::gradcheck::{check_case, ops};
    use crate::op_table;

    /// Maps of more than one pixel chunk per image, against the gradcheck references.
    #[test]
    fn several_pixel_chunks_match_the_references() {
        let gpu = Gpu::shared().unwrap();
        let mut r = StdRng::seed_from_u64(3);
        let (b, d, h, w, c) = (2, 3, 23, 29, 4);
        assert!(h * w > super::PIXEL_CHUNK);
        let labels: Vec<f64> = (0..b * h * w)
            .map(|_| {
                if r.random_bool(0.2) {
                    255.0
                } else {
                    r.random_range(0..c) as f64
                }
            })
            .collect();
        let target = HostTensor::new(&[b, h, w], labels);
        let features = uniform(&mut r, &[b, d, h, w]);
        let cases = [
            (
                "proto_contrast",
                case(
                    vec![
                        ("features", features.clone()),
                        ("prototypes", uniform(&mut r, &[c, d])),
                        ("target", target.clone()),
                    ],
                    &[],
                ),
            ),
            (
                "class_prototypes",
                case(
                    vec![("features", features), ("target", target)],
                    &[("num_classes", "4")],
                ),
            ),
        ];
        for (op, cs) in &cases {
            let spec = op_table::find(op).unwrap();
            let check = ops::find(op).unwrap();
            let report = check_case(&gpu, spec, check, cs, &mut r).unwrap();
            assert!(
                report.passed(),
                "{op}: fwd {:e} grads {:?}",
                report.forward,
                report.grads
            );
        }
    }
}
