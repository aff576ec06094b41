//! Supervised segmentation with cross-image pixel contrast (Wang et al., ICCV 2021;
//! docs/methods/pixel_contrast.md), after the authors' ContrastCELoss:
//! - the network is the experiment's SegModel with one output per class, plus the
//!   "convmlp" projection head on the backbone's features (as their DeepLabV3
//!   variant), giving unit embeddings at feature resolution;
//! - cross-entropy (ignore 255) on the logits upsampled to the label size (bilinear,
//!   corners aligned), as the authors do, rather than on downsampled labels;
//! - the contrast on the embedding, with labels taken to feature resolution by
//!   nearest sampling and predictions the argmax of the feature-resolution logits,
//!   anchors from the hard/easy sampler, the per-class segment and pixel memories as
//!   extra candidates, switched on after `warmup_iters` steps and weighted by
//!   `contrast_weight`. The authors contrast anchors with the memory alone when it is
//!   on; here the anchors of the batch stay candidates too (the fused loss's
//!   contract), and only filled memory rows take part (theirs start random).
//!
//! The memory is fed every step, warm-up included, after the loss, from the
//! detached embedding (their `_dequeue_and_enqueue`). With `contrast_weight` 0 the
//! method is the cross-entropy baseline: no embedding, no memory, the same network
//! initialisation, batches and schedule.


use serde::{Deserialize, Serialize};

use super::{Method, MethodKind, Setup, StepScalars, TrainSets};
use crate::autograd::Var;
use crate::data::dataset::class_names;
use crate::data::loader::{augmented_step, step_rng};
use crate::data::voc::IGNORE;
use crate::error::{Error, Result};
use crate::eval::supervised::argmax_channels;
use crate::nn::seg_model::SegModel;
use crate::gpu::Gpu;
use crate::loss::{check_positives, check_targets, AnchorSampler, Reduction};
use crate::memory::pixel_memory::PixelMemory;
use crate::nn::builder::{Builder, StepClock};
use crate::nn::heads::ProjectionHead;
use crate::optim::config::optimizer;
use crate::state::StateVisitor;
use crate::nn::module::{join, Module, State};
use crate::ops::interpolate::InterpolateMode;
use crate::optim::Optimizer;
use crate::tensor::elementwise::zeros;
use crate::tensor::Tensor;

/// Supervised segmentation with cross-image pixel contrast (docs/methods/pixel_contrast.md):
/// cross-entropy on class logits plus `contrast_weight` times the pixel contrast
/// of a projection-head embedding, with per-class segment and pixel memories.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Weight of the contrast loss added to cross-entropy; 0 trains with
    /// cross-entropy only (no projection head, no memory).
    pub contrast_weight: f64,
    /// Temperature T of the similarities s = z.z'/T.
    pub temperature: f64,
    /// base_T: the loss is scaled by T / base_T.
    pub base_temperature: f64,
    /// Most anchors per batch, shared out over the (image, class) pairs.
    pub max_samples: usize,
    /// Most anchors per (image, class); a class needs more pixels than this (at
    /// feature resolution) to give anchors.
    pub max_views: usize,
    /// Rows of the segment memory and of the pixel memory, per class (0: no memory).
    pub memory_size: usize,
    /// Pixels per class per image that enter the pixel memory each step.
    pub pixel_update_freq: usize,
    /// Steps of cross-entropy alone before the contrast is switched on.
    pub warmup_iters: usize,
    /// Channels of the projection head's embedding.
    pub proj_dim: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            contrast_weight: 0.1,
            temperature: 0.1,
            base_temperature: 0.07,
            max_samples: 1024,
            max_views: 100,
            memory_size: 5000,
            pixel_update_freq: 10,
            warmup_iters: 5000,
            proj_dim: 256,
        }
    }
}

/// Salt of the per-step RNG that samples anchors and memory pixels.
const SAMPLING_SALT: u64 = 0x2c1b_3c6d_5e7f_8a9b;

/// The segmentation network with its projection head. Its forward gives class
/// logits at the input's size; parameters are `backbone.*`, `head.*`, `proj.*`.
pub struct PixelContrastNet {
    seg: SegModel,
    proj: ProjectionHead,
}

fn upsample(low: &Var, like: &Var) -> Result<Var> {
    let s = like.shape();
    low.interpolate(Some([s[2], s[3]]), None, InterpolateMode::Bilinear, true)
}

impl Module for PixelContrastNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        upsample(&self.seg.forward_low(x)?, x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.seg.visit(prefix, f);
        self.proj.visit(&join(prefix, "proj"), f);
    }

    fn set_training(&self, training: bool) {
        self.seg.set_training(training);
        self.proj.set_training(training);
    }
}

/// The contrast's settings, from `method`.
struct Contrast {
    weight: f32,
    temperature: f32,
    base_temperature: f32,
    warmup_iters: usize,
    sampler: AnchorSampler,
}

pub struct PixelContrast {
    setup: Setup,
    net: PixelContrastNet,
    gpu: Gpu,
    clock: StepClock,
    optimizer: Optimizer,
    contrast: Contrast,
    /// `None` when the contrast is off (weight 0) or `memory_size` is 0.
    memory: Option<PixelMemory>,
    classes: usize,
}

/// Labels [B, S, S] taken to [B, h, w] as F.interpolate(mode='nearest') does for an
/// integer factor: source pixel (y * S / h, x * S / w).
pub(super) fn nearest_labels(
    labels: &[u8],
    batch: usize,
    size: usize,
    h: usize,
    w: usize,
) -> Vec<u32> {
    let mut out = Vec::with_capacity(batch * h * w);
    for b in 0..batch {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = (y * size / h, x * size / w);
                out.push(labels[(b * size + sy) * size + sx] as u32);
            }
        }
    }
    out
}

impl PixelContrast {
    /// The contrast loss of a batch's embedding [B, D, h, w], or `None` when no
    /// anchor qualifies or none has a positive (the authors skip such steps too).
    fn contrast_loss(
        &self,
        embedding: &Var,
        labels: &[u32],
        preds: &[u32],
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Option<Var>> {
        let [b, d, h, w] = embedding.shape()[..] else {
            return Err(Error::op(
                "pixel_contrast",
                "embedding must be [B, D, h, w]",
            ));
        };
        let Some(anchors) = self.contrast.sampler.sample(labels, preds, b, rng)? else {
            return Ok(None);
        };
        let memory = match &self.memory {
            Some(m) => m.rows()?,
            None => None,
        };
        let memory_labels = memory.as_ref().map_or(&[][..], |m| &m.labels_host[..]);
        if check_positives(&anchors.labels, memory_labels).is_err() {
            return Ok(None);
        }
        // Pixel (image b, position p) is position b * h * w + p of one [1, D, B * h, w] map.
        let all =
            embedding
                .permute(&[1, 0, 2, 3])?
                .reshape(&[1, d as i64, (b * h) as i64, w as i64])?;
        let idx: Vec<u32> = anchors.indices.iter().map(|&i| i as u32).collect();
        let n = idx.len();
        let rows = all.gather_pixels(&Tensor::from_u32(&self.gpu, &idx, &[1, n])?)?;
        let anchor_labels = Var::constant(Tensor::from_u32(&self.gpu, &anchors.labels, &[n])?);
        let mem = memory.map(|m| (Var::constant(m.features), Var::constant(m.labels)));
        rows.pixel_contrast(
            &anchor_labels,
            mem.as_ref().map(|(f, l)| (f, l)),
            self.contrast.temperature,
            self.contrast.base_temperature,
        )
        .map(Some)
    }
}

impl MethodKind for PixelContrast {
    type Config = Config;

    fn new(gpu: &Gpu, setup: &Setup, cfg: &Config) -> Result<Self> {
        let Config {
            contrast_weight,
            temperature,
            base_temperature,
            max_samples,
            max_views,
            memory_size,
            pixel_update_freq,
            warmup_iters,
            proj_dim,
        } = *cfg;
        let bad = |key: &str, why: &str| Err(Error::Usage(format!("method.{key}: {why}")));
        if contrast_weight.is_nan() || contrast_weight < 0.0 {
            return bad("contrast_weight", "must be 0 or more");
        }
        if !(temperature > 0.0 && base_temperature > 0.0) {
            return bad(
                "temperature",
                "temperature and base_temperature must be positive",
            );
        }
        if max_samples == 0 || max_views == 0 || proj_dim == 0 {
            return bad(
                "max_samples",
                "max_samples, max_views and proj_dim must be at least 1",
            );
        }
        let classes = class_names(&setup.data.source).len();
        let mut b = Builder::new(gpu, setup.seed);
        // The segmentation network first: its initial weights do not depend on the
        // projection head, so the cross-entropy baseline starts from the same ones.
        let seg = SegModel::build(&mut b, &setup.model, classes)?;
        let proj = ProjectionHead::new(&mut b, seg.feature_channels(), proj_dim)?;
        b.bn_freeze.set(setup.optim.freeze_bn);
        let net = PixelContrastNet { seg, proj };
        let optimizer = optimizer(&net, &setup.optim)?;
        let memory = if contrast_weight > 0.0 && memory_size > 0 {
            Some(PixelMemory::new(
                gpu,
                classes,
                memory_size,
                proj_dim,
                pixel_update_freq,
                IGNORE as u32,
            )?)
        } else {
            None
        };
        Ok(PixelContrast {
            setup: setup.clone(),
            clock: b.clock.clone(),
            gpu: gpu.clone(),
            net,
            optimizer,
            contrast: Contrast {
                weight: contrast_weight as f32,
                temperature: temperature as f32,
                base_temperature: base_temperature as f32,
                warmup_iters,
                sampler: AnchorSampler {
                    max_samples,
                    max_views,
                    ignore_index: IGNORE as u32,
                },
            },
            memory,
            classes,
        })
    }
}

impl Method for PixelContrast {
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars> {
        let train = sets.source;
        let gpu = self.gpu.clone();
        let data = &self.setup.data;
        let size = data.image_size;
        let batch = augmented_step(&gpu, train, data, &self.setup.augment, self.setup.seed, step)?;
        let b = data.batch_size;
        let labels: Vec<u32> = batch.labels.iter().map(|&l| l as u32).collect();
        check_targets(&labels, self.classes, IGNORE as i64)?;
        let target = Var::constant(Tensor::from_u32(&gpu, &labels, &[b, size, size])?);
        self.clock.set(step as u64);
        self.net.set_training(true);
        let x = Var::constant(batch.images.clone());
        let features = self.net.seg.features(&x)?;
        let low = self.net.seg.head.forward(&features)?;
        let ce = upsample(&low, &x)?.cross_entropy_checked(
            &target,
            None,
            IGNORE as i64,
            Reduction::Mean,
        )?;
        let mut loss = ce.clone();
        let mut contrast = zeros(&gpu, &[])?;
        let mut enqueue = None;
        if self.contrast.weight > 0.0 {
            let embedding = self.net.proj.forward(&features)?;
            let (h, w) = (embedding.shape()[2], embedding.shape()[3]);
            let labels_low = nearest_labels(&batch.labels, b, size, h, w);
            let mut rng = step_rng(self.setup.seed, step, SAMPLING_SALT);
            if step >= self.contrast.warmup_iters {
                let preds = argmax_channels(&low.value())?;
                if let Some(c) = self.contrast_loss(&embedding, &labels_low, &preds, &mut rng)? {
                    loss = loss.add(&c.mul_scalar(self.contrast.weight)?)?;
                    contrast = c.value();
                }
            }
            enqueue = Some((embedding.value(), labels_low, rng));
        }
        let scalars = vec![
            ("loss", loss.value()),
            ("loss_ce", ce.value()),
            ("loss_contrast", contrast),
        ];
        self.optimizer.zero_grad();
        loss.backward()?;
        self.optimizer
            .check_finite(&scalars, step + 1, self.setup.on_nonfinite)?;
        self.optimizer.step(lr_factor)?;
        if let (Some(memory), Some((embedding, labels_low, mut rng))) = (&mut self.memory, enqueue)
        {
            memory.enqueue(&embedding.to_vec()?, &labels_low, b, &mut rng)?;
        }
        Ok(scalars)
    }

    fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    fn model(&self) -> &dyn Module {
        &self.net
    }

    fn classifier(&self) -> Option<&dyn Module> {
        Some(&self.net)
    }

    /// The projection head's embedding, upsampled to the input's size and
    /// renormalised.
    fn embed(&self, images: &Var) -> Result<Var> {
        let low = self.net.proj.forward(&self.net.seg.features(images)?)?;
        upsample(&low, images)?.l2_normalize(1, 1e-12)
    }

    fn visit_state(&mut self, v: &mut dyn StateVisitor) -> Result<()> {
        if let Some(m) = &mut self.memory {
            m.visit_state(v)?;
        }
        v.optimizer("optim", &mut self.optimizer)
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_labels;

    #[test]
    fn nearest_labels_take_the_top_left_pixel_of_each_cell() {
        // One 4x4 image of labels 0..16 to 2x2: pixels (0,0), (0,2), (2,0), (2,2).
        let labels: Vec<u8> = (0..16).collect();
        assert_eq!(nearest_labels(&labels, 1, 4, 2, 2), vec![0, 2, 8, 10]);
    }
}
