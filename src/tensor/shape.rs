//! Shape arithmetic shared by the ops: strides, broadcasting and axis normalisation.

use crate::error::{Error, Result};
use crate::gpu::params::MAX_DIMS;
use crate::tensor::shape_str;

/// Row-major strides of a contiguous tensor.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// NumPy broadcasting of two shapes.
pub fn broadcast(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::op(
                    op,
                    format!(
                        "shapes {} and {} do not broadcast",
                        shape_str(a),
                        shape_str(b)
                    ),
                ))
            }
        };
    }
    Ok(out)
}

/// Strides that read a tensor of `shape` broadcast to `out` (0 along broadcast dims).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < lead || shape[i - lead] == 1 {
                0
            } else {
                own[i - lead]
            }
        })
        .collect()
}

/// A possibly negative axis as an index into `rank` dims.
pub fn axis(op: &str, dim: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r.max(1) {
        return Err(Error::op(
            op,
            format!("dim {dim} is out of range for a tensor of rank {rank}"),
        ));
    }
    Ok(d as usize)
}

/// Merges adjacent dims that are contiguous in every one of several stride sets,
/// so index arithmetic runs over as few dims as possible.
pub fn fold(shape: &[usize], stride_sets: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); stride_sets.len()];
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let mergeable = !out_shape.is_empty()
            && stride_sets
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| o.last() == Some(&(s[d] * shape[d])));
        if let (true, Some(last)) = (mergeable, out_shape.last_mut()) {
            *last *= shape[d];
            for (o, s) in out_strides.iter_mut().zip(stride_sets) {
                if let Some(x) = o.last_mut() {
                    *x = s[d];
                }
            }
        } else {
            out_shape.push(shape[d]);
            for (o, s) in out_strides.iter_mut().zip(stride_sets) {
                o.push(s[d]);
            }
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        for o in out_strides.iter_mut() {
            o.push(0);
        }
    }
    (out_shape, out_strides)
}

/// Refuses index spaces the kernels cannot address.
pub fn check_rank(op: &str, shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_DIMS {
        return Err(Error::op(
            op,
            format!(
                "shape {} has more than {MAX_DIMS} non-mergeable dims",
                shape_str(shape)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast("t", &[2, 1, 4], &[3, 1]).unwrap(), vec![2, 3, 4]);
        assert!(broadcast("t", &[2, 3], &[4]).is_err());
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), vec![0, 1, 0]);
    }

    #[test]
    fn fold_merges_contiguous_dims() {
        let s = strides(&[2, 3, 4]);
        let (shape, st) = fold(&[2, 3, 4], &[s.clone(), s]);
        assert_eq!(shape, vec![24]);
        assert_eq!(st, vec![vec![1], vec![1]]);
        let (shape, _) = fold(&[2, 3, 4], &[vec![12, 4, 1], vec![0, 4, 1]]);
        assert_eq!(shape, vec![2, 12]);
    }
}
