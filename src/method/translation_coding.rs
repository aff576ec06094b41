//! Contrastive translation coding (ICCSIP 2021; docs/methods/translation_coding.md): the
//! segmentation network doubles as an image translator from a labelled source
//! domain to an unlabelled target one.
//! - The network is the experiment's SegModel with one output per class; its class
//!   probabilities are projected to RGB by a learned 1x1 convolution (`rgb`).
//! - PatchNCE as in CUT, on the target images (those translated to the source's
//!   output space; the source's have labels): the backbone encodes the input
//!   image (keys, detached) and its RGB projection (queries); at `nce_patches`
//!   locations (one draw shared by the batch) both go through the MLP `mlp`
//!   (Linear-ReLU-Linear, `nce_dim`) and L2-normalisation; each image's queries are
//!   contrasted with its own keys (the positive at the same location, the other
//!   locations of the image as negatives) at `nce_temperature`.
//! - Output-space adversarial transfer: a PatchGAN discriminator on the class
//!   probabilities, trained by its own optimiser (`optimizers.discriminator`) with
//!   the LSGAN loss to tell source (real) from target (fake) outputs, while the
//!   network's LSGAN loss on target outputs (`adv_weight`) moves them towards the
//!   source's.
//! - Self-supervised training: target pixels whose top class probability reaches
//!   `pseudo_threshold` are their own labels, with cross-entropy (`pseudo_weight`).
//!
//! The three stages of the paper (pre-training, cross-domain transfer,
//! self-supervised training) are the experiment's `stages`, each setting the weights.


use rand::Rng;

use serde::{Deserialize, Serialize};

use super::{Method, MethodKind, Setup, StepScalars, TrainSets};
use crate::autograd::Var;
use crate::data::dataset::class_names;
use crate::data::loader::{augmented_step, step_rng};
use crate::data::voc::IGNORE;
use crate::error::{Error, Result};
use crate::nn::seg_model::SegModel;
use crate::gpu::Gpu;
use crate::loss::{check_targets, Reduction};
use crate::nn::builder::{Builder, StepClock};
use crate::nn::layers::{Activation, Conv2d, ConvOpts, Linear};
use crate::optim::config::optimizer;
use crate::optim::finite::Nonfinite;
use crate::state::StateVisitor;
use crate::nn::module::{join, Module, Sequential, State};
use crate::nn::patchgan::PatchGan;
use crate::ops::gather_pixels::sample_patch_indices;
use crate::ops::interpolate::InterpolateMode;
use crate::optim::Optimizer;
use crate::tensor::elementwise::zeros;
use crate::tensor::Tensor;

/// Contrastive translation coding (docs/methods/translation_coding.md): labelled source
/// (`data.source`) to unlabelled target (`data.target`). The class probabilities
/// are projected to RGB by a learned 1x1 convolution; PatchNCE ties the input's
/// patches to the projection's; an LSGAN PatchGAN discriminator on the class
/// probabilities (optimiser `optimizers.discriminator`) moves the target's output
/// towards the source's; confident target predictions are pseudo labels. The
/// weights switch the terms on and off per stage.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Weight of the cross-entropy on labelled source images.
    pub source_weight: f64,
    /// Weight of PatchNCE on the target images of the step (CUT: lambda_NCE 1).
    pub nce_weight: f64,
    /// PatchNCE temperature (CUT: 0.07).
    pub nce_temperature: f64,
    /// Patch locations sampled per image (CUT: 256; all when the map is smaller).
    pub nce_patches: usize,
    /// Width of the PatchNCE MLP, Linear-ReLU-Linear (CUT: 256).
    pub nce_dim: usize,
    /// Weight of the generator's LSGAN loss on target outputs (0: no adversarial
    /// transfer; AdaptSegNet's output-space weight 0.001).
    pub adv_weight: f64,
    /// Weight of the cross-entropy to target pseudo labels (0: none).
    pub pseudo_weight: f64,
    /// A target pixel is a pseudo label when its top class probability reaches this.
    pub pseudo_threshold: f64,
    /// Channels of the discriminator's first layer (PatchGAN ndf: 64).
    pub disc_channels: usize,
    /// Strided layers of the discriminator (PatchGAN n_layers: 3).
    pub disc_layers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source_weight: 1.0,
            nce_weight: 1.0,
            nce_temperature: 0.07,
            nce_patches: 256,
            nce_dim: 256,
            adv_weight: 0.0,
            pseudo_weight: 0.0,
            pseudo_threshold: 0.9,
            disc_channels: 64,
            disc_layers: 3,
        }
    }
}

/// Salt of the target domain's batch order and augmentation.
const TARGET_SALT: u64 = 0x7a3c_15e9_d2b4_8f61;
/// Salt of the PatchNCE patch locations.
const PATCH_SALT: u64 = 0x41f2_9b07_c6e8_3d5a;

/// The translator: the segmentation network, the RGB projection of its class
/// probabilities and the PatchNCE MLP. Its forward gives class logits at the
/// input's size; parameters are `backbone.*`, `head.*`, `rgb.*`, `mlp.*`.
pub struct TranslationNet {
    seg: SegModel,
    rgb: Conv2d,
    mlp: Sequential,
}

impl Module for TranslationNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        self.seg.forward(x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.seg.visit(prefix, f);
        self.rgb.visit(&join(prefix, "rgb"), f);
        self.mlp.visit(&join(prefix, "mlp"), f);
    }

    fn set_training(&self, training: bool) {
        self.seg.set_training(training);
        self.mlp.set_training(training);
    }
}

/// The loss weights and settings of `method`.
struct Weights {
    source: f32,
    nce: f32,
    nce_temperature: f32,
    nce_patches: usize,
    adv: f32,
    pseudo: f32,
    pseudo_threshold: f32,
}

pub struct TranslationCoding {
    setup: Setup,
    net: TranslationNet,
    disc: PatchGan,
    gpu: Gpu,
    clock: StepClock,
    optimizer: Optimizer,
    disc_optimizer: Optimizer,
    w: Weights,
    classes: usize,
}

/// One forward of a batch: its backbone features and upsampled logits.
struct Pass {
    features: Var,
    logits: Var,
}

/// Pseudo labels of probabilities [B, C, hw] (row-major): the top class of each
/// pixel where its probability reaches `threshold`, else `IGNORE`.
fn pseudo_labels(probs: &[f32], batch: usize, classes: usize, threshold: f32) -> Vec<u32> {
    let hw = probs.len() / (batch * classes).max(1);
    let mut out = Vec::with_capacity(batch * hw);
    for b in 0..batch {
        for p in 0..hw {
            let at = |c: usize| probs[(b * classes + c) * hw + p];
            let best = (0..classes).fold(0, |m, c| if at(c) > at(m) { c } else { m });
            out.push(if at(best) >= threshold {
                best as u32
            } else {
                IGNORE as u32
            });
        }
    }
    out
}

impl TranslationCoding {
    fn pass(&self, images: &Tensor) -> Result<Pass> {
        let x = Var::constant(images.clone());
        let features = self.net.seg.features(&x)?;
        let logits = self.net.seg.logits(&features, &x)?;
        Ok(Pass { features, logits })
    }

    /// L2-normalised MLP embeddings of feature rows [N, D].
    fn embed_rows(&self, rows: &Var) -> Result<Var> {
        self.net.mlp.forward(rows)?.l2_normalize(1, 1e-7)
    }

    /// PatchNCE between a batch's images and the RGB projections of its class
    /// probabilities, averaged over the images.
    fn patch_nce(&self, pass: &Pass, step: usize) -> Result<Var> {
        let rgb = self.net.rgb.forward(&pass.logits.softmax(1)?)?;
        let queries = self.net.seg.features(&rgb)?;
        let [b, _, h, w] = queries.shape()[..] else {
            return Err(Error::op("patch_nce", "features must be [B, D, h, w]"));
        };
        let seed = step_rng(self.setup.seed, step, PATCH_SALT).random::<u64>();
        let positions = sample_patch_indices(seed, h, w, self.w.nce_patches)?;
        let p = positions.len();
        let idx = Tensor::from_u32(&self.gpu, &positions.repeat(b), &[b, p])?;
        let q = self.embed_rows(&queries.gather_pixels(&idx)?)?;
        let k = self
            .embed_rows(&pass.features.detach().gather_pixels(&idx)?)?
            .detach();
        let mut total: Option<Var> = None;
        for i in 0..b {
            let (lo, hi) = ((i * p) as i64, ((i + 1) * p) as i64);
            let l = q
                .slice(0, lo, hi, 1)?
                .patch_nce(&k.slice(0, lo, hi, 1)?, self.w.nce_temperature)?;
            total = Some(match total {
                Some(t) => t.add(&l)?,
                None => l,
            });
        }
        let total = total.ok_or_else(|| Error::op("patch_nce", "empty batch"))?;
        total.mul_scalar(1.0 / b as f32)
    }

    /// Cross-entropy of the target logits to their confident pseudo labels, or
    /// `None` when no pixel is confident enough.
    fn pseudo_loss(&self, logits: &Var, probs: &Var) -> Result<Option<Var>> {
        let shape = logits.shape();
        let labels = pseudo_labels(
            &probs.value().to_vec()?,
            shape[0],
            self.classes,
            self.w.pseudo_threshold,
        );
        if labels.iter().all(|&l| l == IGNORE as u32) {
            return Ok(None);
        }
        let target = Tensor::from_u32(&self.gpu, &labels, &[shape[0], shape[2], shape[3]])?;
        logits
            .cross_entropy_checked(&Var::constant(target), None, IGNORE as i64, Reduction::Mean)
            .map(Some)
    }
}

/// Adds `weight * term` to `total`.
fn accumulate(total: Option<Var>, term: &Var, weight: f32) -> Result<Option<Var>> {
    let t = term.mul_scalar(weight)?;
    Ok(Some(match total {
        Some(s) => s.add(&t)?,
        None => t,
    }))
}

impl MethodKind for TranslationCoding {
    type Config = Config;

    const PARAMETER_SETS: &'static [&'static str] = &["discriminator"];

    fn new(gpu: &Gpu, setup: &Setup, cfg: &Config) -> Result<Self> {
        let Config {
            source_weight,
            nce_weight,
            nce_temperature,
            nce_patches,
            nce_dim,
            adv_weight,
            pseudo_weight,
            pseudo_threshold,
            disc_channels,
            disc_layers,
        } = *cfg;
        let bad = |key: &str, why: &str| Err(Error::Usage(format!("{key}: {why}")));
        let weights = [source_weight, nce_weight, adv_weight, pseudo_weight];
        if weights.iter().any(|w| w.is_nan() || *w < 0.0) {
            return bad(
                "method",
                "source_weight, nce_weight, adv_weight and pseudo_weight must be 0 or more",
            );
        }
        if weights.iter().all(|w| *w == 0.0) {
            return bad("method", "every loss weight is 0: nothing to train");
        }
        if nce_temperature.is_nan() || nce_temperature <= 0.0 {
            return bad("method.nce_temperature", "must be positive");
        }
        if nce_patches == 0 || nce_dim == 0 {
            return bad(
                "method.nce_patches",
                "nce_patches and nce_dim must be at least 1",
            );
        }
        if !(pseudo_threshold > 0.0 && pseudo_threshold <= 1.0) {
            return bad("method.pseudo_threshold", "must be in (0, 1]");
        }
        if setup.data.target.is_none() {
            return bad(
                "data.target",
                "translation_coding adapts to an unlabelled target domain: give one",
            );
        }
        let disc_optim = setup
            .optimizers
            .get("discriminator")
            .ok_or_else(|| {
                Error::Usage("optimizers.discriminator: translation_coding needs it".into())
            })?
            .clone();
        let classes = class_names(&setup.data.source).len();
        let mut b = Builder::new(gpu, setup.seed);
        let seg = SegModel::build(&mut b, &setup.model, classes)?;
        let feat = seg.feature_channels();
        let rgb = Conv2d::new(&mut b, classes, 3, 1, ConvOpts::default())?;
        let mlp = Sequential::new(vec![
            Box::new(Linear::new(&mut b, feat, nce_dim, true)?),
            Box::new(Activation::Relu),
            Box::new(Linear::new(&mut b, nce_dim, nce_dim, true)?),
        ]);
        let disc = PatchGan::new(&mut b, classes, disc_channels, disc_layers)
            .map_err(|e| Error::Usage(format!("method.disc_channels: {e}")))?;
        b.bn_freeze.set(setup.optim.freeze_bn);
        let net = TranslationNet { seg, rgb, mlp };
        let net_optimizer = optimizer(&net, &setup.optim)?;
        let disc_optimizer = optimizer(&disc, &disc_optim)
            .map_err(|e| Error::Usage(format!("optimizers.discriminator: {e}")))?;
        Ok(TranslationCoding {
            setup: setup.clone(),
            clock: b.clock.clone(),
            gpu: gpu.clone(),
            net,
            disc,
            optimizer: net_optimizer,
            disc_optimizer,
            w: Weights {
                source: source_weight as f32,
                nce: nce_weight as f32,
                nce_temperature: nce_temperature as f32,
                nce_patches,
                adv: adv_weight as f32,
                pseudo: pseudo_weight as f32,
                pseudo_threshold: pseudo_threshold as f32,
            },
            classes,
        })
    }
}

impl Method for TranslationCoding {
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars> {
        let target_set = sets.target.ok_or_else(|| {
            Error::Usage("data.target: translation_coding needs the target's images".into())
        })?;
        let gpu = self.gpu.clone();
        let seed = self.setup.seed;
        self.clock.set(step as u64);
        self.net.set_training(true);
        self.disc.set_training(true);
        let source = augmented_step(
            &self.gpu,
            sets.source,
            &self.setup.data,
            &self.setup.augment,
            seed,
            step,
        )?;
        let labels: Vec<u32> = source.labels.iter().map(|&l| l as u32).collect();
        check_targets(&labels, self.classes, IGNORE as i64)?;
        let (b, size) = (labels.len() / source.size.pow(2), source.size);
        let src = self.pass(&source.images)?;
        let w = &self.w;
        let zero = || zeros(&gpu, &[]);
        let (mut ce, mut nce, mut adv, mut pseudo) = (zero()?, zero()?, zero()?, zero()?);
        let mut loss = None;
        if w.source > 0.0 {
            let target = Tensor::from_u32(&gpu, &labels, &[b, size, size])?;
            let l = src.logits.cross_entropy_checked(
                &Var::constant(target),
                None,
                IGNORE as i64,
                Reduction::Mean,
            )?;
            loss = accumulate(loss, &l, w.source)?;
            ce = l.value();
        }
        let needs_target = w.nce > 0.0 || w.adv > 0.0 || w.pseudo > 0.0;
        let tgt = if needs_target {
            let batch = augmented_step(
                &self.gpu,
                target_set,
                &self.setup.data,
                &self.setup.augment,
                seed ^ TARGET_SALT,
                step,
            )?;
            Some(self.pass(&batch.images)?)
        } else {
            None
        };
        if let (true, Some(t)) = (w.nce > 0.0, &tgt) {
            let l = self.patch_nce(t, step)?;
            loss = accumulate(loss, &l, w.nce)?;
            nce = l.value();
        }
        let probs_t = tgt.as_ref().map(|t| t.logits.softmax(1)).transpose()?;
        let adversarial = w.adv > 0.0;
        if let (true, Some(p)) = (adversarial, &probs_t) {
            let l = self.disc.forward(p)?.lsgan_loss(true)?;
            loss = accumulate(loss, &l, w.adv)?;
            adv = l.value();
        }
        if let (true, Some(t), Some(p)) = (w.pseudo > 0.0, &tgt, &probs_t) {
            if let Some(l) = self.pseudo_loss(&t.logits, p)? {
                loss = accumulate(loss, &l, w.pseudo)?;
                pseudo = l.value();
            }
        }
        let loss = loss.ok_or_else(|| Error::Usage("method: every loss weight is 0".into()))?;
        let mut scalars = vec![
            ("loss", loss.value()),
            ("loss_ce", ce),
            ("loss_nce", nce),
            ("loss_adv", adv),
            ("loss_pseudo", pseudo),
        ];
        self.optimizer.zero_grad();
        self.disc_optimizer.zero_grad();
        loss.backward()?;
        self.optimizer
            .check_finite(&scalars, step + 1, self.setup.on_nonfinite)?;
        // The discriminator's loss reads the outputs before the network's update (they
        // are detached), so both are checked before either is updated and a refused
        // step changes neither.
        let mut disc = zero()?;
        let mut disc_trained = false;
        if let (true, Some(p)) = (adversarial, &probs_t) {
            // The discriminator tells source outputs (real) from target ones (fake).
            let real = self.disc.forward(&src.logits.softmax(1)?.detach())?;
            let fake = self.disc.forward(&p.detach())?;
            let l = real
                .lsgan_loss(true)?
                .add(&fake.lsgan_loss(false)?)?
                .mul_scalar(0.5)?;
            self.disc_optimizer.zero_grad();
            l.backward()?;
            disc = l.value();
            let terms = [("loss_disc", disc.clone())];
            self.disc_optimizer
                .check_finite(&terms, step + 1, self.setup.on_nonfinite)?;
            disc_trained = true;
        }
        self.optimizer.step(lr_factor)?;
        if disc_trained {
            self.disc_optimizer.step(lr_factor)?;
        }
        scalars.push(("loss_disc", disc));
        Ok(scalars)
    }

    fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    fn first_nonfinite(&self) -> Result<Option<Nonfinite>> {
        let both = [
            self.optimizer.first_nonfinite()?,
            self.disc_optimizer.first_nonfinite()?,
        ];
        Ok(both.into_iter().flatten().min_by_key(|n| n.step))
    }

    fn model(&self) -> &dyn Module {
        &self.net
    }

    fn classifier(&self) -> Option<&dyn Module> {
        Some(&self.net)
    }

    /// The backbone's features, upsampled to the input's size and normalised.
    fn embed(&self, images: &Var) -> Result<Var> {
        let s = images.shape();
        self.net
            .seg
            .features(images)?
            .interpolate(Some([s[2], s[3]]), None, InterpolateMode::Bilinear, false)?
            .l2_normalize(1, 1e-12)
    }

    fn visit_state(&mut self, v: &mut dyn StateVisitor) -> Result<()> {
        v.module("disc", &self.disc)?;
        v.optimizer("optim", &mut self.optimizer)?;
        v.optimizer("optim_disc", &mut self.disc_optimizer)
    }
}

#[cfg(test)]
mod tests {
    use super::pseudo_labels;

    #[test]
    fn pseudo_labels_keep_confident_top_classes() {
        // One image, 2 classes, 3 pixels: confident 1, unsure, confident 0.
        let probs = [0.05, 0.5, 0.95, 0.95, 0.5, 0.05];
        assert_eq!(pseudo_labels(&probs, 1, 2, 0.9), vec![1, 255, 0]);
    }
}
