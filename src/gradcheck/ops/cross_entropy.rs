//! Reference and cases of cross_entropy.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gradcheck::check::{case, dims, input, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

/// torch.nn.functional.cross_entropy, one pixel at a time.
fn cross_entropy(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let logits = input(x, "input")?;
    let target = input(x, "target")?;
    let weight = x.iter().find(|(n, _)| n == "weight").map(|(_, t)| t);
    let ignore = a.int("ignore_index")?;
    let (batch, classes) = (logits.shape[0], logits.shape[1]);
    let inner: usize = logits.shape[2..].iter().product();
    let mut losses = vec![0.0; batch * inner];
    let mut weight_total = 0.0;
    for b in 0..batch {
        for s in 0..inner {
            let pixel = b * inner + s;
            let y = target.data[pixel] as i64;
            if y == ignore {
                continue;
            }
            let lane: Vec<f64> = (0..classes)
                .map(|c| logits.data[(b * classes + c) * inner + s])
                .collect();
            let lse = lane.iter().map(|v| v.exp()).sum::<f64>().ln();
            let w = weight.map_or(1.0, |w| w.data[y as usize]);
            losses[pixel] = w * (lse - lane[y as usize]);
            weight_total += w;
        }
    }
    let total: f64 = losses.iter().sum();
    match a.str("reduction")? {
        "none" => Ok(HostTensor::new(&target.shape, losses)),
        "sum" => Ok(HostTensor::new(&[], vec![total])),
        "mean" => Ok(HostTensor::new(&[], vec![total / weight_total])),
        other => Err(Error::op("cross_entropy", format!("reduction {other:?}"))),
    }
}

/// Labels in [0, classes), about a fifth of them `ignore`; the first is never ignored
/// (even when `ignore` is a class), so a mean always has something to average.
fn labels(r: &mut StdRng, shape: &[usize], classes: usize, ignore: u32) -> HostTensor {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            if i == 0 {
                let kept: Vec<usize> = (0..classes).filter(|&c| c as u32 != ignore).collect();
                kept[r.random_range(0..kept.len())] as f64
            } else if r.random_bool(0.2) {
                ignore as f64
            } else {
                r.random_range(0..classes) as f64
            }
        })
        .collect();
    HostTensor::new(shape, data)
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut out = Vec::new();
    for (reduction, weighted) in [("mean", true), ("sum", false), ("none", true)] {
        let s = dims(r, 4, 2, 5);
        let target_shape = [s[0], s[2], s[3]];
        let mut inputs = vec![
            ("input", HostTensor::uniform(r, &s, -3.0, 3.0)),
            ("target", labels(r, &target_shape, s[1], 255)),
        ];
        if weighted {
            inputs.push(("weight", HostTensor::uniform(r, &[s[1]], 0.2, 2.0)));
        }
        out.push(case(inputs, &[("reduction", reduction)]));
    }
    // [N, C] with an ignore_index that is a class.
    let (n, c) = (r.random_range(3..9), r.random_range(3..7));
    out.push(case(
        vec![
            ("input", HostTensor::uniform(r, &[n, c], -3.0, 3.0)),
            ("target", labels(r, &[n], c, 1)),
            ("weight", HostTensor::uniform(r, &[c], 0.2, 2.0)),
        ],
        &[("ignore_index", "1"), ("reduction", "mean")],
    ));
    // [B, C, L] without weights, torch's default ignore_index of -100 (nothing ignored).
    let s = dims(r, 3, 2, 5);
    out.push(case(
        vec![
            ("input", HostTensor::uniform(r, &s, -3.0, 3.0)),
            ("target", labels(r, &[s[0], s[2]], s[1], 0)),
        ],
        &[("ignore_index", "-100")],
    ));
    out
}

pub static CHECKS: &[Check] = &[Check {
    op: "cross_entropy",
    reference: cross_entropy,
    cases,
}];
