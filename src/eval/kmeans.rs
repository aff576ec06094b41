//! K-means on the GPU (shaders/kmeans.wgsl): k-means++ initialisation from a seed,
//! Lloyd iterations, several restarts keeping the lowest inertia.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::kernels::{matmul_views, reduce_sum, strided_copy, MatView};
use crate::tensor::{DType, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct KMeansOpts {
    pub k: usize,
    pub iters: usize,
    pub restarts: usize,
    pub seed: u64,
    /// Stop when the inertia improves by less than this fraction.
    pub tol: f64,
}

pub struct KMeansResult {
    pub centroids: Tensor,
    /// Cluster of every point, on the host.
    pub labels: Vec<u32>,
    pub inertia: f64,
}

fn params(n: usize, d: usize, k: usize) -> Result<Params> {
    Ok(Params::new("kmeans")
        .idx("n", n)?
        .idx("d", d)?
        .idx("k", k)?
        .align16())
}

/// Nearest centroid of every point: (labels u32 [n], squared distances f32 [n]).
pub fn assign(points: &Tensor, centroids: &Tensor) -> Result<(Tensor, Tensor)> {
    let (n, d, k) = (points.shape()[0], points.shape()[1], centroids.shape()[0]);
    let gpu = points.gpu();
    let labels = Tensor::empty(gpu, &[n], DType::U32)?;
    let dist = Tensor::empty(gpu, &[n], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("kmeans", "assign"),
        &[
            points.buffer(),
            centroids.buffer(),
            labels.buffer(),
            dist.buffer(),
        ],
        &params(n, d, k)?,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok((labels, dist))
}

/// One Lloyd update: the mean of each cluster's points.
fn update(points: &Tensor, centroids: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (n, d, k) = (points.shape()[0], points.shape()[1], centroids.shape()[0]);
    let gpu = points.gpu();
    let onehot = Tensor::empty(gpu, &[n, k], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("kmeans", "onehot"),
        &[labels.buffer(), onehot.buffer()],
        &params(n, d, k)?,
        gpu.grid((n * k) as u64, WORKGROUP),
    )?;
    // sums[k, d] = onehot^T [k, n] @ points [n, d]
    let sums = matmul_views(
        &onehot,
        MatView::contiguous(n, k, false).t(),
        points,
        MatView::contiguous(n, d, false),
        1,
        k,
        n,
        d,
    )?;
    let counts = reduce_sum("kmeans", &onehot, &[0], false, 1.0)?;
    let out = Tensor::empty(gpu, &[k, d], DType::F32)?;
    gpu.dispatch(
        &Kernel::new("kmeans", "update"),
        &[
            centroids.buffer(),
            sums.buffer(),
            counts.buffer(),
            out.buffer(),
        ],
        &params(n, d, k)?,
        gpu.grid((k * d) as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// k-means++: each next centre is a point drawn with probability proportional to its
/// squared distance to the nearest centre chosen so far.
fn init_plus_plus(points: &Tensor, k: usize, rng: &mut StdRng) -> Result<Tensor> {
    let (n, d) = (points.shape()[0], points.shape()[1]);
    let gpu = points.gpu();
    let centroids = Tensor::empty(gpu, &[k, d], DType::F32)?;
    let copy_row = |src: usize, dst: usize| {
        strided_copy(
            "kmeans",
            points,
            &centroids,
            &[d],
            &[1],
            src * d,
            &[1],
            dst * d,
        )
    };
    copy_row(rng.random_range(0..n), 0)?;
    for c in 1..k {
        let chosen = centroids.reshape(&[k, d])?;
        let prefix = crate::ops::kernels::slice(&chosen, 0, 0, c as i64, 1)?;
        let (_, dist) = assign(points, &prefix)?;
        let w = dist.to_vec()?;
        let total: f64 = w.iter().map(|&x| x as f64).sum();
        let pick = if total > 0.0 {
            let mut r = rng.random_range(0.0..total);
            w.iter()
                .position(|&x| {
                    r -= x as f64;
                    r < 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.random_range(0..n)
        };
        copy_row(pick, c)?;
    }
    Ok(centroids)
}

/// Clusters the rows of `points` [n, d].
pub fn kmeans(points: &Tensor, opts: &KMeansOpts) -> Result<KMeansResult> {
    if points.rank() != 2 || points.dtype() != DType::F32 {
        return Err(Error::op(
            "kmeans",
            format!(
                "points must be f32 [n, d], got {:?} {}",
                points.shape(),
                points.dtype()
            ),
        ));
    }
    let n = points.shape()[0];
    if opts.k == 0 || opts.k > n {
        return Err(Error::op(
            "kmeans",
            format!("k = {} must be in 1..={n} (the number of points)", opts.k),
        ));
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut best: Option<KMeansResult> = None;
    for _ in 0..opts.restarts.max(1) {
        let mut centroids = init_plus_plus(points, opts.k, &mut rng)?;
        let mut last = f64::INFINITY;
        let mut labels;
        let mut inertia;
        let mut it = 0;
        loop {
            let (l, dist) = assign(points, &centroids)?;
            labels = l;
            inertia = reduce_sum("kmeans", &dist, &[0], false, 1.0)?.item()? as f64;
            it += 1;
            let converged = last.is_finite() && last - inertia <= opts.tol * last.max(1e-30);
            if it > opts.iters || converged {
                break;
            }
            last = inertia;
            centroids = update(points, &centroids, &labels)?;
        }
        if best.as_ref().is_none_or(|b| inertia < b.inertia) {
            best = Some(KMeansResult {
                labels: labels.to_vec_u32()?,
                centroids,
                inertia,
            });
        }
    }
    best.ok_or_else(|| Error::op("kmeans", "no restart ran"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn separates_well_separated_blobs_and_is_seeded() {
        let gpu = Gpu::shared().unwrap();
        let centres = [[0.0f32, 0.0, 0.0], [10.0, 0.0, 5.0], [0.0, -8.0, 3.0]];
        let mut rng = StdRng::seed_from_u64(1);
        let mut data = Vec::new();
        let mut truth = Vec::new();
        for i in 0..300 {
            let c = i % 3;
            truth.push(c);
            for x in centres[c] {
                data.push(x + rng.random_range(-1.0f32..1.0));
            }
        }
        let pts = Tensor::from_slice(&gpu, &data, &[300, 3]).unwrap();
        let opts = KMeansOpts {
            k: 3,
            iters: 50,
            restarts: 3,
            seed: 7,
            tol: 1e-6,
        };
        let r = kmeans(&pts, &opts).unwrap();
        // Same cluster iff same blob.
        for i in 0..300 {
            for j in [0, 1, 2] {
                assert_eq!(r.labels[i] == r.labels[j], truth[i] == truth[j]);
            }
        }
        assert!(r.inertia < 300.0 * 3.0 / 3.0 * 1.1, "inertia {}", r.inertia);
        let again = kmeans(&pts, &opts).unwrap();
        assert_eq!(again.labels, r.labels);
        assert!(kmeans(&pts, &KMeansOpts { k: 301, ..opts }).is_err());
    }
}
