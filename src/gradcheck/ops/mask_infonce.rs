//! Reference and cases of mask_infonce: logits over every key and queue row computed
//! plainly, without assuming the inputs are normalised.

use rand::rngs::StdRng;
use rand::Rng;

use super::masked_average::random_mask;
use crate::error::{Error, Result};
use crate::gradcheck::check::{case, input, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn mask_infonce(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let (q, mask, keys) = (
        input(x, "query")?,
        input(x, "mask")?,
        input(x, "key_prototypes")?,
    );
    let queue = x.iter().find(|(n, _)| n == "queue").map(|(_, t)| t);
    let t = a.float("temperature")? as f32 as f64;
    let (b, d, hw) = (q.shape[0], q.shape[1], q.shape[2] * q.shape[3]);
    let mut rows: Vec<&[f64]> = keys.data.chunks(d).collect();
    if let Some(queue) = queue {
        rows.extend(queue.data.chunks(d));
    }
    let (mut total, mut count) = (0.0, 0.0);
    for bi in 0..b {
        for p in 0..hw {
            let m = mask.data[bi * hw + p];
            if m == 0.0 {
                continue;
            }
            let qi: Vec<f64> = (0..d).map(|e| q.data[(bi * d + e) * hw + p]).collect();
            let logits: Vec<f64> = rows
                .iter()
                .map(|k| qi.iter().zip(*k).map(|(a, b)| a * b).sum::<f64>() / t)
                .collect();
            let mx = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + logits.iter().map(|l| (l - mx).exp()).sum::<f64>().ln();
            total += m * (lse - logits[bi]);
            count += m;
        }
    }
    if count == 0.0 {
        return Err(Error::op("mask_infonce", "reference: no salient pixel"));
    }
    Ok(HostTensor::new(&[], vec![total / count]))
}

/// Rows of length `d` (consecutive values, or strided by `stride` when > 1) scaled
/// to unit norm, as MaskContrast's embeddings are.
fn normalized(r: &mut StdRng, shape: &[usize], d: usize, stride: usize) -> HostTensor {
    let mut t = HostTensor::uniform(r, shape, -1.0, 1.0);
    let n = t.numel();
    let block = d * stride;
    for base in (0..n).step_by(block) {
        for s in 0..stride {
            let idx: Vec<usize> = (0..d).map(|e| base + s + e * stride).collect();
            let norm = idx
                .iter()
                .map(|&i| t.data[i] * t.data[i])
                .sum::<f64>()
                .sqrt();
            for i in idx {
                t.data[i] /= norm;
            }
        }
    }
    t
}

fn nce_case(r: &mut StdRng, b: usize, d: usize, hw: (usize, usize), k: usize, t: &str) -> Case {
    let (h, w) = hw;
    let mut mask = random_mask(r, &[b, h, w], 0.0, 0.9, false);
    if mask.data.iter().all(|&v| v == 0.0) {
        let i = r.random_range(0..mask.numel());
        mask.data[i] = 1.0;
    }
    let mut inputs = vec![
        ("query", normalized(r, &[b, d, h, w], d, h * w)),
        ("mask", mask),
        ("key_prototypes", normalized(r, &[b, d], d, 1)),
    ];
    if k > 0 {
        inputs.push(("queue", normalized(r, &[k, d], d, 1)));
    }
    case(inputs, &[("temperature", t)])
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut odd = |lo: usize, hi: usize| r.random_range(lo / 2..=hi / 2) * 2 + 1;
    let shapes: Vec<(usize, usize, usize, usize)> = (0..4)
        .map(|_| (odd(1, 3), odd(3, 7), odd(1, 5), odd(3, 7)))
        .collect();
    let [s0, s1, s2, s3] = [shapes[0], shapes[1], shapes[2], shapes[3]];
    vec![
        nce_case(r, s0.0, s0.1, (s0.2, s0.3), 0, "0.5"),
        nce_case(r, s1.0 + 1, s1.1, (s1.2, s1.3), 3, "0.2"),
        nce_case(r, s2.0, s2.1, (s2.2, s2.3), 17, "0.5"),
        nce_case(r, s3.0 + 1, s3.1, (s3.2, s3.3), 17, "0.2"),
        nce_case(r, 2, 4, (1, 1), 0, "0.2"),
        // More pixels per image than one key-gradient chunk (128).
        nce_case(r, 2, 3, (11, 13), 3, "0.5"),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "mask_infonce",
    reference: mask_infonce,
    cases,
}];
