//! Reference and cases of linear.

use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, input, uniform, Check, Inputs};
use crate::gradcheck::host::HostTensor;

fn linear(x: &Inputs) -> Result<HostTensor> {
    let (a, w) = (input(x, "input")?, input(x, "weight")?);
    let bias = x.iter().find(|(n, _)| n == "bias").map(|(_, t)| t);
    let (n, k) = (w.shape[0], w.shape[1]);
    let m = a.numel() / k;
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|l| a.data[i * k + l] * w.data[j * k + l]).sum();
            out[i * n + j] = dot + bias.map_or(0.0, |b| b.data[j]);
        }
    }
    let mut shape = a.shape.clone();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    Ok(HostTensor::new(&shape, out))
}

pub static CHECKS: &[Check] = &[Check {
    op: "linear",
    reference: |x, _| linear(x),
    cases: |r| {
        let (m, k, n) = (
            r.random_range(1..6),
            r.random_range(1..9),
            r.random_range(1..7),
        );
        vec![
            case(
                vec![
                    ("input", uniform(r, &[m, k])),
                    ("weight", uniform(r, &[n, k])),
                    ("bias", uniform(r, &[n])),
                ],
                &[],
            ),
            case(
                vec![
                    ("input", uniform(r, &[2, m, k])),
                    ("weight", uniform(r, &[n, k])),
                ],
                &[],
            ),
        ]
    },
}];
