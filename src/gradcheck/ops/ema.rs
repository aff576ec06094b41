//! Reference and cases of ema (forward only: it has no differentiable input).

use rand::rngs::StdRng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn ema(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let (k, q) = (input(x, "input")?, input(x, "other")?);
    let m = a.float("momentum")? as f32 as f64;
    let data = k
        .data
        .iter()
        .zip(&q.data)
        .map(|(k, q)| m * k + (1.0 - m) * q);
    Ok(HostTensor::new(&k.shape, data.collect()))
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut out = Vec::new();
    for (rank, m) in [(1, "0.999"), (2, "0.5"), (4, "0"), (3, "1")] {
        let s = dims(r, rank, 1, 9);
        out.push(case(
            vec![("input", uniform(r, &s)), ("other", uniform(r, &s))],
            &[("momentum", m)],
        ));
    }
    out
}

pub static CHECKS: &[Check] = &[Check {
    op: "ema",
    reference: ema,
    cases,
}];
