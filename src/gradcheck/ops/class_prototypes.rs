//! Reference and cases of class_prototypes.

use rand::rngs::StdRng;
use rand::Rng;

use super::proto_contrast::{labels, map_dims, pixel};
use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

fn class_prototypes(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let (f, t) = (input(x, "features")?, input(x, "target")?);
    let (classes, ignore) = (
        a.int("num_classes")? as usize,
        a.int("ignore_index")? as f64,
    );
    let (batch, d, hw) = map_dims(f);
    let mut sums = vec![0.0; classes * d];
    let mut counts = vec![0.0; classes];
    for b in 0..batch {
        for s in 0..hw {
            let y = t.data[b * hw + s];
            if y == ignore || y as usize >= classes {
                continue;
            }
            let c = y as usize;
            counts[c] += 1.0;
            for (j, v) in pixel(f, b, s).into_iter().enumerate() {
                sums[c * d + j] += v;
            }
        }
    }
    let data = (0..classes * d)
        .map(|i| {
            let n = counts[i / d];
            if n > 0.0 {
                sums[i] / n
            } else {
                0.0
            }
        })
        .collect();
    Ok(HostTensor::new(&[classes, d], data))
}

/// Labels drawn from `present` classes of `classes` (so some may be absent).
fn one(r: &mut StdRng, classes: usize, present: usize) -> Case {
    let b = r.random_range(1..=2);
    let d = r.random_range(3..=8);
    let hw = dims(r, 2, 1, 5);
    let t = labels(r, &[b, hw[0], hw[1]], present, 255);
    let classes = classes.to_string();
    case(
        vec![
            ("features", uniform(r, &[b, d, hw[0], hw[1]])),
            ("target", t),
        ],
        &[("num_classes", &classes)],
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let c = r.random_range(2..=6);
    vec![one(r, c, c), one(r, c + 1, c), one(r, 2, 2)]
}

pub static CHECKS: &[Check] = &[Check {
    op: "class_prototypes",
    reference: class_prototypes,
    cases,
}];
