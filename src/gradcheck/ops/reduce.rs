//! References and cases of sum and mean.

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Check, Inputs};
use crate::gradcheck::host::{unravel, HostTensor};
use crate::ops::attrs::Attrs;
use crate::ops::reduce::reduction_axes;

fn reduce(x: &Inputs, attrs: &Attrs, mean: bool) -> Result<HostTensor> {
    let x = input(x, "input")?;
    let dims = attrs.opt_ints("dim")?;
    let axes = reduction_axes("sum", dims.as_deref(), x.shape.len())?;
    let kept: Vec<usize> = x
        .shape
        .iter()
        .enumerate()
        .map(|(d, &s)| if axes.contains(&d) { 1 } else { s })
        .collect();
    let mut out = HostTensor::zeros(&kept);
    let ks = out.strides();
    for (i, &v) in x.data.iter().enumerate() {
        let o: usize = unravel(i, &x.shape)
            .iter()
            .enumerate()
            .map(|(d, &k)| if axes.contains(&d) { 0 } else { k * ks[d] })
            .sum();
        out.data[o] += v;
    }
    if mean {
        let count: usize = axes.iter().map(|&a| x.shape[a]).product();
        out = out.map(|v| v / count as f64);
    }
    let shape: Vec<usize> = if attrs.bool("keepdim")? {
        kept
    } else {
        (0..x.shape.len())
            .filter(|d| !axes.contains(d))
            .map(|d| x.shape[d])
            .collect()
    };
    Ok(HostTensor::new(&shape, out.data))
}

fn cases(rng: &mut rand::rngs::StdRng) -> Vec<crate::gradcheck::check::Case> {
    let s = dims(rng, 3, 2, 5);
    vec![
        case(vec![("input", uniform(rng, &s))], &[("dim", "none")]),
        case(
            vec![("input", uniform(rng, &s))],
            &[("dim", "1"), ("keepdim", "true")],
        ),
        case(vec![("input", uniform(rng, &s))], &[("dim", "0,-1")]),
        // Long enough to take the workgroup-per-output schedule.
        case(vec![("input", uniform(rng, &[3, 300]))], &[("dim", "1")]),
    ]
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "sum",
        reference: |x, a| reduce(x, a, false),
        cases,
    },
    Check {
        op: "mean",
        reference: |x, a| reduce(x, a, true),
        cases,
    },
];
