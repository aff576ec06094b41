//! MaskContrast's unsupervised evaluation: one saliency-masked prototype per
//! validation image (the model's predicted saliency as the authors evaluate, or the
//! dataset's masks), PCA whitening, K-means into (classes - 1) clusters, the
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
use crate::eval::config::KMeansCfg;
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

/// What the model computes for evaluation from images [B, 3, S, S]: L2-normalised
/// embeddings [B, D, S, S] and, when the model's own saliency decides the foreground,
/// the same embeddings with saliency logits [B, 1, S, S] (positive = salient) from one
/// forward pass.
pub struct EvalModel<'a> {
    pub embed: &'a (dyn Fn(&Var) -> Result<Var> + 'a),
    pub embed_and_saliency: Option<&'a EmbedAndSaliency<'a>>,
}

/// Embeddings and saliency logits of a batch of images.
pub type EmbedAndSaliency<'a> = dyn Fn(&Var) -> Result<(Var, Var)> + 'a;

/// Saliency `logits` [B, 1, S, S] as a 0/1 mask [B, S, S], on the GPU and on the
/// host. The threshold is the paper's (probability 0.5); the authors' code compares
/// the raw logit with 0.5.
fn predicted_mask(logits: &Var) -> Result<(Tensor, Vec<u8>)> {
    let t = logits.value();
    let host: Vec<u8> = t.to_vec()?.iter().map(|&l| u8::from(l > 0.0)).collect();
    let as_f32: Vec<f32> = host.iter().map(|&m| f32::from(m)).collect();
    let s = t.shape();
    Ok((
        Tensor::from_slice(t.gpu(), &as_f32, &[s[0], s[2], s[3]])?,
        host,
    ))
}

fn prototypes(
    gpu: &Gpu,
    model: &EvalModel,
    data: &Dataset,
    size: usize,
    batch: usize,
    count: usize,
) -> Result<Vec<ImageProto>> {
    let mut out = Vec::new();
    for start in (0..count).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(count)).collect();
        let b = plain(gpu, data, &idx, size)?;
        let images = Var::constant(b.images.clone());
        let (emb, mask, mask_host) = match model.embed_and_saliency {
            Some(f) => {
                let (emb, logits) = no_grad(|| f(&images))?;
                let (mask, host) = predicted_mask(&logits)?;
                (emb, mask, host)
            }
            None => (
                no_grad(|| (model.embed)(&images))?,
                b.saliency.clone(),
                b.saliency_host.clone(),
            ),
        };
        let d = emb.shape()[1];
        // An image without salient pixels gets a zero row, which clustering skips.
        let p = no_grad(|| emb.masked_average_nonempty(&mask)?.l2_normalize(1, 1e-12))?;
        let values = p.value().to_vec()?;
        let pixels = size * size;
        for (i, row) in values.chunks(d).enumerate() {
            out.push(ImageProto {
                proto: row.to_vec(),
                saliency: mask_host[i * pixels..(i + 1) * pixels].to_vec(),
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

/// The prototypes of the `salient` images as one [N, D] tensor, whitened to `pca_dim`
/// dims when that is not 0; None when no image is salient.
fn cluster_points(
    gpu: &Gpu,
    images: &[ImageProto],
    salient: &[usize],
    pca_dim: usize,
) -> Result<Option<Tensor>> {
    if salient.is_empty() {
        return Ok(None);
    }
    let rows: Vec<Vec<f32>> = salient.iter().map(|&i| images[i].proto.clone()).collect();
    // Whitening rescales every axis to unit variance even at full dimension (the
    // paper whitens its 32-dim embeddings to 32 dims).
    let rows = if pca_dim > 0 {
        whiten(&rows, pca_dim)
    } else {
        rows
    };
    let d = rows[0].len();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(gpu, &flat, &[rows.len(), d]).map(Some)
}

/// Clusters the validation images' prototypes and scores the segmentation it implies.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    gpu: &Gpu,
    model: &EvalModel,
    data: &Dataset,
    size: usize,
    batch: usize,
    limit: usize,
    cfg: &KMeansCfg,
    tick: &mut dyn FnMut(),
) -> Result<ClusterOutcome> {
    let classes = data.num_classes();
    let count = images_to_score(data.len(), limit);
    let images = prototypes(gpu, model, data, size, batch, count)?;
    let mut salient: Vec<usize> = (0..images.len())
        .filter(|&i| images[i].has_salient())
        .collect();
    let clusters = cfg.clusters.unwrap_or(classes - 1);
    if salient.len() < clusters {
        if model.embed_and_saliency.is_none() {
            return Err(Error::Usage(format!(
                "eval: {} validation images have salient pixels, fewer than the {clusters} clusters",
                salient.len()
            )));
        }
        // A model that finds foreground in too few images to cluster predicts
        // background everywhere (an untrained saliency head can).
        salient.clear();
    }
    let points = cluster_points(gpu, &images, &salient, cfg.pca_dim)?;
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
        let labels = match &points {
            Some(points) => kmeans(points, &opts)?.labels,
            None => Vec::new(),
        };
        let mut cluster_of = vec![None; images.len()];
        for (j, &i) in salient.iter().enumerate() {
            cluster_of[i] = Some(labels[j]);
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
            let dim = images.first().map_or(0, |img| img.proto.len());
            let mut sums = vec![vec![0f32; dim]; classes];
            for (j, &i) in salient.iter().enumerate() {
                let class = mapping[labels[j] as usize + 1];
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::data::config::DataCfg;
    use crate::data::dataset;

    const SIZE: usize = 16;
    const BATCH: usize = 4;

    fn val_set() -> Dataset {
        let cfg: DataCfg = serde_yaml::from_str(
            "source: {kind: synthetic, train: 4, val: 10, size: 16, max_objects: 1, seed: 3}\n\
             batch_size: 4\nimage_size: 16",
        )
        .unwrap();
        dataset::open(&cfg, &mut || {}).unwrap().1
    }

    fn kmeans_cfg() -> KMeansCfg {
        KMeansCfg {
            clusters: Some(2),
            restarts: 2,
            seeds: vec![0, 1],
            pca_dim: 0,
            ..KMeansCfg::default()
        }
    }

    /// Pixel colours as embeddings: fixed, and different between images.
    fn colours(x: &Var) -> Result<Var> {
        x.l2_normalize(1, 1e-12)
    }

    /// Colour embeddings with a saliency "head" that returns, batch after batch,
    /// `logit(salient)` on each pixel of the validation images in evaluation order.
    fn saliency_from_masks<'a>(
        gpu: &'a Gpu,
        data: &'a Dataset,
        next: &'a Cell<usize>,
        logit: fn(bool) -> f32,
    ) -> impl Fn(&Var) -> Result<(Var, Var)> + 'a {
        move |x: &Var| {
            let b = x.shape()[0];
            let idx: Vec<usize> = (next.get()..next.get() + b).collect();
            next.set(next.get() + b);
            let batch = plain(gpu, data, &idx, SIZE)?;
            let logits: Vec<f32> = batch.saliency_host.iter().map(|&m| logit(m != 0)).collect();
            let logits = Var::constant(Tensor::from_slice(gpu, &logits, &[b, 1, SIZE, SIZE])?);
            Ok((colours(x)?, logits))
        }
    }

    /// Evaluates the colour embeddings, the foreground from `head` or, without one,
    /// from the dataset's masks.
    fn run(gpu: &Gpu, data: &Dataset, head: Option<&EmbedAndSaliency>) -> ClusterOutcome {
        let model = EvalModel {
            embed: &colours,
            embed_and_saliency: head,
        };
        evaluate(gpu, &model, data, SIZE, BATCH, 0, &kmeans_cfg(), &mut || {}).unwrap()
    }

    #[test]
    fn predicted_saliency_that_matches_the_masks_scores_as_the_masks_do() {
        let gpu = Gpu::shared().unwrap();
        let data = val_set();
        let next = Cell::new(0);
        let head = saliency_from_masks(&gpu, &data, &next, |s| if s { 2.5 } else { -0.5 });
        let predicted = run(&gpu, &data, Some(&head));
        let masks = run(&gpu, &data, None);
        assert_eq!(next.get(), data.len());
        assert_eq!(predicted.predictions, masks.predictions);
        for (p, m) in predicted.eval.per_seed.iter().zip(&masks.eval.per_seed) {
            assert_eq!(p.miou, m.miou);
        }
    }

    #[test]
    fn a_model_that_predicts_no_foreground_scores_background_everywhere() {
        let gpu = Gpu::shared().unwrap();
        let data = val_set();
        let next = Cell::new(0);
        let head = saliency_from_masks(&gpu, &data, &next, |_| -1.0);
        let out = run(&gpu, &data, Some(&head));
        assert!(out.predictions.iter().flatten().all(|&c| c == 0));
        let labels: Vec<u8> = (0..data.len())
            .flat_map(|i| plain(&gpu, &data, &[i], SIZE).unwrap().labels)
            .collect();
        let background = labels.iter().filter(|&&l| l == 0).count() as f64;
        let scored = labels.iter().filter(|&&l| l != IGNORE).count() as f64;
        let iou = out.eval.per_seed[0].per_class_iou[0].unwrap();
        assert!((iou - background / scored).abs() < 1e-12, "{iou}");
        // The same model judged by the dataset's masks is scored on its clusters.
        let masks = run(&gpu, &data, None);
        assert_eq!(masks.eval.per_seed[0].per_class_iou[0], Some(1.0));
    }
}
