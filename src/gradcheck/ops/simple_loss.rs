//! References and cases of l1_loss, mse_loss, lsgan_loss and entropy.

use rand::rngs::StdRng;

use crate::error::{Error, Result};
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn reduce(op: &str, values: HostTensor, reduction: &str) -> Result<HostTensor> {
    let total: f64 = values.data.iter().sum();
    match reduction {
        "none" => Ok(values),
        "sum" => Ok(HostTensor::new(&[], vec![total])),
        "mean" => Ok(HostTensor::new(&[], vec![total / values.numel() as f64])),
        other => Err(Error::op(op, format!("reduction {other:?}"))),
    }
}

fn pointwise(x: &Inputs, a: &Attrs, op: &str, f: fn(f64) -> f64) -> Result<HostTensor> {
    let i = input(x, "input")?;
    let t = input(x, "target")?;
    let d = i.data.iter().zip(&t.data).map(|(p, q)| f(p - q)).collect();
    reduce(op, HostTensor::new(&i.shape, d), a.str("reduction")?)
}

fn lsgan(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let i = input(x, "input")?;
    let t = if a.bool("target_is_real")? { 1.0 } else { 0.0 };
    reduce("lsgan_loss", i.map(|v| (v - t) * (v - t)), "mean")
}

/// mean over (b, spatial) of -sum_c p log p with p = softmax over dim 1.
fn entropy(x: &Inputs, _: &Attrs) -> Result<HostTensor> {
    let logits = input(x, "input")?;
    let (batch, classes) = (logits.shape[0], logits.shape[1]);
    let inner: usize = logits.shape[2..].iter().product();
    let mut total = 0.0;
    for b in 0..batch {
        for s in 0..inner {
            let lane: Vec<f64> = (0..classes)
                .map(|c| logits.data[(b * classes + c) * inner + s])
                .collect();
            let z: f64 = lane.iter().map(|v| v.exp()).sum();
            total -= lane
                .iter()
                .map(|v| {
                    let p = v.exp() / z;
                    p * p.ln()
                })
                .sum::<f64>();
        }
    }
    Ok(HostTensor::new(&[], vec![total / (batch * inner) as f64]))
}

/// Input and target at least 0.05 apart (l1's kink stays out of the difference quotient).
fn pair(r: &mut StdRng, shape: &[usize]) -> Vec<(&'static str, HostTensor)> {
    let x = uniform(r, shape);
    let offset = HostTensor::signed_away_from_zero(r, shape, 0.05, 1.0);
    let t = HostTensor::new(
        shape,
        x.data
            .iter()
            .zip(&offset.data)
            .map(|(a, b)| a + b)
            .collect(),
    );
    vec![("input", x), ("target", t)]
}

fn pointwise_cases(r: &mut StdRng) -> Vec<Case> {
    ["mean", "sum", "none"]
        .into_iter()
        .map(|reduction| {
            let s = dims(r, 3, 2, 6);
            case(pair(r, &s), &[("reduction", reduction)])
        })
        .collect()
}

fn lsgan_cases(r: &mut StdRng) -> Vec<Case> {
    ["true", "false"]
        .into_iter()
        .map(|real| {
            let s = dims(r, 4, 1, 5);
            case(
                vec![("input", HostTensor::uniform(r, &s, -0.5, 1.5))],
                &[("target_is_real", real)],
            )
        })
        .collect()
}

fn entropy_cases(r: &mut StdRng) -> Vec<Case> {
    let s4 = dims(r, 4, 2, 5);
    let s2 = dims(r, 2, 2, 7);
    vec![
        case(vec![("input", HostTensor::uniform(r, &s4, -3.0, 3.0))], &[]),
        case(vec![("input", HostTensor::uniform(r, &s2, -3.0, 3.0))], &[]),
    ]
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "l1_loss",
        reference: |x, a| pointwise(x, a, "l1_loss", f64::abs),
        cases: pointwise_cases,
    },
    Check {
        op: "mse_loss",
        reference: |x, a| pointwise(x, a, "mse_loss", |d| d * d),
        cases: pointwise_cases,
    },
    Check {
        op: "lsgan_loss",
        reference: lsgan,
        cases: lsgan_cases,
    },
    Check {
        op: "entropy",
        reference: entropy,
        cases: entropy_cases,
    },
];
