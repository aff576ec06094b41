//! Reference and cases of proto_contrast, and the pixel helpers the other
//! prototype references share.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

/// (B, D, H*W) of a [B, D, H, W] feature map.
pub(super) fn map_dims(f: &HostTensor) -> (usize, usize, usize) {
    (f.shape[0], f.shape[1], f.shape[2] * f.shape[3])
}

/// The feature vector of pixel s of image b.
pub(super) fn pixel(f: &HostTensor, b: usize, s: usize) -> Vec<f64> {
    let (_, d, hw) = map_dims(f);
    (0..d).map(|j| f.data[(b * d + j) * hw + s]).collect()
}

/// v / max(||v||, 1e-12), as F.normalize.
pub(super) fn normalized(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Row c of a [C, D] tensor.
pub(super) fn row(p: &HostTensor, c: usize) -> &[f64] {
    let d = p.shape[1];
    &p.data[c * d..(c + 1) * d]
}

/// Labels in 0..classes with about a quarter `ignore`, at least one not ignored.
pub(super) fn labels(r: &mut StdRng, shape: &[usize], classes: usize, ignore: u32) -> HostTensor {
    let n: usize = shape.iter().product();
    let mut data: Vec<f64> = (0..n)
        .map(|_| {
            if r.random_bool(0.25) {
                ignore as f64
            } else {
                r.random_range(0..classes) as f64
            }
        })
        .collect();
    data[r.random_range(0..n)] = r.random_range(0..classes) as f64;
    HostTensor::new(shape, data)
}

fn proto_contrast(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let (f, p, t) = (
        input(x, "features")?,
        input(x, "prototypes")?,
        input(x, "target")?,
    );
    let (scale, ignore) = (a.float("scale")?, a.int("ignore_index")? as f64);
    let (batch, _, hw) = map_dims(f);
    let protos: Vec<Vec<f64>> = (0..p.shape[0]).map(|c| normalized(row(p, c))).collect();
    let (mut total, mut count) = (0.0, 0.0);
    for b in 0..batch {
        for s in 0..hw {
            let y = t.data[b * hw + s];
            if y == ignore {
                continue;
            }
            let v = normalized(&pixel(f, b, s));
            let z: Vec<f64> = protos.iter().map(|q| scale * dot(q, &v)).collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            total += lse - z[y as usize];
            count += 1.0;
        }
    }
    if count == 0.0 {
        return Err(Error::op("proto_contrast", "every pixel is ignored"));
    }
    Ok(HostTensor::new(&[], vec![total / count]))
}

fn one(r: &mut StdRng, scale: &str, ignore: u32) -> Case {
    let b = r.random_range(1..=2);
    let d = r.random_range(3..=8);
    let hw = dims(r, 2, 1, 5);
    let c = r.random_range(2..=6);
    let t = labels(r, &[b, hw[0], hw[1]], c, ignore);
    let ignore = ignore.to_string();
    case(
        vec![
            ("features", uniform(r, &[b, d, hw[0], hw[1]])),
            ("prototypes", uniform(r, &[c, d])),
            ("target", t),
        ],
        &[("scale", scale), ("ignore_index", &ignore)],
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    vec![
        one(r, "10", 255),
        one(r, "10", 255),
        one(r, "3", 255),
        one(r, "3", 99),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "proto_contrast",
    reference: proto_contrast,
    cases,
}];
