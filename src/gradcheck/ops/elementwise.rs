//! References and cases of the elementwise ops.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::{unravel, HostTensor};
use crate::ops::attrs::Attrs;
use crate::tensor::shape::{broadcast, broadcast_strides};

fn broadcast_binary(op: &str, x: &Inputs, f: fn(f64, f64) -> f64) -> Result<HostTensor> {
    let (a, b) = (input(x, "input")?, input(x, "other")?);
    let out = broadcast(op, &a.shape, &b.shape)?;
    let (sa, sb) = (
        broadcast_strides(&a.shape, &out),
        broadcast_strides(&b.shape, &out),
    );
    let data = (0..out.iter().product())
        .map(|i| {
            let idx = unravel(i, &out);
            let ia: usize = idx.iter().zip(&sa).map(|(x, s)| x * s).sum();
            let ib: usize = idx.iter().zip(&sb).map(|(x, s)| x * s).sum();
            f(a.data[ia], b.data[ib])
        })
        .collect();
    Ok(HostTensor::new(&out, data))
}

/// `shape` with some dims set to 1 and possibly leading dims dropped.
fn broadcastable(rng: &mut StdRng, shape: &[usize]) -> Vec<usize> {
    let drop = rng.random_range(0..shape.len());
    shape[drop..]
        .iter()
        .map(|&d| if rng.random_bool(0.4) { 1 } else { d })
        .collect()
}

fn binary_cases(rng: &mut StdRng, nonzero_other: bool) -> Vec<Case> {
    (0..3)
        .map(|i| {
            let a = dims(rng, 1 + i, 1, 5);
            let b = if i == 0 {
                a.clone()
            } else {
                broadcastable(rng, &a)
            };
            let (a, b) = if i == 2 { (b, a) } else { (a, b) };
            let other = if nonzero_other {
                HostTensor::signed_away_from_zero(rng, &b, 0.5, 1.5)
            } else {
                uniform(rng, &b)
            };
            case(vec![("input", uniform(rng, &a)), ("other", other)], &[])
        })
        .collect()
}

fn map(x: &Inputs, f: impl Fn(f64) -> f64) -> Result<HostTensor> {
    Ok(input(x, "input")?.map(f))
}

fn ranged(rng: &mut StdRng, lo: f64, hi: f64) -> Vec<Case> {
    let s = dims(rng, 3, 1, 6);
    vec![case(
        vec![("input", HostTensor::uniform(rng, &s, lo, hi))],
        &[],
    )]
}

fn scalar_case(rng: &mut StdRng) -> Vec<Case> {
    let s = dims(rng, 3, 1, 5);
    let v = format!("{:.4}", rng.random_range(-2.0..2.0f64));
    vec![case(vec![("input", uniform(rng, &s))], &[("other", &v)])]
}

/// erf in f64: its Maclaurin series below 3, the continued fraction of erfc above.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 3.0 {
        // 2/sqrt(pi) * sum_n (-1)^n a^(2n+1) / (n! (2n+1))
        let (mut power, mut sum, mut n) = (a, a, 0.0);
        loop {
            n += 1.0;
            power *= -a * a / n;
            let term = power / (2.0 * n + 1.0);
            sum += term;
            if term.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + (2/2) / (a + (3/2) / ...)))
        let denominator = (1..=60).rev().fold(a, |f, k| a + k as f64 / 2.0 / f);
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / denominator
    };
    r.copysign(x)
}

fn gelu(v: f64, approximate: &str) -> f64 {
    if approximate == "tanh" {
        let beta = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * v * (1.0 + (beta * (v + 0.044715 * v * v * v)).tanh())
    } else {
        0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))
    }
}

fn attr(a: &Attrs, name: &str) -> Result<f64> {
    a.float(name)
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "add",
        reference: |x, _| broadcast_binary("add", x, |a, b| a + b),
        cases: |r| binary_cases(r, false),
    },
    Check {
        op: "sub",
        reference: |x, _| broadcast_binary("sub", x, |a, b| a - b),
        cases: |r| binary_cases(r, false),
    },
    Check {
        op: "mul",
        reference: |x, _| broadcast_binary("mul", x, |a, b| a * b),
        cases: |r| binary_cases(r, false),
    },
    Check {
        op: "div",
        reference: |x, _| broadcast_binary("div", x, |a, b| a / b),
        cases: |r| binary_cases(r, true),
    },
    Check {
        op: "add_scalar",
        reference: |x, a| {
            let s = attr(a, "other")?;
            map(x, |v| v + s)
        },
        cases: scalar_case,
    },
    Check {
        op: "mul_scalar",
        reference: |x, a| {
            let s = attr(a, "other")?;
            map(x, |v| v * s)
        },
        cases: scalar_case,
    },
    Check {
        op: "neg",
        reference: |x, _| map(x, |v| -v),
        cases: |r| ranged(r, -2.0, 2.0),
    },
    Check {
        op: "relu",
        reference: |x, _| map(x, |v| v.max(0.0)),
        cases: |r| ranged(r, -2.0, 2.0),
    },
    Check {
        op: "relu6",
        reference: |x, _| map(x, |v| v.clamp(0.0, 6.0)),
        cases: |r| ranged(r, -8.0, 8.0),
    },
    Check {
        op: "leaky_relu",
        reference: |x, a| {
            let s = attr(a, "negative_slope")?;
            map(x, |v| if v > 0.0 { v } else { s * v })
        },
        cases: |r| {
            let s = dims(r, 2, 2, 6);
            vec![case(
                vec![("input", uniform(r, &s))],
                &[("negative_slope", "0.2")],
            )]
        },
    },
    Check {
        op: "gelu",
        reference: |x, a| {
            let approximate = a.str("approximate")?.to_string();
            map(x, |v| gelu(v, &approximate))
        },
        cases: |r| {
            let s = dims(r, 3, 2, 5);
            let wide = dims(r, 2, 3, 6);
            vec![
                case(vec![("input", HostTensor::uniform(r, &s, -3.0, 3.0))], &[]),
                case(
                    vec![("input", HostTensor::uniform(r, &s, -3.0, 3.0))],
                    &[("approximate", "tanh")],
                ),
                case(
                    vec![("input", HostTensor::uniform(r, &wide, -12.0, 12.0))],
                    &[],
                ),
                case(
                    vec![("input", HostTensor::uniform(r, &wide, -12.0, 12.0))],
                    &[("approximate", "tanh")],
                ),
            ]
        },
    },
    Check {
        op: "sigmoid",
        reference: |x, _| map(x, |v| 1.0 / (1.0 + (-v).exp())),
        cases: |r| ranged(r, -3.0, 3.0),
    },
    Check {
        op: "tanh",
        reference: |x, _| map(x, f64::tanh),
        cases: |r| ranged(r, -2.0, 2.0),
    },
    Check {
        op: "exp",
        reference: |x, _| map(x, f64::exp),
        cases: |r| ranged(r, -2.0, 2.0),
    },
    Check {
        op: "log",
        reference: |x, _| map(x, f64::ln),
        cases: |r| ranged(r, 0.3, 2.0),
    },
    Check {
        op: "sqrt",
        reference: |x, _| map(x, f64::sqrt),
        cases: |r| ranged(r, 0.3, 2.0),
    },
    Check {
        op: "pow",
        reference: |x, a| {
            let e = attr(a, "exponent")?;
            map(x, |v| v.powf(e))
        },
        cases: |r| {
            let s = dims(r, 2, 2, 5);
            vec![
                case(
                    vec![("input", HostTensor::uniform(r, &s, 0.3, 2.0))],
                    &[("exponent", "1.7")],
                ),
                case(
                    vec![("input", HostTensor::signed_away_from_zero(r, &s, 0.3, 1.5))],
                    &[("exponent", "3")],
                ),
            ]
        },
    },
];
