//! Reference and cases of patch_nce.

use rand::rngs::StdRng;
use rand::Rng;

use super::proto_contrast::{dot, normalized, row};
use crate::error::Result;
use crate::gradcheck::check::{case, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn patch_nce(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let (q, k) = (input(x, "query")?, input(x, "key")?);
    let t = a.float("temperature")?;
    let n = q.shape[0];
    let mut total = 0.0;
    for i in 0..n {
        let s: Vec<f64> = (0..n).map(|j| dot(row(q, i), row(k, j)) / t).collect();
        // log(sum_j exp(s_j - s_i)) as log1p of the negatives: when the positive
        // dominates, lse - s_i would cancel to noise even in f64.
        let negatives: f64 = (0..n)
            .filter(|&j| j != i)
            .map(|j| (s[j] - s[i]).exp())
            .sum();
        total += negatives.ln_1p();
    }
    Ok(HostTensor::new(&[], vec![total / n as f64]))
}

/// Random rows, L2-normalised as CUT feeds them.
fn unit_rows(r: &mut StdRng, n: usize, d: usize) -> HostTensor {
    let raw = uniform(r, &[n, d]);
    let data = (0..n).flat_map(|i| normalized(row(&raw, i))).collect();
    HostTensor::new(&[n, d], data)
}

fn one(r: &mut StdRng, n: usize, temperature: &str, unit: bool) -> Case {
    let d = r.random_range(3..=8);
    let (q, k) = if unit {
        (unit_rows(r, n, d), unit_rows(r, n, d))
    } else {
        (uniform(r, &[n, d]), uniform(r, &[n, d]))
    };
    case(
        vec![("query", q), ("key", k)],
        &[("temperature", temperature)],
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut n = || r.random_range(2..=7);
    let (n1, n2, n3) = (n(), n(), n());
    vec![
        one(r, n1, "0.07", true),
        one(r, n2, "0.5", false),
        one(r, n3, "0.07", true),
        one(r, 1, "0.5", true),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "patch_nce",
    reference: patch_nce,
    cases,
}];
