//! Scoring a method on the validation set by its own protocol: the argmax of its
//! class logits when it has a classifier, else K-means over its embeddings (over
//! seeds); plus the optional linear probe, and the records metrics.jsonl keeps.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::config::Experiment;
use super::progress::with_bar;
use super::run_dir::RunDir;
use crate::autograd::Var;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::eval::config::{KMeansCfg, SaliencySource};
use crate::eval::linear_probe;
use crate::eval::metrics::Scores;
use crate::eval::supervised;
use crate::eval::unsupervised::{self, ClusterEval, EvalModel};
use crate::gpu::Gpu;
use crate::io;
use crate::method::Method;
use crate::nn::module::Module;
use crate::ops::interpolate::InterpolateMode;
use crate::tensor::Tensor;

/// Validation scores, by protocol (serialised as the protocol's own record).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evaluation {
    /// K-means over the embeddings, one evaluation per seed.
    Kmeans(ClusterEval),
    /// The argmax of the class logits.
    Classes(Scores),
}

impl Evaluation {
    /// The key of the record in metrics.jsonl.
    fn key(&self) -> &'static str {
        match self {
            Evaluation::Kmeans(_) => "kmeans",
            Evaluation::Classes(_) => "segmentation",
        }
    }

    /// The evaluation of a metrics.jsonl record, if it has one.
    pub fn from_record(v: &Value) -> Option<Evaluation> {
        let e = v.get("kmeans").or_else(|| v.get("segmentation"))?;
        serde_json::from_value(e.clone()).ok()
    }

    /// What its mIoU is called.
    pub fn protocol(&self) -> &'static str {
        match self {
            Evaluation::Kmeans(_) => "k-means mIoU",
            Evaluation::Classes(_) => "mIoU",
        }
    }

    /// What its mIoU is called in a table heading.
    pub fn heading(&self) -> &'static str {
        match self {
            Evaluation::Kmeans(_) => "K-means mIoU",
            Evaluation::Classes(_) => "mIoU",
        }
    }

    /// The mIoU in percent, with the standard deviation over seeds where there is one.
    pub fn miou_text(&self) -> String {
        match self.miou_std() {
            Some(std) => format!("{} ± {}", pct(self.miou()), pct(std)),
            None => pct(self.miou()),
        }
    }

    /// One line: protocol, mIoU and pixel accuracy.
    pub fn summary(&self) -> String {
        format!(
            "{} {}  (pixel accuracy {})",
            self.protocol(),
            self.miou_text(),
            pct(self.pixel_accuracy())
        )
    }

    /// Mean IoU (mean over seeds for K-means).
    pub fn miou(&self) -> f64 {
        match self {
            Evaluation::Kmeans(e) => e.miou_mean,
            Evaluation::Classes(s) => s.miou,
        }
    }

    /// Standard deviation of the mIoU over seeds (K-means only).
    pub fn miou_std(&self) -> Option<f64> {
        match self {
            Evaluation::Kmeans(e) => Some(e.miou_std),
            Evaluation::Classes(_) => None,
        }
    }

    pub fn pixel_accuracy(&self) -> f64 {
        match self {
            Evaluation::Kmeans(e) => e.pixel_accuracy_mean,
            Evaluation::Classes(s) => s.pixel_accuracy,
        }
    }

    /// Per-class IoU (of the first seed for K-means).
    pub fn per_class_iou(&self) -> &[Option<f64>] {
        match self {
            Evaluation::Kmeans(e) => e.per_seed.first().map_or(&[], |s| &s.per_class_iou),
            Evaluation::Classes(s) => &s.per_class_iou,
        }
    }
}

/// A fraction in percent with two decimals.
pub fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

/// An evaluation with what the end of a run draws and keeps.
pub struct Evaluated {
    pub eval: Evaluation,
    /// Predicted class map of every evaluated image.
    pub predictions: Vec<Vec<u8>>,
    /// K-means only: per class, the centroid `wgseg infer` assigns images by.
    pub centroids: Option<Vec<Vec<f32>>>,
}

/// Scores `method` on `val` by its protocol.
pub fn evaluate(
    gpu: &Gpu,
    method: &dyn Method,
    exp: &Experiment,
    val: &Dataset,
) -> Result<Evaluated> {
    method.model().set_training(false);
    let (size, batch, limit) = (exp.data.image_size, exp.data.batch_size, exp.eval.limit);
    if let Some(net) = method.classifier() {
        let classify = |x: &Var| net.forward(x);
        let r = with_bar(val.len().div_ceil(batch) as u64, "eval", |tick| {
            supervised::evaluate(gpu, &classify, val, size, batch, limit, tick)
        })?;
        return Ok(Evaluated {
            eval: Evaluation::Classes(r.scores),
            predictions: r.predictions,
            centroids: None,
        });
    }
    let embed = |x: &Var| method.embed(x);
    let embed_and_saliency = |x: &Var| {
        method
            .embed_and_saliency(x)
            .map_err(|e| Error::Usage(format!("eval.kmeans.saliency: predicted: {e}")))
    };
    let cfg = &exp.eval.kmeans;
    let model = EvalModel {
        embed: &embed,
        embed_and_saliency: match cfg.saliency {
            SaliencySource::Predicted => Some(&embed_and_saliency),
            SaliencySource::Dataset => None,
        },
    };
    let r = with_bar(cfg.seeds.len() as u64, "k-means", |tick| {
        unsupervised::evaluate(gpu, &model, val, size, batch, limit, cfg, tick)
    })?;
    Ok(Evaluated {
        eval: Evaluation::Kmeans(r.eval),
        predictions: r.predictions,
        centroids: Some(r.class_centroids),
    })
}

/// K-means over the backbone features of `method`'s `backbone_network`, upsampled
/// (bilinear) to the image size and L2-normalised per pixel, with the dataset's
/// saliency masks and the experiment's K-means settings otherwise; `None` for a
/// method without that comparison.
pub fn evaluate_backbone(
    gpu: &Gpu,
    method: &dyn Method,
    exp: &Experiment,
    val: &Dataset,
) -> Result<Option<Evaluation>> {
    let Some(net) = method.backbone_network() else {
        return Ok(None);
    };
    net.set_training(false);
    let embed = |x: &Var| {
        let s = x.shape();
        net.features(x)?
            .interpolate(Some([s[2], s[3]]), None, InterpolateMode::Bilinear, false)?
            .l2_normalize(1, 1e-12)
    };
    let cfg = KMeansCfg {
        saliency: SaliencySource::Dataset,
        ..exp.eval.kmeans.clone()
    };
    let model = EvalModel {
        embed: &embed,
        embed_and_saliency: None,
    };
    let (size, limit) = (exp.data.image_size, exp.eval.limit);
    // The upsampled features are wide (MobileNetV2: 1280 channels): fewer images a
    // batch keep one batch's map inside a storage binding.
    let image_bytes = (net.feature_channels() * size * size * 4) as u64;
    let fit = (gpu.limits.max_storage_buffer_binding_size / image_bytes.max(1)).max(1);
    let batch = exp.data.batch_size.min(fit as usize);
    let r = with_bar(cfg.seeds.len() as u64, "k-means", |tick| {
        unsupervised::evaluate(gpu, &model, val, size, batch, limit, &cfg, tick)
    })?;
    Ok(Some(Evaluation::Kmeans(r.eval)))
}

/// The linear probe of the experiment, when it has one.
pub fn probe(
    gpu: &Gpu,
    method: &dyn Method,
    exp: &Experiment,
    train: &Dataset,
    val: &Dataset,
) -> Result<Option<Scores>> {
    let Some(cfg) = &exp.eval.linear_probe else {
        return Ok(None);
    };
    method.model().set_training(false);
    let embed = |x: &Var| method.embed(x);
    let (size, batch, limit) = (exp.data.image_size, exp.data.batch_size, exp.eval.limit);
    with_bar(cfg.iters as u64, "probe", |tick| {
        linear_probe::evaluate(
            gpu, &embed, train, val, size, batch, limit, cfg, exp.seed, tick,
        )
    })
    .map(Some)
}

/// The `model` of the record of [`evaluate_backbone`].
pub const BACKBONE: &str = "backbone";

/// The metrics.jsonl record of an evaluation of `model` ("start", "trained").
pub fn record(step: usize, model: &str, eval: &Evaluation, probe: Option<&Scores>) -> Value {
    let mut r = json!({"step": step, "kind": "eval", "model": model});
    r[eval.key()] = json!(eval);
    if let Some(p) = probe {
        r["linear_probe"] = json!(p);
    }
    r
}

/// Class centroids in embedding space, for `wgseg infer`.
pub const CENTROIDS: &str = "clusters.safetensors";

/// Writes the K-means class centroids (nothing for other protocols).
pub fn save_centroids(gpu: &Gpu, dir: &RunDir, evaluated: &Evaluated) -> Result<()> {
    let Some(rows) = &evaluated.centroids else {
        return Ok(());
    };
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let t = Tensor::from_slice(gpu, &flat, &[rows.len(), rows[0].len()])?;
    io::write(&dir.file(CENTROIDS), &[("centroids".to_string(), t)])
}
