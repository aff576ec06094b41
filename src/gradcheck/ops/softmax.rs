//! References and cases of softmax and log_softmax.

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, Case, Check, Inputs};
use crate::gradcheck::host::{unravel, HostTensor};
use crate::tensor::shape::axis;

fn softmax(x: &Inputs, dim: i64, log: bool) -> Result<HostTensor> {
    let x = input(x, "input")?;
    let d = axis("softmax", dim, x.shape.len())?;
    let st = x.strides();
    let mut out = x.clone();
    for i in 0..x.numel() {
        if unravel(i, &x.shape)[d] != 0 {
            continue;
        }
        let lane: Vec<usize> = (0..x.shape[d]).map(|j| i + j * st[d]).collect();
        let m = lane
            .iter()
            .map(|&p| x.data[p])
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = lane.iter().map(|&p| (x.data[p] - m).exp()).sum();
        for &p in &lane {
            out.data[p] = if log {
                x.data[p] - m - s.ln()
            } else {
                (x.data[p] - m).exp() / s
            };
        }
    }
    Ok(out)
}

fn cases(r: &mut rand::rngs::StdRng) -> Vec<Case> {
    let s = dims(r, 3, 2, 5);
    vec![
        case(
            vec![("input", HostTensor::uniform(r, &s, -3.0, 3.0))],
            &[("dim", "1")],
        ),
        case(
            vec![("input", HostTensor::uniform(r, &s, -3.0, 3.0))],
            &[("dim", "-1")],
        ),
    ]
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "softmax",
        reference: |x, a| softmax(x, a.int("dim")?, false),
        cases,
    },
    Check {
        op: "log_softmax",
        reference: |x, a| softmax(x, a.int("dim")?, true),
        cases,
    },
];
