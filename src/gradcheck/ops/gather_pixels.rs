//! Reference and cases of gather_pixels.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn gather_pixels(x: &Inputs, _: &Attrs) -> Result<HostTensor> {
    let (f, idx) = (input(x, "input")?, input(x, "indices")?);
    let (batch, d, hw) = (f.shape[0], f.shape[1], f.shape[2] * f.shape[3]);
    let points = idx.shape[1];
    let mut data = Vec::with_capacity(batch * points * d);
    for b in 0..batch {
        for q in 0..points {
            let s = idx.data[b * points + q] as usize;
            data.extend((0..d).map(|j| f.data[(b * d + j) * hw + s]));
        }
    }
    Ok(HostTensor::new(&[batch * points, d], data))
}

/// Indices [B, P]: distinct per image unless `repeats`.
fn one(r: &mut StdRng, repeats: bool) -> Case {
    let b = r.random_range(1..=3);
    let d = r.random_range(1..=5);
    let hw = dims(r, 2, 2, 5);
    let n = hw[0] * hw[1];
    let points = r.random_range(1..=n);
    let mut idx = Vec::new();
    for _ in 0..b {
        if repeats {
            idx.extend((0..points).map(|_| r.random_range(0..n) as f64));
        } else {
            let mut perm: Vec<usize> = (0..n).collect();
            perm.shuffle(r);
            idx.extend(perm[..points].iter().map(|&s| s as f64));
        }
    }
    case(
        vec![
            ("input", uniform(r, &[b, d, hw[0], hw[1]])),
            ("indices", HostTensor::new(&[b, points], idx)),
        ],
        &[],
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    vec![one(r, false), one(r, false), one(r, true)]
}

pub static CHECKS: &[Check] = &[Check {
    op: "gather_pixels",
    reference: gather_pixels,
    cases,
}];
