//! Reference and cases of balanced_bce (MaskContrast's BalancedCrossEntropyLoss).

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn balanced_bce(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let logits = input(x, "input")?;
    let target = input(x, "target")?;
    let labels: Vec<f64> = target
        .data
        .iter()
        .map(|&t| if t >= 0.5 { 1.0 } else { 0.0 })
        .collect();
    let num_pos: f64 = labels.iter().sum();
    let num_neg: f64 = labels.iter().map(|t| 1.0 - t).sum();
    let w = num_neg / (num_pos + num_neg);
    let (mut loss_pos, mut loss_neg) = (0.0, 0.0);
    for (&v, &t) in logits.data.iter().zip(&labels) {
        let gt_zero = if v >= 0.0 { 1.0 } else { 0.0 };
        let loss_val = v * (t - gt_zero) - (1.0 + (v - 2.0 * v * gt_zero).exp()).ln();
        loss_pos += -t * loss_val;
        loss_neg += -(1.0 - t) * loss_val;
    }
    let mut loss = w * loss_pos + (1.0 - w) * loss_neg;
    if a.bool("size_average")? {
        loss /= logits.numel() as f64;
    }
    Ok(HostTensor::new(&[], vec![loss]))
}

fn mask(r: &mut StdRng, shape: &[usize]) -> HostTensor {
    let n: usize = shape.iter().product();
    HostTensor::new(
        shape,
        (0..n)
            .map(|_| if r.random_bool(0.3) { 1.0 } else { 0.0 })
            .collect(),
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let s = dims(r, 3, 2, 7);
    let s4 = [s[0], 1, s[1], s[2]];
    let s3 = dims(r, 3, 2, 7);
    vec![
        case(
            vec![
                ("input", HostTensor::uniform(r, &s4, -4.0, 4.0)),
                ("target", mask(r, &s4)),
            ],
            &[],
        ),
        case(
            vec![
                ("input", HostTensor::uniform(r, &s3, -4.0, 4.0)),
                ("target", mask(r, &s3)),
            ],
            &[("size_average", "false")],
        ),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "balanced_bce",
    reference: balanced_bce,
    cases,
}];
