//! Patch sampling for PatchNCE (shaders/gather_pixels.wgsl): seeded patch locations on the
//! host and `gather_pixels`, which takes the feature vectors at those locations.
//!
//! `gather_pixels(input [B, D, H, W], indices u32 [B, P])` ->
//! `out [B * P, D]`, `out[b * P + q, d] = input[b, d, indices[b, q] / W, indices[b, q] % W]`.
//! Indices outside 0..H*W cannot be checked without a readback; they read as 0 and get
//! no gradient. Repeated indices are allowed: their gradients add up.

use super::feature_map::feature_map;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::spec::{f32_in, InputSpec, OpSpec};
use crate::tensor::{shape_str, DType, Tensor};

const SHADER: &str = "gather_pixels";

/// splitmix64: a fixed generator, so a seed gives the same patches whatever the
/// version of the rand crate.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// min(p, h * w) distinct flat positions `y * w + x` of an h x w map, drawn from `seed`
/// by a partial Fisher-Yates shuffle (CUT takes the first `num_patches` of a random
/// permutation and all positions when the map is smaller). CUT shares one draw across
/// the images of a batch: repeat it per image for indices [B, P].
pub fn sample_patch_indices(seed: u64, h: usize, w: usize, p: usize) -> Result<Vec<u32>> {
    let op = "sample_patch_indices";
    let hw = h * w;
    if hw == 0 || p == 0 {
        return Err(Error::op(
            op,
            format!("needs a non-empty map and at least one patch, got {h}x{w} and {p}"),
        ));
    }
    let n = u32::try_from(hw)
        .map_err(|_| Error::op(op, format!("map of {hw} positions exceeds u32 indices")))?;
    let mut positions: Vec<u32> = (0..n).collect();
    let mut state = seed;
    let take = p.min(hw);
    for i in 0..take {
        let range = (hw - i) as u128;
        let j = i + ((splitmix64(&mut state) as u128 * range) >> 64) as usize;
        positions.swap(i, j);
    }
    positions.truncate(take);
    Ok(positions)
}

fn params(op: &str, batch: usize, dim: usize, hw: usize, points: usize) -> Result<Params> {
    Params::new(op)
        .idx("batch", batch)?
        .idx("dim", dim)?
        .idx("hw", hw)?
        .idx("points", points)
}

fn check_indices(op: &str, indices: &Tensor, batch: usize) -> Result<usize> {
    match *indices.shape() {
        [b, p] if b == batch && indices.dtype() == DType::U32 => Ok(p),
        _ => Err(Error::op(
            op,
            format!(
                "indices must be u32 [{batch}, P], got {} {}",
                indices.dtype(),
                shape_str(indices.shape())
            ),
        )),
    }
}

/// Feature vectors at `indices` [B, P] of `input` [B, D, H, W], as rows [B * P, D].
pub fn gather_pixels(input: &Tensor, indices: &Tensor) -> Result<Tensor> {
    let op = "gather_pixels";
    let map = feature_map(op, "input", input)?;
    let points = check_indices(op, indices, map.batch)?;
    let gpu = input.gpu();
    let out = Tensor::empty(gpu, &[map.batch * points, map.dim], DType::F32)?;
    gpu.dispatch(
        &Kernel::new(SHADER, "gather"),
        &[input.buffer(), indices.buffer(), out.buffer()],
        &params(op, map.batch, map.dim, map.hw, points)?,
        gpu.grid(out.numel() as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// Gradient of [`gather_pixels`] to its input of `input_shape` for `grad` [B * P, D].
pub fn gather_pixels_backward(
    grad: &Tensor,
    indices: &Tensor,
    input_shape: &[usize],
) -> Result<Tensor> {
    let op = "gather_pixels_backward";
    let gpu = grad.gpu();
    let gin = Tensor::empty(gpu, input_shape, DType::F32)?;
    let map = feature_map(op, "input", &gin)?;
    let points = check_indices(op, indices, map.batch)?;
    if grad.shape() != [map.batch * points, map.dim] {
        return Err(Error::op(
            op,
            format!(
                "grad must be [{}, {}], got {}",
                map.batch * points,
                map.dim,
                shape_str(grad.shape())
            ),
        ));
    }
    gpu.dispatch(
        &Kernel::new(SHADER, "gather_backward"),
        &[indices.buffer(), grad.buffer(), gin.buffer()],
        &params(op, map.batch, map.dim, map.hw, points)?,
        gpu.grid(map.pixels() as u64, WORKGROUP),
    )?;
    Ok(gin)
}

impl Var {
    /// The feature vectors of this [B, D, H, W] map at `indices` u32 [B, P] (flat
    /// positions), as rows [B * P, D].
    pub fn gather_pixels(&self, indices: &Tensor) -> Result<Var> {
        let x = self.value();
        let out = gather_pixels(&x, indices)?;
        let (indices, shape) = (indices.clone(), x.shape().to_vec());
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(gather_pixels_backward(g, &indices, &shape)?)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "gather_pixels",
    summary:
        "feature vectors of a [B, D, H, W] map at flat positions indices [B, P], as [B*P, D] rows",
    inputs: &[
        f32_in("input"),
        InputSpec {
            name: "indices",
            dtype: DType::U32,
            differentiable: false,
            variadic: false,
            optional: false,
        },
    ],
    attrs: &[],
    run: |c| {
        c.input("input")?
            .gather_pixels(&c.input("indices")?.value())
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn sampler_is_seeded_unique_and_bounded() {
        let a = sample_patch_indices(7, 5, 7, 20).unwrap();
        assert_eq!(a, sample_patch_indices(7, 5, 7, 20).unwrap());
        assert_ne!(a, sample_patch_indices(8, 5, 7, 20).unwrap());
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 20);
        assert!(a.iter().all(|&i| i < 35));
        let mut all = sample_patch_indices(1, 2, 3, 100).unwrap();
        all.sort_unstable();
        assert_eq!(all, (0..6).collect::<Vec<u32>>());
        assert!(sample_patch_indices(1, 0, 3, 4).is_err());
    }

    #[test]
    fn repeated_indices_sum_their_gradients() {
        let gpu = Gpu::shared().unwrap();
        let x = Var::leaf(Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]).unwrap());
        let idx = Tensor::from_u32(&gpu, &[3, 0, 3], &[1, 3]).unwrap();
        let y = x.gather_pixels(&idx).unwrap();
        assert_eq!(y.value().to_vec().unwrap(), vec![4.0, 1.0, 4.0]);
        let g = Tensor::from_slice(&gpu, &[1.0, 10.0, 100.0], &[3, 1]).unwrap();
        let grads = y.backward_with(g).unwrap();
        assert_eq!(
            grads.get(&x).unwrap().to_vec().unwrap(),
            vec![10.0, 0.0, 0.0, 101.0]
        );
    }
}
