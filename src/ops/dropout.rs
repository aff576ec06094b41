//! F.dropout with a seeded, counter-based mask (shaders/dropout.wgsl): element i of
//! a call with `seed` is kept iff [`dropout_keep`]`(seed, i, p)`, on any device and in
//! any order, and kept elements are scaled by 1 / (1 - p). Backward applies the same
//! mask to the gradient by re-running the kernel, so nothing is saved.

use super::attrs::AttrKind;
use super::spec::{attr, OpSpec, INPUT};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{DType, Tensor};

/// PCG-RXS-M-XS output permutation, bit for bit the shader's `pcg`.
fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// The 32-bit hash key of a 64-bit seed (both halves matter).
fn key(seed: u64) -> u32 {
    pcg(seed as u32 ^ pcg((seed >> 32) as u32))
}

/// Elements are kept when the top 24 hash bits reach ceil(p * 2^24), so the keep
/// rate is 1 - p to within 2^-24 (exactly for p = 0, 0.5 and 1).
fn threshold(p: f64) -> u32 {
    (p * (1u32 << 24) as f64).ceil() as u32
}

/// Whether dropout with `seed` and probability `p` keeps element `index`: the Rust
/// twin of shaders/dropout.wgsl, for references and tests.
pub fn dropout_keep(seed: u64, index: u32, p: f64) -> bool {
    (pcg(pcg(index) ^ key(seed)) >> 8) >= threshold(p)
}

fn check_p(p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::op(
            "dropout",
            format!("p must be in [0, 1], got {p}"),
        ));
    }
    Ok(())
}

/// Training-mode dropout of `x`: zeroes elements with probability `p` and scales
/// the rest by 1 / (1 - p) (all zeros for p = 1, as in PyTorch).
pub fn dropout(x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    expect_f32("dropout", "input", x)?;
    check_p(p)?;
    let scale = if p < 1.0 {
        (1.0 / (1.0 - p)) as f32
    } else {
        0.0
    };
    let n = x.numel();
    let params = Params::new("dropout")
        .idx("n", n)?
        .u32("key", key(seed))
        .u32("threshold", threshold(p))
        .f32("scale", scale);
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("dropout", "main"),
        &[x.buffer(), out.buffer()],
        &params,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

impl Var {
    /// F.dropout(input, p, training) with the mask drawn from `seed`; identity (the
    /// same Var, as PyTorch returns its input) when not training or p = 0.
    pub fn dropout(&self, p: f64, training: bool, seed: u64) -> Result<Var> {
        check_p(p)?;
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let out = dropout(&self.value(), p, seed)?;
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(dropout(g, p, seed)?)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "dropout",
    summary: "zero elements with probability p from a seeded mask, scale the rest by 1/(1-p)",
    inputs: INPUT,
    attrs: &[
        attr("p", AttrKind::Float, Some("0.5")),
        attr("training", AttrKind::Bool, Some("true")),
        attr("seed", AttrKind::Int, Some("0")),
    ],
    // Negative seeds stand for their two's-complement u64.
    run: |c| {
        let a = &c.attrs;
        c.input("input")?
            .dropout(a.float("p")?, a.bool("training")?, a.int("seed")? as u64)
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn gpu_mask_matches_the_rust_twin_and_keeps_one_minus_p() {
        let gpu = Gpu::shared().unwrap();
        let n = 100_000;
        let (p, seed) = (0.3, 0x1234_5678_9abc_def0);
        let x = Tensor::from_slice(&gpu, &vec![1.0; n], &[n]).unwrap();
        let y = dropout(&x, p, seed).unwrap().to_vec().unwrap();
        let scale = (1.0 / (1.0 - p)) as f32;
        let mut kept = 0;
        for (i, &v) in y.iter().enumerate() {
            let keep = dropout_keep(seed, i as u32, p);
            assert_eq!(v, if keep { scale } else { 0.0 }, "element {i}");
            kept += keep as usize;
        }
        let rate = kept as f64 / n as f64;
        // 1 - p within ~5 standard deviations (sqrt(p (1 - p) / n) = 0.0015).
        assert!((rate - (1.0 - p)).abs() < 0.0075, "kept {rate}");
    }

    #[test]
    fn seeds_differ_and_p_is_checked() {
        let a: Vec<bool> = (0..64).map(|i| dropout_keep(1, i, 0.5)).collect();
        let b: Vec<bool> = (0..64).map(|i| dropout_keep(2, i, 0.5)).collect();
        assert_ne!(a, b);
        assert!((0..64).all(|i| dropout_keep(7, i, 0.0) && !dropout_keep(7, i, 1.0)));
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[1.0; 4], &[4]).unwrap();
        let e = dropout(&x, 1.5, 0).unwrap_err();
        assert!(e.to_string().contains("p must be in [0, 1]"), "{e}");
    }
}
