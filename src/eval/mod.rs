//! Evaluation: GPU K-means, cluster-to-class matching, segmentation metrics.

pub mod kmeans;
pub mod linear_probe;
pub mod metrics;
pub mod pca;
pub mod unsupervised;
