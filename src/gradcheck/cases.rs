//! Random gradient-check cases per op: shapes, attributes and input ranges drawn from
//! a seeded RNG, covering broadcasting, negative dims and odd sizes.

use rand::rngs::StdRng;
use rand::Rng;

use super::host::HostTensor;

/// One check: named inputs and attribute texts as `wgseg op --attr` takes them.
#[derive(Clone, Debug)]
pub struct Case {
    pub inputs: Vec<(String, HostTensor)>,
    pub attrs: Vec<(String, String)>,
}

fn case(inputs: Vec<(&str, HostTensor)>, attrs: &[(&str, String)]) -> Case {
    Case {
        inputs: inputs
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect(),
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn dims(rng: &mut StdRng, rank: usize, lo: usize, hi: usize) -> Vec<usize> {
    (0..rank).map(|_| rng.random_range(lo..=hi)).collect()
}

fn u(rng: &mut StdRng, shape: &[usize]) -> HostTensor {
    HostTensor::uniform(rng, shape, -1.0, 1.0)
}

/// `shape` with some dims set to 1 and possibly leading dims dropped: a shape that
/// broadcasts against it.
fn broadcastable(rng: &mut StdRng, shape: &[usize]) -> Vec<usize> {
    let drop = rng.random_range(0..shape.len());
    shape[drop..]
        .iter()
        .map(|&d| if rng.random_bool(0.4) { 1 } else { d })
        .collect()
}

/// Cases for `op`; empty when the op has none (a test makes sure none is missing).
pub fn cases(op: &str, rng: &mut StdRng) -> Vec<Case> {
    let mut out = Vec::new();
    match op {
        "add" | "sub" | "mul" | "div" => {
            for i in 0..3 {
                let a = dims(rng, 1 + i, 1, 5);
                let b = if i == 0 {
                    a.clone()
                } else {
                    broadcastable(rng, &a)
                };
                let (a, b) = if i == 2 { (b, a) } else { (a, b) };
                let other = if op == "div" {
                    HostTensor::signed_away_from_zero(rng, &b, 0.5, 1.5)
                } else {
                    u(rng, &b)
                };
                out.push(case(vec![("input", u(rng, &a)), ("other", other)], &[]));
            }
        }
        "add_scalar" | "mul_scalar" => {
            let s = dims(rng, 3, 1, 5);
            let v = rng.random_range(-2.0..2.0f64);
            out.push(case(
                vec![("input", u(rng, &s))],
                &[("other", format!("{v:.4}"))],
            ));
        }
        "neg" | "relu" | "sigmoid" | "tanh" | "exp" => {
            let s = dims(rng, 3, 1, 6);
            out.push(case(
                vec![("input", HostTensor::uniform(rng, &s, -2.0, 2.0))],
                &[],
            ));
        }
        "relu6" => {
            let s = dims(rng, 2, 3, 8);
            out.push(case(
                vec![("input", HostTensor::uniform(rng, &s, -8.0, 8.0))],
                &[],
            ));
        }
        "leaky_relu" => {
            let s = dims(rng, 2, 2, 6);
            out.push(case(
                vec![("input", u(rng, &s))],
                &[("negative_slope", "0.2".into())],
            ));
        }
        "log" | "sqrt" => {
            let s = dims(rng, 2, 2, 6);
            out.push(case(
                vec![("input", HostTensor::uniform(rng, &s, 0.3, 2.0))],
                &[],
            ));
        }
        "pow" => {
            let s = dims(rng, 2, 2, 5);
            out.push(case(
                vec![("input", HostTensor::uniform(rng, &s, 0.3, 2.0))],
                &[("exponent", "1.7".into())],
            ));
            out.push(case(
                vec![(
                    "input",
                    HostTensor::signed_away_from_zero(rng, &s, 0.3, 1.5),
                )],
                &[("exponent", "3".into())],
            ));
        }
        "sum" | "mean" => {
            let s = dims(rng, 3, 2, 5);
            out.push(case(vec![("input", u(rng, &s))], &[("dim", "none".into())]));
            out.push(case(
                vec![("input", u(rng, &s))],
                &[("dim", "1".into()), ("keepdim", "true".into())],
            ));
            out.push(case(vec![("input", u(rng, &s))], &[("dim", "0,-1".into())]));
            // Long enough to take the workgroup-per-output schedule.
            out.push(case(
                vec![("input", u(rng, &[3, 300]))],
                &[("dim", "1".into())],
            ));
        }
        "matmul" => {
            let (m, k, n) = (
                rng.random_range(1..7),
                rng.random_range(1..7),
                rng.random_range(1..7),
            );
            out.push(case(
                vec![("input", u(rng, &[m, k])), ("other", u(rng, &[k, n]))],
                &[],
            ));
            out.push(case(
                vec![("input", u(rng, &[2, m, k])), ("other", u(rng, &[2, k, n]))],
                &[],
            ));
            out.push(case(
                vec![("input", u(rng, &[3, m, k])), ("other", u(rng, &[k, n]))],
                &[],
            ));
            out.push(case(
                vec![("input", u(rng, &[m, k])), ("other", u(rng, &[2, k, n]))],
                &[],
            ));
        }
        "reshape" => {
            out.push(case(
                vec![("input", u(rng, &[2, 3, 4]))],
                &[("shape", "4,-1".into())],
            ));
        }
        "permute" => {
            let s = dims(rng, 4, 2, 4);
            out.push(case(
                vec![("input", u(rng, &s))],
                &[("dims", "2,0,3,1".into())],
            ));
        }
        "transpose" => {
            let s = dims(rng, 3, 2, 5);
            out.push(case(
                vec![("input", u(rng, &s))],
                &[("dim0", "0".into()), ("dim1", "-1".into())],
            ));
        }
        "cat" => {
            let (a, b) = (rng.random_range(1..4), rng.random_range(1..4));
            out.push(case(
                vec![
                    ("tensors.0", u(rng, &[2, a, 3])),
                    ("tensors.1", u(rng, &[2, b, 3])),
                    ("tensors.2", u(rng, &[2, 1, 3])),
                ],
                &[("dim", "1".into())],
            ));
        }
        "slice" => {
            out.push(case(
                vec![("input", u(rng, &[3, 7, 2]))],
                &[
                    ("dim", "1".into()),
                    ("start", "1".into()),
                    ("end", "-1".into()),
                    ("step", "2".into()),
                ],
            ));
            out.push(case(
                vec![("input", u(rng, &[5, 3]))],
                &[("dim", "0".into()), ("start", "-3".into())],
            ));
        }
        "softmax" | "log_softmax" => {
            let s = dims(rng, 3, 2, 5);
            out.push(case(
                vec![("input", HostTensor::uniform(rng, &s, -3.0, 3.0))],
                &[("dim", "1".into())],
            ));
            out.push(case(
                vec![("input", HostTensor::uniform(rng, &s, -3.0, 3.0))],
                &[("dim", "-1".into())],
            ));
        }
        _ => {}
    }
    out
}
