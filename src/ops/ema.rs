//! Momentum (EMA) encoder update, shaders/ema.wgsl: for every parameter pair of a key
//! network and its query network, in place on the GPU and with no host round trip,
//!   key = m * key + (1 - m) * query
//! (MoCo's momentum encoder, used by MaskContrast with m = 0.999). One dispatch per
//! tensor pair; updating a tensor's buffer is seen by every holder of its storage,
//! so passing `Var::value()` of parameters updates the parameters themselves.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, fixed_in, OpSpec};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "ema";

fn check_momentum(momentum: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::op(
            OP,
            format!("momentum must be in [0, 1], got {momentum}"),
        ));
    }
    Ok(())
}

fn check_pair(i: usize, key: &Tensor, query: &Tensor) -> Result<()> {
    expect_f32(OP, &format!("key tensor {i}"), key)?;
    expect_f32(OP, &format!("query tensor {i}"), query)?;
    if key.shape() != query.shape() {
        return Err(Error::op(
            OP,
            format!(
                "pair {i}: key tensor {} and query tensor {} differ in shape",
                shape_str(key.shape()),
                shape_str(query.shape())
            ),
        ));
    }
    if key.same_storage(query) {
        return Err(Error::op(
            OP,
            format!("pair {i}: key and query tensors share one buffer"),
        ));
    }
    Ok(())
}

fn dispatch(key: &Tensor, query: &Tensor, momentum: f32) -> Result<()> {
    let n = key.numel();
    let p = Params::new(OP).idx("n", n)?.f32("momentum", momentum);
    let gpu = key.gpu();
    gpu.dispatch(
        &Kernel::new("ema", "ema"),
        &[key.buffer(), query.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )
}

/// `key[i] = m * key[i] + (1 - m) * query[i]` in place for every pair. All pairs are
/// checked (same count, shapes, f32, distinct buffers) before anything is written.
pub fn ema_update(key: &[Tensor], query: &[Tensor], momentum: f32) -> Result<()> {
    check_momentum(momentum)?;
    if key.len() != query.len() {
        return Err(Error::op(
            OP,
            format!(
                "{} key tensors but {} query tensors",
                key.len(),
                query.len()
            ),
        ));
    }
    for (i, (k, q)) in key.iter().zip(query).enumerate() {
        check_pair(i, k, q)?;
    }
    for (k, q) in key.iter().zip(query) {
        dispatch(k, q, momentum)?;
    }
    Ok(())
}

/// A new tensor `m * key + (1 - m) * query`, leaving `key` as it was.
pub fn ema(key: &Tensor, query: &Tensor, momentum: f32) -> Result<Tensor> {
    check_momentum(momentum)?;
    check_pair(0, key, query)?;
    let out = Tensor::empty(key.gpu(), key.shape(), DType::F32)?;
    key.gpu()
        .copy(key.buffer(), out.buffer(), key.numel() as u64 * 4);
    dispatch(&out, query, momentum)?;
    Ok(out)
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "ema",
    summary: "momentum update momentum * input + (1 - momentum) * other (input: key tensor, other: query tensor); no gradient",
    inputs: &[fixed_in("input", DType::F32, false), fixed_in("other", DType::F32, false)],
    attrs: &[attr("momentum", AttrKind::Float, Some("0.999"))],
    run: |c| {
        let out = ema(
            &c.input("input")?.value(),
            &c.input("other")?.value(),
            c.attrs.float("momentum")? as f32,
        )?;
        Ok(Var::constant(out))
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 31 + seed * 17) % 29) as f32 / 7.0 - 2.0)
            .collect()
    }

    #[test]
    fn updates_every_pair_in_place_like_the_cpu() {
        let gpu = Gpu::shared().unwrap();
        let shapes: [&[usize]; 3] = [&[3, 5], &[7], &[2, 3, 1, 3]];
        let m = 0.9f32;
        let (mut keys, mut queries, mut want) = (vec![], vec![], vec![]);
        for (s, shape) in shapes.iter().enumerate() {
            let n: usize = shape.iter().product();
            let (k, q) = (values(n, s), values(n, s + 5));
            want.push(
                k.iter()
                    .zip(&q)
                    .map(|(&k, &q)| m as f64 * k as f64 + (1.0 - m as f64) * q as f64)
                    .collect::<Vec<f64>>(),
            );
            keys.push(Var::leaf(Tensor::from_slice(&gpu, &k, shape).unwrap()));
            queries.push(Tensor::from_slice(&gpu, &q, shape).unwrap());
        }
        let kt: Vec<Tensor> = keys.iter().map(Var::value).collect();
        for _ in 0..2 {
            ema_update(&kt, &queries, m).unwrap();
        }
        for ((key, q), w) in keys.iter().zip(&queries).zip(&want) {
            let q = q.to_vec().unwrap();
            let got = key.value().to_vec().unwrap();
            for ((g, w1), q) in got.iter().zip(w).zip(q) {
                let w2 = m as f64 * w1 + (1.0 - m as f64) * q as f64;
                assert!((*g as f64 - w2).abs() < 1e-5, "{got:?}");
            }
        }
    }

    #[test]
    fn mismatched_pairs_are_refused_before_any_write() {
        let gpu = Gpu::shared().unwrap();
        let a = Tensor::from_slice(&gpu, &[1.0, 2.0], &[2]).unwrap();
        let b = Tensor::from_slice(&gpu, &[3.0, 4.0], &[2]).unwrap();
        let c = Tensor::from_slice(&gpu, &[5.0, 6.0], &[1, 2]).unwrap();
        let e = ema_update(&[a.clone(), b.clone()], &[b.clone(), c], 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pair 1") && e.contains("[1, 2]"), "{e}");
        assert_eq!(a.to_vec().unwrap(), vec![1.0, 2.0]);
        let e = ema_update(std::slice::from_ref(&a), std::slice::from_ref(&a), 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("share one buffer"), "{e}");
        let e = ema_update(&[a], &[b], 1.5).unwrap_err().to_string();
        assert!(e.contains("momentum"), "{e}");
    }
}
