//! Reference and cases of label_transfer (forward only: its output is u32 labels).

use rand::rngs::StdRng;
use rand::Rng;

use super::proto_contrast::{dot, map_dims, normalized, pixel, row};
use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn label_transfer(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let (f, p) = (input(x, "features")?, input(x, "prototypes")?);
    let (scale, threshold) = (a.float("scale")?, a.float("threshold")?);
    let fraction = a.float("balance_fraction")?;
    let ignore = a.int("ignore_index")? as f64;
    let (batch, _, hw) = map_dims(f);
    let classes = p.shape[0];
    let protos: Vec<Vec<f64>> = (0..classes).map(|c| normalized(row(p, c))).collect();
    let mut assigned = Vec::new();
    for b in 0..batch {
        for s in 0..hw {
            let v = normalized(&pixel(f, b, s));
            let cos: Vec<f64> = protos.iter().map(|q| dot(q, &v)).collect();
            let mut best = 0;
            for c in 1..classes {
                if cos[c] > cos[best] {
                    best = c;
                }
            }
            let sum: f64 = cos.iter().map(|c| (scale * (c - cos[best])).exp()).sum();
            assigned.push((best, 1.0 / sum));
        }
    }
    let mut thr = vec![threshold; classes];
    if a.bool("class_balanced")? {
        for (c, t) in thr.iter_mut().enumerate() {
            let mut conf: Vec<f64> = assigned
                .iter()
                .filter(|(l, _)| *l == c)
                .map(|(_, v)| *v)
                .collect();
            if conf.is_empty() {
                continue;
            }
            conf.sort_by(|x, y| y.total_cmp(x));
            let k = ((fraction * conf.len() as f64).ceil() as usize).clamp(1, conf.len());
            *t = conf[k - 1].min(threshold);
        }
    }
    let data = assigned
        .iter()
        .map(|&(l, c)| if c >= thr[l] { l as f64 } else { ignore })
        .collect();
    Ok(HostTensor::new(&[batch, f.shape[2], f.shape[3]], data))
}

fn one(r: &mut StdRng, attrs: &[(&str, &str)]) -> Case {
    let b = r.random_range(1..=2);
    let d = r.random_range(3..=8);
    let hw = dims(r, 2, 2, 5);
    let c = r.random_range(2..=6);
    case(
        vec![
            ("features", uniform(r, &[b, d, hw[0], hw[1]])),
            ("prototypes", uniform(r, &[c, d])),
        ],
        attrs,
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    vec![
        one(r, &[]),
        one(r, &[("scale", "3"), ("threshold", "0.5")]),
        one(r, &[("class_balanced", "true")]),
        one(
            r,
            &[
                ("class_balanced", "true"),
                ("balance_fraction", "0.3"),
                ("threshold", "0.95"),
                ("ignore_index", "99"),
            ],
        ),
    ]
}

pub static CHECKS: &[Check] = &[Check {
    op: "label_transfer",
    reference: label_transfer,
    cases,
}];
