//! MaskContrast's unsupervised evaluation: one saliency-masked prototype per
//! validation image, PCA whitening, K-means into (classes - 1) clusters, the
//! salient pixels of an image take its cluster and the rest is background, then
//! clusters are matched to classes (Hungarian, or majority vote) and scored; repeated
//! per seed, reported as mean and standard deviation.

use serde::{Deserialize, Serialize};

use super::images_to_score;
use super::kmeans::{kmeans, KMeansOpts};
use super::metrics::{match_clusters, mean_std, Confusion, Scores};
use super::pca::whiten;
use crate::autograd::{no_grad, Var};
use crate::data::dataset::Dataset;
use crate::data::loader::plain;
use crate::data::voc::IGNORE;
use crate::error::{Error, Result};
use crate::experiment::config::KMeansCfg;
use crate::gpu::Gpu;
use crate::tensor::Tensor;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterEval {
    pub miou_mean: f64,
    pub miou_std: f64,
    pub pixel_accuracy_mean: f64,
    /// Scores of each seed.
    pub per_seed: Vec<Scores>,
}

/// What clustering needs of each validation image.
struct ImageProto {
    /// L2-normalised mean embedding of its salient pixels.
    proto: Vec<f32>,
    saliency: Vec<u8>,
    labels: Vec<u8>,
}

impl ImageProto {
    fn has_salient(&self) -> bool {
        self.saliency.iter().any(|&s| s != 0)
    }
}

fn prototypes(
    gpu: &Gpu,
    embed: &dyn Fn(&Var) -> Result<Var>,
    data: &Dataset,
    size: usize,
    batch: usize,
    count: usize,
) -> Result<Vec<ImageProto>> {
    let mut out = Vec::new();
    for start in (0..count).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(count)).collect();
        let b = plain(gpu, data, &idx, size)?;
        let emb = no_grad(|| embed(&Var::constant(b.images.clone())))?;
        let d = emb.shape()[1];
        let p = no_grad(|| {
            emb.masked_average_nonempty(&b.saliency)?
                .l2_normalize(1, 1e-12)
        })?;
        let values = p.value().to_vec()?;
        let pixels = size * size;
        for (i, row) in values.chunks(d).enumerate() {
            out.push(ImageProto {
                proto: row.to_vec(),
                saliency: b.saliency_host[i * pixels..(i + 1) * pixels].to_vec(),
                labels: b.labels[i * pixels..(i + 1) * pixels].to_vec(),
            });
        }
    }
    Ok(out)
}

/// What an evaluation leaves besides its scores (first seed).
pub struct ClusterOutcome {
    pub eval: ClusterEval,
    /// Predicted class map of every evaluated image.
    pub predictions: Vec<Vec<u8>>,
    /// Per class, the L2-normalised mean prototype of the images matched to it (row
    /// 0, the background, is zero): what `wgseg infer` assigns new images by.
    pub class_centroids: Vec<Vec<f32>>,
}

fn normalised(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v
    }
}

/// Clusters the validation images' prototypes and scores the segmentation it implies.
/// `embed` maps a batch of images to L2-normalised embeddings [B, D, S, S].
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    gpu: &Gpu,
    embed: &dyn Fn(&Var) -> Result<Var>,
    data: &Dataset,
    size: usize,
    batch: usize,
    limit: usize,
    cfg: &KMeansCfg,
    tick: &mut dyn FnMut(),
) -> Result<ClusterOutcome> {
    let classes = data.num_classes();
    let count = images_to_score(data.len(), limit);
    let images = prototypes(gpu, embed, data, size, batch, count)?;
    let salient: Vec<usize> = (0..images.len())
        .filter(|&i| images[i].has_salient())
        .collect();
    let clusters = cfg.clusters.unwrap_or(classes - 1);
    if salient.len() < clusters {
        return Err(Error::Usage(format!(
            "eval: {} validation images have salient pixels, fewer than the {clusters} clusters",
            salient.len()
        )));
    }
    let rows: Vec<Vec<f32>> = salient.iter().map(|&i| images[i].proto.clone()).collect();
    // Whitening rescales every axis to unit variance even at full dimension (the
    // paper whitens its 32-dim embeddings to 32 dims).
    let rows = if cfg.pca_dim > 0 {
        whiten(&rows, cfg.pca_dim)
    } else {
        rows
    };
    let d = rows[0].len();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let points = Tensor::from_slice(gpu, &flat, &[rows.len(), d])?;
    let mut per_seed = Vec::new();
    let mut first_preds = Vec::new();
    let mut class_centroids = Vec::new();
    for (s, &seed) in cfg.seeds.iter().enumerate() {
        let opts = KMeansOpts {
            k: clusters,
            iters: 100,
            restarts: cfg.restarts,
            seed,
            tol: 1e-6,
        };
        let result = kmeans(&points, &opts)?;
        let mut cluster_of = vec![None; images.len()];
        for (j, &i) in salient.iter().enumerate() {
            cluster_of[i] = Some(result.labels[j]);
        }
        // Column 0 is the background; cluster c is column c + 1.
        let mut conf = Confusion::new(classes, clusters + 1);
        let mut preds = Vec::new();
        for (i, img) in images.iter().enumerate() {
            let pred: Vec<u32> = img
                .saliency
                .iter()
                .map(|&m| {
                    if m != 0 {
                        cluster_of[i].map_or(0, |c| c + 1)
                    } else {
                        0
                    }
                })
                .collect();
            conf.add(&img.labels, &pred, IGNORE);
            preds.push(pred);
        }
        // Match foreground clusters to foreground classes; background stays background.
        let mut fg = Confusion::new(classes - 1, clusters);
        for r in 1..classes {
            for c in 1..=clusters {
                fg.counts[(r - 1) * clusters + (c - 1)] = conf.counts[r * (clusters + 1) + c];
            }
        }
        let mut mapping = vec![0usize];
        mapping.extend(match_clusters(&fg).iter().map(|&m| m + 1));
        per_seed.push(conf.remap(&mapping, classes).scores());
        if s == 0 {
            first_preds = preds
                .iter()
                .map(|p| p.iter().map(|&c| mapping[c as usize] as u8).collect())
                .collect();
            let dim = images[salient[0]].proto.len();
            let mut sums = vec![vec![0f32; dim]; classes];
            for (j, &i) in salient.iter().enumerate() {
                let class = mapping[result.labels[j] as usize + 1];
                for (acc, v) in sums[class].iter_mut().zip(&images[i].proto) {
                    *acc += v;
                }
            }
            sums[0] = vec![0.0; dim];
            class_centroids = sums.into_iter().map(normalised).collect();
        }
        tick();
    }
    let mious: Vec<f64> = per_seed.iter().map(|s| s.miou).collect();
    let (miou_mean, miou_std) = mean_std(&mious);
    let accs: Vec<f64> = per_seed.iter().map(|s| s.pixel_accuracy).collect();
    Ok(ClusterOutcome {
        eval: ClusterEval {
            miou_mean,
            miou_std,
            pixel_accuracy_mean: mean_std(&accs).0,
            per_seed,
        },
        predictions: first_preds,
        class_centroids,
    })
}
