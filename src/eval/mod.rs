//! Evaluation: GPU K-means, cluster-to-class matching, segmentation metrics.

pub mod kmeans;
pub mod metrics;
