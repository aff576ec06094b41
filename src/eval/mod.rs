//! Evaluation: GPU K-means, cluster-to-class matching, argmax of class logits,
//! segmentation metrics.

pub mod config;
pub mod kmeans;
pub mod linear_probe;
pub mod metrics;
pub mod pca;
pub mod supervised;
pub mod unsupervised;

/// Validation images an evaluation scores: `limit` of `len`, or all for 0.
pub(crate) fn images_to_score(len: usize, limit: usize) -> usize {
    if limit == 0 {
        len
    } else {
        limit.min(len)
    }
}
