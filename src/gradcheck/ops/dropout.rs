//! Reference and cases of dropout: the mask comes from `dropout_keep`, the Rust twin
//! of the shader's hash, so the reference reproduces the GPU's draw.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;
use crate::ops::dropout::dropout_keep;

fn dropout(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let (p, seed) = (a.float("p")?, a.int("seed")? as u64);
    if !a.bool("training")? {
        return Ok(t.clone());
    }
    let data = t
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if dropout_keep(seed, i as u32, p) {
                v / (1.0 - p)
            } else {
                0.0
            }
        })
        .collect();
    Ok(HostTensor::new(&t.shape, data))
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let seed = r.random::<u32>().to_string();
    let negative = format!("-{}", r.random::<u32>());
    let mut shape = || dims(r, 3, 2, 6);
    let (s1, s2, s3) = (shape(), shape(), shape());
    vec![
        case(
            vec![("input", uniform(r, &s1))],
            &[("p", "0.3"), ("seed", &seed)],
        ),
        case(
            vec![("input", uniform(r, &s2))],
            &[("p", "0.5"), ("seed", &negative)],
        ),
        case(
            vec![("input", uniform(r, &s3))],
            &[("p", "0.5"), ("training", "false")],
        ),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "dropout",
    reference: dropout,
    cases,
}];
