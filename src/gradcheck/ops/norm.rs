//! References and cases of batch_norm, instance_norm, layer_norm and group_norm.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::{unravel, HostTensor};
use crate::ops::attrs::Attrs;

fn optional<'a>(x: &'a Inputs, name: &str) -> Option<&'a HostTensor> {
    x.iter().find(|(n, _)| n == name).map(|(_, t)| t)
}

/// Normalises the elements that share a key (from flat index and multi-index) by
/// their mean and biased variance.
fn normalize_by(x: &HostTensor, key: impl Fn(usize, &[usize]) -> usize, eps: f64) -> Vec<f64> {
    let keys: Vec<usize> = (0..x.numel())
        .map(|i| key(i, &unravel(i, &x.shape)))
        .collect();
    let groups = keys.iter().max().map_or(0, |k| k + 1);
    let mut count = vec![0.0; groups];
    let mut mean = vec![0.0; groups];
    for (&k, &v) in keys.iter().zip(&x.data) {
        count[k] += 1.0;
        mean[k] += v;
    }
    for (m, c) in mean.iter_mut().zip(&count) {
        *m /= c;
    }
    let mut var = vec![0.0; groups];
    for (&k, &v) in keys.iter().zip(&x.data) {
        var[k] += (v - mean[k]) * (v - mean[k]);
    }
    for (s, c) in var.iter_mut().zip(&count) {
        *s /= c;
    }
    keys.iter()
        .zip(&x.data)
        .map(|(&k, &v)| (v - mean[k]) / (var[k] + eps).sqrt())
        .collect()
}

/// xhat * weight + bias, each element using parameter `param(i, idx)`.
fn affine(
    x: &Inputs,
    shape: &[usize],
    xhat: Vec<f64>,
    param: impl Fn(usize, &[usize]) -> usize,
) -> HostTensor {
    let (w, b) = (optional(x, "weight"), optional(x, "bias"));
    let data = xhat
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let j = param(i, &unravel(i, shape));
            v * w.map_or(1.0, |w| w.data[j]) + b.map_or(0.0, |b| b.data[j])
        })
        .collect();
    HostTensor::new(shape, data)
}

fn batch_norm(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let eps = a.float("eps")?;
    let xhat = if a.bool("training")? {
        normalize_by(t, |_, idx| idx[1], eps)
    } else {
        let (rm, rv) = (input(x, "running_mean")?, input(x, "running_var")?);
        (0..t.numel())
            .map(|i| {
                let c = unravel(i, &t.shape)[1];
                (t.data[i] - rm.data[c]) / (rv.data[c] + eps).sqrt()
            })
            .collect()
    };
    let mut y = affine(x, &t.shape, xhat, |_, idx| idx[1]);
    let activate: fn(f64) -> f64 = match a.str("activation")? {
        "relu" => |v| v.max(0.0),
        "relu6" => |v| v.clamp(0.0, 6.0),
        _ => |v| v,
    };
    y.data.iter_mut().for_each(|v| *v = activate(*v));
    Ok(y)
}

fn instance_norm(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let c = t.shape[1];
    let xhat = normalize_by(t, |_, idx| idx[0] * c + idx[1], a.float("eps")?);
    Ok(affine(x, &t.shape, xhat, |_, idx| idx[1]))
}

fn group_norm(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let groups = a.int("num_groups")? as usize;
    let per = t.shape[1] / groups;
    let xhat = normalize_by(t, |_, idx| idx[0] * groups + idx[1] / per, a.float("eps")?);
    Ok(affine(x, &t.shape, xhat, |_, idx| idx[1]))
}

fn layer_norm(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let d: i64 = a.ints("normalized_shape")?.iter().product();
    let d = d as usize;
    let xhat = normalize_by(t, |i, _| i / d, a.float("eps")?);
    Ok(affine(x, &t.shape, xhat, |i, _| i % d))
}

/// input plus the chosen affine parameters of shape `param`.
fn with_affine(
    r: &mut StdRng,
    shape: &[usize],
    param: &[usize],
    weight: bool,
    bias: bool,
) -> Vec<(&'static str, HostTensor)> {
    let mut inputs = vec![("input", HostTensor::uniform(r, shape, -2.0, 2.0))];
    if weight {
        inputs.push(("weight", uniform(r, param)));
    }
    if bias {
        inputs.push(("bias", uniform(r, param)));
    }
    inputs
}

fn bn_case(r: &mut StdRng, shape: &[usize], training: bool, stats: bool, w: bool, b: bool) -> Case {
    bn_act_case(r, shape, training, stats, w, b, "none")
}

/// A batch_norm case followed by `activation`; weights and biases of up to 3 in size
/// so that ReLU6 clips at both ends.
fn bn_act_case(
    r: &mut StdRng,
    shape: &[usize],
    training: bool,
    stats: bool,
    w: bool,
    b: bool,
    activation: &str,
) -> Case {
    let c = shape[1];
    let mut inputs = with_affine(r, shape, &[c], w, b);
    if stats {
        inputs.push(("running_mean", uniform(r, &[c])));
        inputs.push(("running_var", HostTensor::uniform(r, &[c], 0.5, 1.5)));
    }
    if activation == "relu6" {
        for (name, t) in inputs.iter_mut() {
            if *name == "weight" {
                *t = HostTensor::uniform(r, &[c], 2.0, 4.0);
            } else if *name == "bias" {
                *t = HostTensor::uniform(r, &[c], 0.5, 4.0);
            }
        }
    }
    let training = if training { "true" } else { "false" };
    case(
        inputs,
        &[
            ("training", training),
            ("momentum", "0.1"),
            ("activation", activation),
        ],
    )
}

// Groups of at least 3 elements: with 2, the outputs are +-1 whatever the input, so
// the true input gradient is ~0 and its relative error is noise.
fn batch_norm_cases(r: &mut StdRng) -> Vec<Case> {
    let flat = dims(r, 2, 3, 7);
    let mut image = dims(r, 4, 2, 5);
    image[0] = 3;
    vec![
        bn_case(r, &flat, true, false, false, false),
        bn_case(r, &flat, true, true, true, true),
        bn_case(r, &flat, false, true, false, false),
        bn_case(r, &image, true, true, true, true),
        bn_case(r, &image, true, false, false, true),
        bn_case(r, &image, false, true, true, true),
        bn_case(r, &[2, 3, 5], false, true, true, false),
        // Rows long enough for a workgroup each.
        bn_case(r, &[2, 3, 16, 17], true, true, true, true),
        bn_case(r, &[1, 2, 257], false, true, true, true),
        // Fused activations, in training and eval and with long rows.
        bn_act_case(r, &image, true, true, true, true, "relu"),
        bn_act_case(r, &image, true, false, true, true, "relu6"),
        bn_act_case(r, &image, false, true, true, true, "relu6"),
        bn_act_case(r, &[2, 3, 16, 17], true, true, true, true, "relu6"),
    ]
}

fn instance_norm_cases(r: &mut StdRng) -> Vec<Case> {
    let image = dims(r, 4, 2, 5);
    let seq = dims(r, 3, 3, 6);
    vec![
        case(with_affine(r, &image, &[image[1]], true, true), &[]),
        case(with_affine(r, &seq, &[seq[1]], false, false), &[]),
        case(
            with_affine(r, &[2, 3, 4], &[3], true, false),
            &[("eps", "0.01")],
        ),
        case(with_affine(r, &[1, 2, 16, 20], &[2], true, true), &[]),
    ]
}

fn layer_norm_cases(r: &mut StdRng) -> Vec<Case> {
    let s = dims(r, 3, 3, 7);
    let t = dims(r, 4, 2, 5);
    let one = s[2].to_string();
    let two = format!("{},{}", t[2], t[3]);
    vec![
        case(
            with_affine(r, &s, &s[2..], true, true),
            &[("normalized_shape", &one)],
        ),
        case(
            with_affine(r, &t, &t[2..], true, false),
            &[("normalized_shape", &two)],
        ),
        case(
            with_affine(r, &t, &t[2..], false, false),
            &[("normalized_shape", &two)],
        ),
        case(
            with_affine(r, &s[1..], &s[1..], false, true),
            &[("normalized_shape", &format!("{},{}", s[1], s[2]))],
        ),
        case(
            with_affine(r, &[3, 300], &[300], true, true),
            &[("normalized_shape", "300")],
        ),
    ]
}

fn group_norm_cases(r: &mut StdRng) -> Vec<Case> {
    let c = 2 * r.random_range(1..=3);
    let mut s = dims(r, 4, 2, 4);
    s[1] = c;
    let flat = [r.random_range(2..=4), 8];
    vec![
        case(with_affine(r, &s, &[c], true, true), &[("num_groups", "1")]),
        case(
            with_affine(r, &s, &[c], true, false),
            &[("num_groups", "2")],
        ),
        case(
            with_affine(r, &s, &[c], false, true),
            &[("num_groups", &c.to_string())],
        ),
        case(
            with_affine(r, &flat, &[8], true, true),
            &[("num_groups", "2")],
        ),
        case(
            with_affine(r, &[1, 4, 16, 16], &[4], true, true),
            &[("num_groups", "2")],
        ),
        // One image and a group per channel: the groups are the channels, whose sums
        // give the weight and bias gradients directly.
        case(
            with_affine(r, &[1, 4, 3, 5], &[4], true, true),
            &[("num_groups", "4")],
        ),
    ]
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "batch_norm",
        reference: batch_norm,
        cases: batch_norm_cases,
    },
    Check {
        op: "instance_norm",
        reference: instance_norm,
        cases: instance_norm_cases,
    },
    Check {
        op: "layer_norm",
        reference: layer_norm,
        cases: layer_norm_cases,
    },
    Check {
        op: "group_norm",
        reference: group_norm,
        cases: group_norm_cases,
    },
];
