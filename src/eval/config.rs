//! The `eval` section of an experiment file: when the network is scored, K-means
//! over image prototypes, and the linear probe.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalCfg {
    /// Evaluate every this many steps (0: only at the start and the end).
    #[serde(default)]
    pub every: usize,
    #[serde(default)]
    pub kmeans: KMeansCfg,
    /// Linear probe on frozen features; omitted: no probe.
    pub linear_probe: Option<LinearProbeCfg>,
    /// Validation images to evaluate (0: all).
    #[serde(default)]
    pub limit: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KMeansCfg {
    /// Clusters for the foreground (the background is its own class, as in MaskContrast).
    pub clusters: Option<usize>,
    pub restarts: usize,
    /// One evaluation per seed; the report gives mean and std.
    pub seeds: Vec<u64>,
    /// PCA whitening to this many dims before clustering (0: none).
    pub pca_dim: usize,
    /// Whose saliency makes an image's prototype and its foreground.
    pub saliency: SaliencySource,
}

impl Default for KMeansCfg {
    fn default() -> Self {
        KMeansCfg {
            clusters: None,
            restarts: 3,
            seeds: vec![0, 1, 2, 3, 4],
            pca_dim: 32,
            saliency: SaliencySource::default(),
        }
    }
}

/// Where K-means evaluation takes each image's salient pixels from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaliencySource {
    /// The method's own saliency head (logit > 0), as the MaskContrast authors
    /// evaluate: what the background is counts towards the score.
    #[default]
    Predicted,
    /// The dataset's saliency masks: only the clustering of the foreground is scored.
    Dataset,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearProbeCfg {
    /// Optimisation steps of the 1x1 convolution.
    pub iters: usize,
    pub lr: f64,
    /// Training images whose frozen embeddings the probe learns from.
    #[serde(default = "default_probe_images")]
    pub images: usize,
    #[serde(default = "default_probe_momentum")]
    pub momentum: f64,
}

fn default_probe_images() -> usize {
    128
}

fn default_probe_momentum() -> f64 {
    0.9
}
