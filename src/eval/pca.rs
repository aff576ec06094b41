//! PCA whitening of a few hundred feature vectors (host side, f64): centre, rotate
//! onto the top principal axes, scale each to unit variance.

use nalgebra::{DMatrix, SymmetricEigen};

/// Whitens `rows` (each of length `d`) to `k` dims; `k >= d` keeps every axis.
pub fn whiten(rows: &[Vec<f32>], k: usize) -> Vec<Vec<f32>> {
    let n = rows.len();
    let d = rows.first().map_or(0, |r| r.len());
    if n < 2 || d == 0 {
        return rows.to_vec();
    }
    let x = DMatrix::from_fn(n, d, |i, j| rows[i][j] as f64);
    let mean = x.row_mean();
    let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n as f64 - 1.0);
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let keep = &order[..k.min(d)];
    (0..n)
        .map(|i| {
            keep.iter()
                .map(|&c| {
                    let axis = eig.eigenvectors.column(c);
                    let proj: f64 = (0..d).map(|j| centred[(i, j)] * axis[j]).sum();
                    (proj / (eig.eigenvalues[c].max(0.0) + 1e-8).sqrt()) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitened_axes_have_unit_variance_and_no_correlation() {
        // Correlated 3-D data on a noisy line.
        let rows: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                let t = i as f32 / 20.0;
                let e = ((i * 37 % 11) as f32 - 5.0) * 0.05;
                vec![t, 2.0 * t + e, -t + 0.5 * e]
            })
            .collect();
        let w = whiten(&rows, 2);
        assert_eq!(w[0].len(), 2);
        for a in 0..2 {
            for b in 0..2 {
                let c: f64 = w.iter().map(|r| r[a] as f64 * r[b] as f64).sum::<f64>() / 199.0;
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((c - want).abs() < 1e-3, "cov[{a}][{b}] = {c}");
            }
        }
    }
}
