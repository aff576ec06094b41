//! masked_average (shaders/masked_average.wgsl): the mean embedding of each image's
//! mask, MaskContrast's mask prototype before normalisation:
//!   out[b, d] = sum_{h,w} mask[b,h,w] * input[b,d,h,w] / S_b,   S_b = sum_{h,w} mask[b,h,w]
//! with mask values 0/1 (they act as weights). Backward to input only:
//!   grad_input[b,d,h,w] = grad[b,d] * mask[b,h,w] / S_b.
//!
//! An empty mask (S_b = 0) has no mean. Two entry points handle it:
//! - [`Var::masked_average`] (and the `masked_average` op) reads the B sums back and
//!   returns `Error::op("masked_average", "mask of image b is empty")`: one host
//!   round trip per call.
//! - [`Var::masked_average_nonempty`] skips the readback for training loops that
//!   already know every mask is non-empty (MaskContrast keeps only images whose
//!   saliency covers 1%..99%, checked when the data is loaded). An empty mask there
//!   gives a zero row and zero gradient, never NaN.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::spec::{f32_in, InputSpec, OpSpec};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "masked_average";

/// The forward's output [B, D] and the mask sums S_b [B] that backward reuses.
#[derive(Clone, Debug)]
pub struct MaskedAverage {
    pub output: Tensor,
    pub sums: Tensor,
}

/// (B, D, H*W) of a valid input/mask pair.
fn geometry(x: &Tensor, mask: &Tensor) -> Result<(usize, usize, usize)> {
    expect_f32(OP, "input", x)?;
    expect_f32(OP, "mask", mask)?;
    let [b, d, h, w] = x.shape() else {
        return Err(Error::op(
            OP,
            format!("input must be [B, D, H, W], got {}", shape_str(x.shape())),
        ));
    };
    if mask.shape() != [*b, *h, *w] {
        return Err(Error::op(
            OP,
            format!(
                "mask must be [B, H, W] = {}, got {}",
                shape_str(&[*b, *h, *w]),
                shape_str(mask.shape())
            ),
        ));
    }
    Ok((*b, *d, h * w))
}

fn params(d: usize, hw: usize, rows: usize) -> Result<Params> {
    Params::new(OP)
        .idx("d", d)?
        .idx("hw", hw)?
        .idx("rows", rows)
}

/// Mask averages of `x` [B,D,H,W] under `mask` [B,H,W], without any readback (an
/// empty mask gives a zero row; see [`check_nonempty`]).
pub fn masked_average(x: &Tensor, mask: &Tensor) -> Result<MaskedAverage> {
    let (b, d, hw) = geometry(x, mask)?;
    let gpu = x.gpu();
    let output = Tensor::empty(gpu, &[b, d], DType::F32)?;
    let sums = Tensor::empty(gpu, &[b], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("masked_average", "forward"),
        &[x.buffer(), mask.buffer(), output.buffer(), sums.buffer()],
        &params(d, hw, b * d)?,
        gpu.grid((b * d) as u64, WORKGROUP),
    )?;
    Ok(MaskedAverage { output, sums })
}

/// Reads the mask sums back: the first image with an empty mask is an error.
pub fn check_nonempty(sums: &Tensor) -> Result<()> {
    match sums.to_vec()?.iter().position(|&s| s == 0.0) {
        Some(b) => Err(Error::op(OP, format!("mask of image {b} is empty"))),
        None => Ok(()),
    }
}

/// Gradient of [`masked_average`] with respect to its input, from the output
/// gradient `g` [B, D] and the forward's `sums`.
pub fn masked_average_backward(g: &Tensor, mask: &Tensor, sums: &Tensor) -> Result<Tensor> {
    let [b, d] = g.shape() else {
        return Err(Error::op(
            OP,
            format!("grad_output must be [B, D], got {}", shape_str(g.shape())),
        ));
    };
    let (b, d) = (*b, *d);
    let [mb, h, w] = mask.shape() else {
        return Err(Error::op(
            OP,
            format!("mask must be [B, H, W], got {}", shape_str(mask.shape())),
        ));
    };
    if *mb != b || sums.shape() != [b] {
        return Err(Error::op(
            OP,
            format!(
                "grad_output {}, mask {} and sums {} disagree on B",
                shape_str(g.shape()),
                shape_str(mask.shape()),
                shape_str(sums.shape())
            ),
        ));
    }
    let hw = h * w;
    let gpu = g.gpu();
    let dx = Tensor::empty(gpu, &[b, d, *h, *w], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("masked_average", "backward"),
        &[mask.buffer(), g.buffer(), sums.buffer(), dx.buffer()],
        &params(d, hw, b * d)?,
        gpu.grid((b * d) as u64, WORKGROUP),
    )?;
    Ok(dx)
}

impl Var {
    fn record_masked_average(&self, mask: &Tensor, checked: bool) -> Result<Var> {
        let fwd = masked_average(&self.value(), mask)?;
        if checked {
            check_nonempty(&fwd.sums)?;
        }
        let (mask, sums) = (mask.clone(), fwd.sums);
        Ok(Var::from_op(fwd.output, &[self], move |g| {
            Ok(vec![Some(masked_average_backward(g, &mask, &sums)?)])
        }))
    }

    /// Per-image mean of `self` [B,D,H,W] over `mask` [B,H,W] (0/1), giving [B,D].
    /// Reads the B mask sums back to refuse an empty mask with
    /// `masked_average: mask of image b is empty`.
    pub fn masked_average(&self, mask: &Tensor) -> Result<Var> {
        self.record_masked_average(mask, true)
    }

    /// [`Var::masked_average`] without the readback, for callers that know every mask
    /// is non-empty; an empty one would give a zero row and zero gradient.
    pub fn masked_average_nonempty(&self, mask: &Tensor) -> Result<Var> {
        self.record_masked_average(mask, false)
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "masked_average",
    summary: "per-image mean of input [B,D,H,W] over mask [B,H,W] (0/1) -> [B,D]; an empty mask is an error",
    inputs: &[
        f32_in("input"),
        InputSpec {
            name: "mask",
            dtype: DType::F32,
            differentiable: false,
            variadic: false,
            optional: false,
        },
    ],
    attrs: &[],
    run: |c| c.input("input")?.masked_average(&c.input("mask")?.value()),
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn empty_mask_is_an_error_or_a_zero_row_never_nan() {
        let gpu = Gpu::shared().unwrap();
        let x = Var::leaf(Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0], &[2, 1, 1, 2]).unwrap());
        let mask = Tensor::from_slice(&gpu, &[1.0, 1.0, 0.0, 0.0], &[2, 1, 2]).unwrap();
        let e = x.masked_average(&mask).unwrap_err().to_string();
        assert_eq!(e, "masked_average: mask of image 1 is empty");
        let y = x.masked_average_nonempty(&mask).unwrap();
        assert_eq!(y.value().to_vec().unwrap(), vec![1.5, 0.0]);
        let seed = Tensor::from_slice(&gpu, &[1.0, 1.0], &[2, 1]).unwrap();
        let grads = y.backward_with(seed).unwrap();
        let gx = grads.get(&x).unwrap().to_vec().unwrap();
        assert_eq!(gx, vec![0.5, 0.5, 0.0, 0.0]);
    }

    #[test]
    fn mismatched_mask_names_both_shapes() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[0.0; 8], &[1, 2, 2, 2]).unwrap();
        let mask = Tensor::from_slice(&gpu, &[1.0; 3], &[1, 3, 1]).unwrap();
        let e = masked_average(&x, &mask).unwrap_err().to_string();
        assert!(e.contains("[1, 2, 2]") && e.contains("[1, 3, 1]"), "{e}");
    }
}
