//! Reference and cases of l2_normalize.

use rand::rngs::StdRng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::{unravel, HostTensor};
use crate::ops::attrs::Attrs;
use crate::tensor::shape::axis;

fn l2_normalize(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let x = input(x, "input")?;
    let d = axis("l2_normalize", a.int("dim")?, x.shape.len())?;
    let eps = a.float("eps")?;
    let st = x.strides();
    let mut out = x.clone();
    for i in 0..x.numel() {
        if unravel(i, &x.shape)[d] != 0 {
            continue;
        }
        let lane: Vec<usize> = (0..x.shape[d]).map(|j| i + j * st[d]).collect();
        let norm = lane
            .iter()
            .map(|&p| x.data[p] * x.data[p])
            .sum::<f64>()
            .sqrt();
        for &p in &lane {
            out.data[p] = x.data[p] / norm.max(eps);
        }
    }
    Ok(out)
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let image = dims(r, 4, 1, 5);
    let seq = dims(r, 3, 2, 7);
    let flat = dims(r, 2, 2, 9);
    vec![
        case(vec![("input", uniform(r, &image))], &[]),
        case(vec![("input", uniform(r, &seq))], &[("dim", "-1")]),
        case(vec![("input", uniform(r, &flat))], &[("dim", "0")]),
        // Every lane's norm is far below eps: the clamped branch, y = x / eps.
        case(
            vec![("input", HostTensor::uniform(r, &seq, -0.05, 0.05))],
            &[("dim", "1"), ("eps", "1.0")],
        ),
        case(vec![("input", uniform(r, &[2, 33, 3, 5]))], &[]),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "l2_normalize",
    reference: l2_normalize,
    cases,
}];
