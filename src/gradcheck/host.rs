//! Host f64 tensors for the CPU references of gradient checks.

use rand::Rng;

use crate::tensor::shape::strides;

#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl HostTensor {
    pub fn new(shape: &[usize], data: Vec<f64>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?}"
        );
        HostTensor {
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn zeros(shape: &[usize]) -> Self {
        Self::new(shape, vec![0.0; shape.iter().product()])
    }

    /// Uniform values in [lo, hi).
    pub fn uniform(rng: &mut impl Rng, shape: &[usize], lo: f64, hi: f64) -> Self {
        let n = shape.iter().product();
        Self::new(shape, (0..n).map(|_| rng.random_range(lo..hi)).collect())
    }

    /// Values with magnitude in [lo, hi) and a random sign (kept away from zero).
    pub fn signed_away_from_zero(rng: &mut impl Rng, shape: &[usize], lo: f64, hi: f64) -> Self {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                let m = rng.random_range(lo..hi);
                if rng.random_bool(0.5) {
                    m
                } else {
                    -m
                }
            })
            .collect();
        Self::new(shape, data)
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn strides(&self) -> Vec<usize> {
        strides(&self.shape)
    }

    pub fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        Self::new(&self.shape, self.data.iter().map(|&v| f(v)).collect())
    }

    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }

    pub fn from_f32(shape: &[usize], data: &[f32]) -> Self {
        Self::new(shape, data.iter().map(|&v| v as f64).collect())
    }
}

/// Multi-index of flat position `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// ||a - b|| / ||b|| (or ||a - b|| when b is zero).
pub fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    if norm == 0.0 {
        diff
    } else {
        diff / norm
    }
}
