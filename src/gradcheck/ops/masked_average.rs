//! Reference and cases of masked_average.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn masked_average(x: &Inputs, _: &Attrs) -> Result<HostTensor> {
    let (t, mask) = (input(x, "input")?, input(x, "mask")?);
    let (b, d, hw) = (t.shape[0], t.shape[1], t.shape[2] * t.shape[3]);
    let mut out = HostTensor::zeros(&[b, d]);
    for bi in 0..b {
        let m = &mask.data[bi * hw..(bi + 1) * hw];
        let total: f64 = m.iter().sum();
        for di in 0..d {
            let row = &t.data[(bi * d + di) * hw..(bi * d + di + 1) * hw];
            let s: f64 = row.iter().zip(m).map(|(v, w)| v * w).sum();
            out.data[bi * d + di] = s / total;
        }
    }
    Ok(out)
}

/// A 0/1 mask [B, H, W] where each image has its own salient fraction in
/// `lo..hi`, and at least one salient pixel when `nonempty`.
pub(crate) fn random_mask(
    r: &mut StdRng,
    shape: &[usize],
    lo: f64,
    hi: f64,
    nonempty: bool,
) -> HostTensor {
    let hw = shape[1] * shape[2];
    let mut data = Vec::with_capacity(shape[0] * hw);
    for _ in 0..shape[0] {
        let fraction = r.random_range(lo..hi);
        let mut image: Vec<f64> = (0..hw)
            .map(|_| f64::from(u8::from(r.random_bool(fraction))))
            .collect();
        if nonempty && image.iter().all(|&v| v == 0.0) {
            image[r.random_range(0..hw)] = 1.0;
        }
        data.extend(image);
    }
    HostTensor::new(shape, data)
}

fn odd(r: &mut StdRng, lo: usize, hi: usize) -> usize {
    r.random_range(lo / 2..=hi / 2) * 2 + 1
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut out = Vec::new();
    for (lo, hi) in [(0.05, 0.3), (0.3, 0.7), (0.7, 1.0)] {
        let (b, d) = (r.random_range(1..=3), odd(r, 1, 7));
        let (h, w) = (odd(r, 1, 7), odd(r, 3, 9));
        let mask = random_mask(r, &[b, h, w], lo, hi, true);
        out.push(case(
            vec![("input", uniform(r, &[b, d, h, w])), ("mask", mask)],
            &[],
        ));
    }
    out
}

pub static CHECKS: &[Check] = &[Check {
    op: "masked_average",
    reference: masked_average,
    cases,
}];
