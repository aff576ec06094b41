//! Reference and cases of pixel_contrast.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

/// The loss straight from the formula: anchors and memory rows as candidates.
fn pixel_contrast(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let z = input(x, "features")?;
    let labels = input(x, "labels")?;
    let t = a.float("temperature")?;
    let k = t / a.float("base_temperature")?;
    let d = z.shape[1];
    let mut rows: Vec<(&[f64], f64)> = z.data.chunks(d).zip(labels.data.iter().copied()).collect();
    if let (Some((_, mem)), Some((_, mem_labels))) = (
        x.iter().find(|(n, _)| n == "memory_features"),
        x.iter().find(|(n, _)| n == "memory_labels"),
    ) {
        rows.extend(mem.data.chunks(d).zip(mem_labels.data.iter().copied()));
    }
    let sim = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(p, q)| p * q).sum::<f64>() / t;
    let (mut total, mut counted) = (0.0, 0.0);
    for (i, za) in z.data.chunks(d).enumerate() {
        let la = labels.data[i];
        let candidates = rows.iter().enumerate().filter(|(j, _)| *j != i);
        let negatives: f64 = candidates
            .clone()
            .filter(|(_, (_, l))| *l != la)
            .map(|(_, (zn, _))| sim(za, zn).exp())
            .sum();
        let positives: Vec<f64> = candidates
            .filter(|(_, (_, l))| *l == la)
            .map(|(_, (zp, _))| sim(za, zp))
            .collect();
        if positives.is_empty() {
            continue;
        }
        let mean_log_prob: f64 = positives
            .iter()
            .map(|s| s - (s.exp() + negatives).ln())
            .sum::<f64>()
            / positives.len() as f64;
        total += -k * mean_log_prob;
        counted += 1.0;
    }
    Ok(HostTensor::new(&[], vec![total / counted]))
}

/// `n` random unit rows of `d` dims.
fn unit_rows(r: &mut StdRng, n: usize, d: usize) -> HostTensor {
    let mut t = uniform(r, &[n, d]);
    for row in t.data.chunks_mut(d) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    t
}

fn labels(r: &mut StdRng, n: usize, classes: u32) -> HostTensor {
    HostTensor::new(
        &[n],
        (0..n).map(|_| r.random_range(0..classes) as f64).collect(),
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut out = Vec::new();
    // (anchors, dim, memory rows, classes, temperature); dim 261 spans two backward chunks.
    for (n, d, m, classes, t) in [
        (7, 5, 0, 3, "0.1"),
        (6, 3, 5, 3, "0.5"),
        (9, 37, 4, 4, "0.1"),
        (3, 261, 2, 2, "0.2"),
    ] {
        let features = unit_rows(r, n, d);
        let mut anchor_labels = labels(r, n, classes);
        let memory_features = (m > 0).then(|| unit_rows(r, m, d));
        let mut memory_labels = labels(r, m, classes);
        // With one class drawn for every row there are no negatives and the loss is 0,
        // where a relative error says nothing: such a draw is made again.
        while anchor_labels
            .data
            .iter()
            .chain(&memory_labels.data)
            .all(|&l| l == anchor_labels.data[0])
        {
            anchor_labels = labels(r, n, classes);
            memory_labels = labels(r, m, classes);
        }
        let mut inputs = vec![("features", features), ("labels", anchor_labels)];
        if let Some(mf) = memory_features {
            inputs.push(("memory_features", mf));
            inputs.push(("memory_labels", memory_labels));
        }
        out.push(case(inputs, &[("temperature", t)]));
    }
    // Anchor 5 has no positive (left out of the mean); the others share labels.
    out.push(case(
        vec![
            ("features", unit_rows(r, 6, 4)),
            (
                "labels",
                HostTensor::new(&[6], vec![0.0, 0.0, 1.0, 0.0, 1.0, 2.0]),
            ),
        ],
        &[("base_temperature", "0.1")],
    ));
    // Label 3 occurs once among anchors: its positives are in memory only.
    out.push(case(
        vec![
            ("features", unit_rows(r, 4, 6)),
            ("labels", HostTensor::new(&[4], vec![3.0, 1.0, 1.0, 2.0])),
            ("memory_features", unit_rows(r, 3, 6)),
            ("memory_labels", HostTensor::new(&[3], vec![3.0, 3.0, 2.0])),
        ],
        &[],
    ));
    out
}

pub static CHECKS: &[Check] = &[Check {
    op: "pixel_contrast",
    reference: pixel_contrast,
    cases,
}];

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::autograd::Var;
    use crate::gpu::Gpu;
    use crate::op_table;
    use crate::tensor::Tensor;

    /// At T = 0.002 similarities reach 500: exp alone would overflow f32, so the
    /// kernels must shift their log-sum-exps; the reference computes in f64.
    #[test]
    fn stable_at_low_temperature() {
        let gpu = Gpu::shared().unwrap();
        let mut r = StdRng::seed_from_u64(3);
        let (n, d) = (12, 40);
        let z = unit_rows(&mut r, n, d).to_f32();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let given = [
            ("temperature".to_string(), "0.002".to_string()),
            ("base_temperature".to_string(), "0.07".to_string()),
        ];
        let spec = op_table::find("pixel_contrast").unwrap();
        let attrs = Attrs::resolve("pixel_contrast", spec.attrs, &given).unwrap();
        let inputs = [
            ("features".to_string(), HostTensor::from_f32(&[n, d], &z)),
            (
                "labels".to_string(),
                HostTensor::new(&[n], labels.iter().map(|&l| l as f64).collect()),
            ),
        ];
        let want = pixel_contrast(&inputs, &attrs).unwrap().data[0];
        let zt = Var::leaf(Tensor::from_slice(&gpu, &z, &[n, d]).unwrap());
        let lt = Var::constant(Tensor::from_u32(&gpu, &labels, &[n]).unwrap());
        let loss = zt.pixel_contrast(&lt, None, 0.002, 0.07).unwrap();
        let got = loss.value().item().unwrap() as f64;
        assert!((got - want).abs() / want.abs() < 1e-4, "{got} vs {want}");
        let grads = loss.backward().unwrap();
        let g = grads.get(&zt).unwrap().to_vec().unwrap();
        assert!(g.iter().all(|v| v.is_finite()));
    }
}
