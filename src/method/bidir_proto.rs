//! Bi-directional pixel-prototype contrast for domain adaptation (ECCV 2022;
//! docs/methods/bidir_proto.md). A labelled source domain and an unlabelled target domain
//! (`data.target`) train one segmentation network; each step forwards a source and a
//! target batch together (one batch-norm batch) and adds to the source cross-entropy:
//! - target pixels against the source prototypes and source pixels against the
//!   target prototypes, each the cross-entropy of s * cos(feature, prototype) against
//!   the (pseudo) label, weighted `contrast_weight`;
//! - `target_ce_weight` times the cross-entropy of the target logits on the pseudo
//!   labels, and `entropy_weight` times their mean softmax entropy.
//!
//! Features are the backbone's output; labels are taken to its resolution by nearest
//! sampling, and the target terms use the logits at that resolution. Prototypes are
//! the per-class means of the detached features, kept as EMAs with the class-wise
//! domain-bias calibration ([`DomainPrototypes`]). The target's pseudo labels are
//! dynamic: every step, each target pixel takes its nearest calibrated source
//! prototype (label transfer), kept where confident under class-balanced thresholds,
//! before this step's batch enters the prototypes. The contrasts use the prototypes
//! after this step's update, as constants; a class not yet seen in the other domain
//! is left out of them.
//!
//! The target's labels never enter training: they only score the pseudo labels
//! (`pl_accuracy` among the kept pixels, `pl_coverage` the fraction kept). For
//! `warmup_iters` steps only the source is trained, its prototypes gathering. With
//! every target weight 0 the method is source-only training: no target batch, the
//! same initialisation, source batches and schedule.


use serde::{Deserialize, Serialize};

use super::pixel_contrast::nearest_labels;
use super::{Method, MethodKind, Setup, StepScalars, TrainSets};
use crate::autograd::Var;
use crate::data::dataset::class_names;
use crate::data::loader::augmented_step;
use crate::data::voc::IGNORE;
use crate::error::{Error, Result};
use crate::nn::seg_model::SegModel;
use crate::gpu::Gpu;
use crate::loss::{check_targets, Reduction};
use crate::memory::prototype_bank::DomainPrototypes;
use crate::nn::builder::{Builder, StepClock};
use crate::optim::config::optimizer;
use crate::state::StateVisitor;
use crate::nn::module::Module;
use crate::ops::class_prototypes::class_prototypes;
use crate::ops::interpolate::InterpolateMode;
use crate::ops::label_transfer::{label_transfer, LabelTransfer};
use crate::ops::layout::concat;
use crate::optim::Optimizer;
use crate::tensor::elementwise::zeros;
use crate::tensor::Tensor;

/// Bi-directional pixel-prototype contrast for domain adaptation
/// (docs/methods/bidir_proto.md): source cross-entropy; target pixels against source prototypes and
/// source pixels against target prototypes; pseudo labels for the target by label
/// transfer from calibrated source prototypes. Needs `data.target`. With every
/// target-side weight 0 it is source-only training.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Weight of each contrast direction (paper: 0.1 each).
    pub contrast_weight: f64,
    /// s of the logits s * cos(pixel, prototype), in both directions and in the
    /// confidence of label transfer (authors' code: 10).
    pub scale: f64,
    /// Weight of the target cross-entropy on the pseudo labels (paper: 0.3).
    pub target_ce_weight: f64,
    /// Weight of the mean softmax entropy of the target predictions (the paper
    /// gives no value; 0.001 is ADVENT's weight for direct entropy minimisation).
    pub entropy_weight: f64,
    /// EMA momentum of the source and target prototypes (weight of the old value;
    /// not given in the paper).
    pub momentum: f64,
    /// EMA momentum of the class-wise domain bias of the prototype calibration
    /// (paper's calibration, absent from the authors' code); 1 keeps the bias at
    /// zero: no calibration.
    pub calibration_momentum: f64,
    /// Softmax confidence at which a pseudo label is always kept.
    pub threshold: f64,
    /// Class-balanced thresholds: each class keeps at least this most confident
    /// fraction of the target pixels nearest to its prototype (CBST-style).
    pub balance_fraction: f64,
    /// Steps of source cross-entropy alone (the source prototypes still gather)
    /// before the target terms start. The paper starts from a source-trained
    /// network instead, so its value is 0.
    pub warmup_iters: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            contrast_weight: 0.1,
            scale: 10.0,
            target_ce_weight: 0.3,
            entropy_weight: 0.001,
            momentum: 0.99,
            calibration_momentum: 0.99,
            threshold: 0.9,
            balance_fraction: 0.5,
            warmup_iters: 0,
        }
    }
}

/// Salt of the target's batch order and augmentation, apart from the source's.
const TARGET_SALT: u64 = 0x7a3f_9e21_c4d8_0b65;

/// The loss weights, from `method`.
struct Weights {
    contrast: f32,
    target_ce: f32,
    entropy: f32,
}

impl Weights {
    /// Whether any target term is on (else: source-only training).
    fn adapts(&self) -> bool {
        self.contrast > 0.0 || self.target_ce > 0.0 || self.entropy > 0.0
    }
}

pub struct BidirProto {
    setup: Setup,
    seg: SegModel,
    gpu: Gpu,
    clock: StepClock,
    optimizer: Optimizer,
    protos: DomainPrototypes,
    weights: Weights,
    transfer: LabelTransfer,
    warmup_iters: usize,
    classes: usize,
}

fn check_weight(key: &str, v: f64) -> Result<f32> {
    if v.is_nan() || v < 0.0 {
        return Err(Error::Usage(format!("method.{key}: must be 0 or more")));
    }
    Ok(v as f32)
}

fn check_unit(key: &str, v: f64) -> Result<f32> {
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::Usage(format!("method.{key}: must be in [0, 1]")));
    }
    Ok(v as f32)
}

/// `labels` with those of classes `keep` is false for (no prototype yet) set to ignore.
fn keep_seen(labels: &[u32], keep: &[bool]) -> Vec<u32> {
    labels
        .iter()
        .map(|&l| match keep.get(l as usize) {
            Some(true) => l,
            _ => IGNORE as u32,
        })
        .collect()
}

/// Whether any label is a class rather than ignore.
fn any_labelled(labels: &[u32]) -> bool {
    labels.iter().any(|&l| l != IGNORE as u32)
}

/// Pseudo labels against the hidden labels: (accuracy among the kept pixels, or
/// `None` when none is kept; fraction of labelled pixels kept).
fn pseudo_label_scores(pseudo: &[u32], truth: &[u32]) -> (Option<f64>, f64) {
    let ignore = IGNORE as u32;
    let (mut labelled, mut kept, mut right) = (0usize, 0usize, 0usize);
    for (&p, &t) in pseudo.iter().zip(truth) {
        if t == ignore {
            continue;
        }
        labelled += 1;
        if p != ignore {
            kept += 1;
            right += usize::from(p == t);
        }
    }
    let accuracy = (kept > 0).then(|| right as f64 / kept as f64);
    (accuracy, kept as f64 / labelled.max(1) as f64)
}

impl BidirProto {
    /// The target terms of one step for the target half of the features and logits
    /// (`ft`, `lt`) and the source half of the features `fs` with labels `ys`, all at
    /// feature resolution. Updates the prototypes; returns the weighted loss and the
    /// scalars to log.
    fn target_terms(
        &mut self,
        fs: &Var,
        ys: &[u32],
        ft: &Var,
        lt: &Var,
        truth: &[u32],
    ) -> Result<(Var, StepScalars)> {
        let gpu = self.gpu.clone();
        let shape = {
            let s = ft.shape();
            [s[0], s[2], s[3]]
        };
        let pseudo = label_transfer(&ft.value(), &self.protos.calibrated()?, &self.transfer)?;
        // Masked on the host, where label transfer's result is read once anyway.
        let pseudo_host = keep_seen(&pseudo.to_vec_u32()?, &self.protos.source.seen()?);
        let pseudo = Tensor::from_u32(&gpu, &pseudo_host, &shape)?;
        let ys_t = Tensor::from_u32(&gpu, ys, &shape)?;
        let (ps, ns) = class_prototypes(&fs.value(), &ys_t, self.classes, IGNORE as u32)?;
        let (pt, nt) = class_prototypes(&ft.value(), &pseudo, self.classes, IGNORE as u32)?;
        self.protos.update(&ps, &ns, &pt, &nt)?;
        let scale = self.transfer.scale;
        let ignore = IGNORE as u32;
        let w = &self.weights;
        let zero = || zeros(&gpu, &[]);
        let (mut t2s, mut s2t, mut tce, mut ent) = (zero()?, zero()?, zero()?, zero()?);
        let mut loss = Var::constant(zero()?);
        if any_labelled(&pseudo_host) {
            if w.contrast > 0.0 {
                let source = Var::constant(self.protos.source.protos.clone());
                let c = ft.proto_contrast(&source, &pseudo, scale, ignore)?;
                loss = loss.add(&c.mul_scalar(w.contrast)?)?;
                t2s = c.value();
            }
            if w.target_ce > 0.0 {
                let c = lt.cross_entropy_checked(
                    &Var::constant(pseudo.clone()),
                    None,
                    IGNORE as i64,
                    Reduction::Mean,
                )?;
                loss = loss.add(&c.mul_scalar(w.target_ce)?)?;
                tce = c.value();
            }
        }
        if w.contrast > 0.0 {
            let ys_kept = keep_seen(ys, &self.protos.target.seen()?);
            if any_labelled(&ys_kept) {
                let ys_seen = Tensor::from_u32(&gpu, &ys_kept, &shape)?;
                let target = Var::constant(self.protos.target.protos.clone());
                let c = fs.proto_contrast(&target, &ys_seen, scale, ignore)?;
                loss = loss.add(&c.mul_scalar(w.contrast)?)?;
                s2t = c.value();
            }
        }
        if w.entropy > 0.0 {
            let e = lt.entropy()?;
            loss = loss.add(&e.mul_scalar(w.entropy)?)?;
            ent = e.value();
        }
        let (accuracy, coverage) = pseudo_label_scores(&pseudo_host, truth);
        let mut scalars = vec![
            ("loss_t2s", t2s),
            ("loss_s2t", s2t),
            ("loss_target_ce", tce),
            ("loss_entropy", ent),
            (
                "pl_coverage",
                Tensor::from_slice(&gpu, &[coverage as f32], &[])?,
            ),
        ];
        if let Some(a) = accuracy {
            scalars.push(("pl_accuracy", Tensor::from_slice(&gpu, &[a as f32], &[])?));
        }
        Ok((loss, scalars))
    }
}

fn upsample(low: &Var, size: usize) -> Result<Var> {
    low.interpolate(Some([size, size]), None, InterpolateMode::Bilinear, false)
}

impl MethodKind for BidirProto {
    type Config = Config;

    fn check(setup: &Setup, _cfg: &Config) -> Result<()> {
        if setup.data.target.is_none() {
            return Err(Error::Usage(
                "data.target: missing: bidir_proto adapts to an unlabelled target domain (e.g. data.target: {kind: synthetic, style: b, ...})".into(),
            ));
        }
        Ok(())
    }

    fn new(gpu: &Gpu, setup: &Setup, cfg: &Config) -> Result<Self> {
        let Config {
            contrast_weight,
            scale,
            target_ce_weight,
            entropy_weight,
            momentum,
            calibration_momentum,
            threshold,
            balance_fraction,
            warmup_iters,
        } = *cfg;
        let weights = Weights {
            contrast: check_weight("contrast_weight", contrast_weight)?,
            target_ce: check_weight("target_ce_weight", target_ce_weight)?,
            entropy: check_weight("entropy_weight", entropy_weight)?,
        };
        if scale.is_nan() || scale <= 0.0 {
            return Err(Error::Usage("method.scale: must be positive".into()));
        }
        if !(balance_fraction > 0.0 && balance_fraction <= 1.0) {
            return Err(Error::Usage(
                "method.balance_fraction: must be in (0, 1]".into(),
            ));
        }
        let momentum = check_unit("momentum", momentum)?;
        let calibration_momentum = check_unit("calibration_momentum", calibration_momentum)?;
        let transfer = LabelTransfer {
            scale: scale as f32,
            threshold: check_unit("threshold", threshold)?,
            class_balanced: true,
            balance_fraction,
            ignore_index: IGNORE as u32,
        };
        let classes = class_names(&setup.data.source).len();
        let mut b = Builder::new(gpu, setup.seed);
        let seg = SegModel::build(&mut b, &setup.model, classes)?;
        b.bn_freeze.set(setup.optim.freeze_bn);
        let optimizer = optimizer(&seg, &setup.optim)?;
        let protos = DomainPrototypes::new(
            gpu,
            classes,
            seg.feature_channels(),
            momentum,
            calibration_momentum,
        )?;
        Ok(BidirProto {
            setup: setup.clone(),
            clock: b.clock.clone(),
            gpu: gpu.clone(),
            seg,
            optimizer,
            protos,
            weights,
            transfer,
            warmup_iters,
            classes,
        })
    }
}

impl Method for BidirProto {
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars> {
        let gpu = self.gpu.clone();
        let (seed, size) = (self.setup.seed, self.setup.data.image_size);
        let src = augmented_step(
            &self.gpu,
            sets.source,
            &self.setup.data,
            &self.setup.augment,
            seed,
            step,
        )?;
        let b = src.labels.len() / (size * size);
        let labels: Vec<u32> = src.labels.iter().map(|&l| l as u32).collect();
        check_targets(&labels, self.classes, IGNORE as i64)?;
        let target_on = self.weights.adapts() && step >= self.warmup_iters;
        let tgt = match (target_on, sets.target) {
            (false, _) => None,
            (true, Some(target)) => Some(augmented_step(
                &self.gpu,
                target,
                &self.setup.data,
                &self.setup.augment,
                seed ^ TARGET_SALT,
                step,
            )?),
            (true, None) => {
                return Err(Error::Usage(
                    "data.target: missing; bidir_proto needs a target domain".into(),
                ))
            }
        };
        self.clock.set(step as u64);
        self.seg.set_training(true);
        let images = match &tgt {
            Some(t) => concat(&[src.images.clone(), t.images.clone()], 0)?,
            None => src.images.clone(),
        };
        let features = self.seg.features(&Var::constant(images))?;
        let low = self.seg.head.forward(&features)?;
        let fs = features.slice(0, 0, b as i64, 1)?;
        let ls = low.slice(0, 0, b as i64, 1)?;
        let (h, w) = (fs.shape()[2], fs.shape()[3]);
        let ys = nearest_labels(&src.labels, b, size, h, w);
        let target = Var::constant(Tensor::from_u32(&gpu, &labels, &[b, size, size])?);
        let ce = upsample(&ls, size)?.cross_entropy_checked(
            &target,
            None,
            IGNORE as i64,
            Reduction::Mean,
        )?;
        let mut loss = ce.clone();
        let mut scalars = Vec::new();
        if let Some(t) = &tgt {
            let ft = features.slice(0, b as i64, 2 * b as i64, 1)?;
            let lt = low.slice(0, b as i64, 2 * b as i64, 1)?;
            let truth = nearest_labels(&t.labels, b, size, h, w);
            let (extra, s) = self.target_terms(&fs, &ys, &ft, &lt, &truth)?;
            loss = loss.add(&extra)?;
            scalars = s;
        } else if self.weights.adapts() {
            // Warm-up: the source prototypes gather for the first pseudo labels.
            let ys_t = Tensor::from_u32(&gpu, &ys, &[b, h, w])?;
            let (ps, ns) = class_prototypes(&fs.value(), &ys_t, self.classes, IGNORE as u32)?;
            self.protos.source.update(&ps, &ns)?;
        }
        let mut out = vec![("loss", loss.value()), ("loss_ce", ce.value())];
        out.extend(scalars);
        self.optimizer.zero_grad();
        loss.backward()?;
        self.optimizer
            .check_finite(&out, step + 1, self.setup.on_nonfinite)?;
        self.optimizer.step(lr_factor)?;
        Ok(out)
    }

    fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    fn model(&self) -> &dyn Module {
        &self.seg
    }

    fn classifier(&self) -> Option<&dyn Module> {
        Some(&self.seg)
    }

    /// The backbone's features (what the prototypes are made of), upsampled to the
    /// input's size and normalised.
    fn embed(&self, images: &Var) -> Result<Var> {
        let s = images.shape()[2];
        upsample(&self.seg.features(images)?, s)?.l2_normalize(1, 1e-12)
    }

    fn visit_state(&mut self, v: &mut dyn StateVisitor) -> Result<()> {
        self.protos.visit_state("protos", v)?;
        v.optimizer("optim", &mut self.optimizer)
    }
}

#[cfg(test)]
mod tests {
    use super::pseudo_label_scores;

    #[test]
    fn pseudo_label_scores_count_kept_labelled_pixels() {
        // Truth: 0, 1, ignore, 1; pseudo: 0 (right), 2 (wrong), 1 (unlabelled), ignore.
        let (acc, cov) = pseudo_label_scores(&[0, 2, 1, 255], &[0, 1, 255, 1]);
        assert_eq!(acc, Some(0.5));
        assert!((cov - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(pseudo_label_scores(&[255], &[0]), (None, 0.0));
    }
}
