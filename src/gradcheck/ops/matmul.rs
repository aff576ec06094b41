//! Reference and cases of matmul.

use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, input, uniform, Check, Inputs};
use crate::gradcheck::host::HostTensor;

fn matmul(x: &Inputs) -> Result<HostTensor> {
    let (a, b) = (input(x, "input")?, input(x, "other")?);
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    let pa: usize = a.shape[..ra - 2].iter().product();
    let pb: usize = b.shape[..rb - 2].iter().product();
    let batch = pa.max(pb);
    let mut out = vec![0.0; batch * m * n];
    for t in 0..batch {
        let (ta, tb) = (if pa == 1 { 0 } else { t }, if pb == 1 { 0 } else { t });
        for i in 0..m {
            for j in 0..n {
                out[(t * m + i) * n + j] = (0..k)
                    .map(|l| a.data[(ta * m + i) * k + l] * b.data[(tb * k + l) * n + j])
                    .sum();
            }
        }
    }
    let mut shape = if pa >= pb {
        a.shape[..ra - 2].to_vec()
    } else {
        b.shape[..rb - 2].to_vec()
    };
    shape.extend([m, n]);
    Ok(HostTensor::new(&shape, out))
}

pub static CHECKS: &[Check] = &[Check {
    op: "matmul",
    reference: |x, _| matmul(x),
    cases: |r| {
        let (m, k, n) = (
            r.random_range(1..7),
            r.random_range(1..9),
            r.random_range(1..7),
        );
        vec![
            case(
                vec![
                    ("input", uniform(r, &[m, k])),
                    ("other", uniform(r, &[k, n])),
                ],
                &[],
            ),
            case(
                vec![
                    ("input", uniform(r, &[2, m, k])),
                    ("other", uniform(r, &[2, k, n])),
                ],
                &[],
            ),
            case(
                vec![
                    ("input", uniform(r, &[3, m, k])),
                    ("other", uniform(r, &[k, n])),
                ],
                &[],
            ),
            case(
                vec![
                    ("input", uniform(r, &[m, k])),
                    ("other", uniform(r, &[2, k, n])),
                ],
                &[],
            ),
        ]
    },
}];
