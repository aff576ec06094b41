//! The experiment schema: what a YAML file may say, with defaults. Unknown keys are
//! refused everywhere (`deny_unknown_fields`), so a typo cannot silently fall back to
//! a default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::synthetic::Style;
use crate::optim::schedule::{Schedule, Warmup};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Names the run folder runs/<name>/<time>.
    pub name: String,
    /// Seeds weights, data order, augmentation and evaluation.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub device: DeviceCfg,
    pub data: DataCfg,
    #[serde(default)]
    pub augment: AugmentCfg,
    pub model: ModelCfg,
    pub method: MethodCfg,
    /// The network's optimiser (parameter set `network`).
    pub optim: OptimCfg,
    /// Further optimisers, keyed by the parameter set they train besides the network
    /// (e.g. `discriminator`); which sets there are is the method's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub optimizers: BTreeMap<String, OptimCfg>,
    /// Total optimisation steps (with `stages`: their sum) and the default
    /// learning-rate policy.
    pub schedule: ScheduleCfg,
    /// Training stages run one after another in one run, each with its own steps,
    /// schedule and overrides of the method and optimisers; the networks and the
    /// optimisers' state carry over. Empty: one stage, `schedule`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageCfg>,
    #[serde(default)]
    pub eval: EvalCfg,
    #[serde(default)]
    pub output: OutputCfg,
    /// Comparison runs trained in the same run, each into its own sub-folder: a name
    /// and the `key.path=value` overrides (as `--set`) that turn this experiment into
    /// it. Seed and schedule stay those of the experiment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCfg {
    /// vulkan, metal, dx12 or gl (as WGPU_BACKEND).
    pub backend: Option<String>,
    /// Substring of the adapter name (as WGPU_ADAPTER_NAME).
    pub adapter: Option<String>,
    /// Directory of NAME.wgsl files overriding the built-in kernels.
    pub shader_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCfg {
    pub source: DataSource,
    pub batch_size: usize,
    /// Side of the square training crops (and of evaluation images).
    pub image_size: usize,
    /// Keep training images whose saliency covers this fraction range (MaskContrast: 1%..99%).
    #[serde(default = "default_saliency_range")]
    pub saliency_range: [f64; 2],
    /// An unlabelled target domain (domain adaptation), with the source's classes,
    /// batch and image size: adapting methods draw its training images without
    /// labels, and evaluation scores its validation split. Omitted: one domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<DataSource>,
}

fn default_saliency_range() -> [f64; 2] {
    [0.01, 0.99]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The built-in textured-shapes dataset, generated from `seed`.
    Synthetic {
        train: usize,
        val: usize,
        /// Side of the generated images.
        size: usize,
        #[serde(default = "default_max_objects")]
        max_objects: usize,
        /// Texture strength: 1 bold, towards 0 nearly flat.
        #[serde(default = "one")]
        texture_contrast: f64,
        /// Each class draws its texture from its own pattern family (colour stays
        /// independent of the class).
        #[serde(default)]
        class_textures: bool,
        #[serde(default = "default_style")]
        style: Style,
        #[serde(default)]
        seed: u64,
    },
    /// A folder in the PASCAL VOC layout.
    Voc {
        root: PathBuf,
        #[serde(default = "default_train_split")]
        train_split: String,
        #[serde(default = "default_val_split")]
        val_split: String,
        /// Folder of 0/255 saliency masks under root.
        saliency_dir: Option<String>,
        /// Number of classes including background (VOC: 21).
        num_classes: usize,
    },
}

fn default_max_objects() -> usize {
    1
}
fn default_style() -> Style {
    Style::A
}
fn default_train_split() -> String {
    "train".into()
}
fn default_val_split() -> String {
    "val".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentCfg {
    /// RandomResizedCrop area fraction range.
    #[serde(default = "default_crop_scale")]
    pub crop_scale: [f64; 2],
    /// Centre each random crop on a random salient pixel (as far as the image allows),
    /// so that the views of an image do not agree on where its object is.
    #[serde(default)]
    pub crop_around_salient: bool,
    /// Probability of a horizontal flip.
    #[serde(default = "half")]
    pub hflip: f64,
    /// RandomRotation: angle uniform in +-rotation degrees (0: off); corners that
    /// come from outside the view are black and ignored by the losses.
    #[serde(default)]
    pub rotation: f64,
    #[serde(default)]
    pub color_jitter: ColorJitterCfg,
    /// Probability of converting to grayscale.
    #[serde(default = "default_grayscale")]
    pub grayscale: f64,
    /// Gaussian blur after the colour changes (MoCo v2, SimCLR); off by default.
    #[serde(default)]
    pub blur: BlurCfg,
}

fn default_crop_scale() -> [f64; 2] {
    [0.2, 1.0]
}
fn half() -> f64 {
    0.5
}
fn default_grayscale() -> f64 {
    0.2
}

impl Default for AugmentCfg {
    fn default() -> Self {
        AugmentCfg {
            crop_scale: default_crop_scale(),
            crop_around_salient: false,
            hflip: half(),
            rotation: 0.0,
            color_jitter: ColorJitterCfg::default(),
            grayscale: default_grayscale(),
            blur: BlurCfg::default(),
        }
    }
}

/// torchvision's GaussianBlur applied with probability `p`, sigma drawn uniformly.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlurCfg {
    pub p: f64,
    /// Range of the standard deviation in pixels of the augmented view.
    #[serde(default = "default_blur_sigma")]
    pub sigma: [f64; 2],
}

fn default_blur_sigma() -> [f64; 2] {
    [0.1, 2.0]
}

impl Default for BlurCfg {
    fn default() -> Self {
        BlurCfg {
            p: 0.0,
            sigma: default_blur_sigma(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColorJitterCfg {
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub hue: f64,
    /// Probability of applying the jitter.
    pub p: f64,
}

impl Default for ColorJitterCfg {
    fn default() -> Self {
        ColorJitterCfg {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1,
            p: 0.8,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneKind {
    Resnet,
    MobilenetV2,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCfg {
    pub backbone: BackboneKind,
    /// ResNet depth: 18, 34 or 50.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Channel multiplier (1.0 = the published network).
    #[serde(default = "one")]
    pub width: f64,
    /// 8, 16 or 32.
    #[serde(default = "default_output_stride")]
    pub output_stride: usize,
    /// ASPP dilation rates of the DeepLabV3 head.
    #[serde(default = "default_aspp_rates")]
    pub aspp_rates: Vec<usize>,
    /// Channels inside the head.
    #[serde(default = "default_hidden")]
    pub head_channels: usize,
    /// Output channels of the head (embedding dimension).
    #[serde(default = "default_embed")]
    pub embed_dim: usize,
    /// A safetensors checkpoint with PyTorch state_dict names for the backbone.
    pub pretrained: Option<PathBuf>,
}

fn default_depth() -> usize {
    50
}
fn one() -> f64 {
    1.0
}
fn default_output_stride() -> usize {
    8
}
fn default_aspp_rates() -> Vec<usize> {
    vec![12, 24, 36]
}
fn default_hidden() -> usize {
    256
}
fn default_embed() -> usize {
    32
}

/// The training method and its hyperparameters (defaults are the papers').
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodCfg {
    /// MaskContrast (METHODS.md section 1).
    Maskcontrast {
        /// InfoNCE temperature T.
        #[serde(default = "default_temperature")]
        temperature: f64,
        /// Momentum m of the key encoder.
        #[serde(default = "default_momentum")]
        momentum: f64,
        /// Prototypes kept in the queue (K).
        #[serde(default = "default_queue")]
        queue_size: usize,
        /// Weight of the balanced-BCE saliency head loss.
        #[serde(default = "one")]
        saliency_weight: f64,
    },
    /// Supervised segmentation with cross-image pixel contrast (METHODS.md section 2):
    /// cross-entropy on class logits plus `contrast_weight` times the pixel contrast
    /// of a projection-head embedding, with per-class segment and pixel memories.
    PixelContrast {
        /// Weight of the contrast loss added to cross-entropy; 0 trains with
        /// cross-entropy only (no projection head, no memory).
        #[serde(default = "default_contrast_weight")]
        contrast_weight: f64,
        /// Temperature T of the similarities s = z.z'/T.
        #[serde(default = "default_pc_temperature")]
        temperature: f64,
        /// base_T: the loss is scaled by T / base_T.
        #[serde(default = "default_base_temperature")]
        base_temperature: f64,
        /// Most anchors per batch, shared out over the (image, class) pairs.
        #[serde(default = "default_max_samples")]
        max_samples: usize,
        /// Most anchors per (image, class); a class needs more pixels than this (at
        /// feature resolution) to give anchors.
        #[serde(default = "default_max_views")]
        max_views: usize,
        /// Rows of the segment memory and of the pixel memory, per class (0: no memory).
        #[serde(default = "default_memory_size")]
        memory_size: usize,
        /// Pixels per class per image that enter the pixel memory each step.
        #[serde(default = "default_pixel_update_freq")]
        pixel_update_freq: usize,
        /// Steps of cross-entropy alone before the contrast is switched on.
        #[serde(default = "default_contrast_warmup")]
        warmup_iters: usize,
        /// Channels of the projection head's embedding.
        #[serde(default = "default_proj_dim")]
        proj_dim: usize,
    },
    /// Contrastive translation coding (METHODS.md section 5): labelled source
    /// (`data.source`) to unlabelled target (`data.target`). The class probabilities
    /// are projected to RGB by a learned 1x1 convolution; PatchNCE ties the input's
    /// patches to the projection's; an LSGAN PatchGAN discriminator on the class
    /// probabilities (optimiser `optimizers.discriminator`) moves the target's output
    /// towards the source's; confident target predictions are pseudo labels. The
    /// weights switch the terms on and off per stage.
    TranslationCoding {
        /// Weight of the cross-entropy on labelled source images.
        #[serde(default = "one")]
        source_weight: f64,
        /// Weight of PatchNCE on the target images of the step (CUT: lambda_NCE 1).
        #[serde(default = "one")]
        nce_weight: f64,
        /// PatchNCE temperature (CUT: 0.07).
        #[serde(default = "default_nce_temperature")]
        nce_temperature: f64,
        /// Patch locations sampled per image (CUT: 256; all when the map is smaller).
        #[serde(default = "default_nce_patches")]
        nce_patches: usize,
        /// Width of the PatchNCE MLP, Linear-ReLU-Linear (CUT: 256).
        #[serde(default = "default_proj_dim")]
        nce_dim: usize,
        /// Weight of the generator's LSGAN loss on target outputs (0: no adversarial
        /// transfer; AdaptSegNet's output-space weight 0.001).
        #[serde(default)]
        adv_weight: f64,
        /// Weight of the cross-entropy to target pseudo labels (0: none).
        #[serde(default)]
        pseudo_weight: f64,
        /// A target pixel is a pseudo label when its top class probability reaches this.
        #[serde(default = "default_pseudo_threshold")]
        pseudo_threshold: f64,
        /// Channels of the discriminator's first layer (PatchGAN ndf: 64).
        #[serde(default = "default_disc_channels")]
        disc_channels: usize,
        /// Strided layers of the discriminator (PatchGAN n_layers: 3).
        #[serde(default = "default_disc_layers")]
        disc_layers: usize,
    },
    /// Bi-directional pixel-prototype contrast for domain adaptation (METHODS.md
    /// section 3): source cross-entropy; target pixels against source prototypes and
    /// source pixels against target prototypes; pseudo labels for the target by label
    /// transfer from calibrated source prototypes. Needs `data.target`. With every
    /// target-side weight 0 it is source-only training.
    BidirProto {
        /// Weight of each contrast direction (paper: 0.1 each).
        #[serde(default = "default_contrast_weight")]
        contrast_weight: f64,
        /// s of the logits s * cos(pixel, prototype), in both directions and in the
        /// confidence of label transfer (authors' code: 10).
        #[serde(default = "default_proto_scale")]
        scale: f64,
        /// Weight of the target cross-entropy on the pseudo labels (paper: 0.3).
        #[serde(default = "default_target_ce_weight")]
        target_ce_weight: f64,
        /// Weight of the mean softmax entropy of the target predictions (METHODS.md
        /// gives no value; 0.001 is ADVENT's weight for direct entropy minimisation).
        #[serde(default = "default_entropy_weight")]
        entropy_weight: f64,
        /// EMA momentum of the source and target prototypes (weight of the old value;
        /// not given in METHODS.md).
        #[serde(default = "default_proto_momentum")]
        momentum: f64,
        /// EMA momentum of the class-wise domain bias of the prototype calibration
        /// (paper's calibration, absent from the authors' code); 1 keeps the bias at
        /// zero: no calibration.
        #[serde(default = "default_proto_momentum")]
        calibration_momentum: f64,
        /// Softmax confidence at which a pseudo label is always kept.
        #[serde(default = "default_pl_threshold")]
        threshold: f64,
        /// Class-balanced thresholds: each class keeps at least this most confident
        /// fraction of the target pixels nearest to its prototype (CBST-style).
        #[serde(default = "default_balance_fraction")]
        balance_fraction: f64,
        /// Steps of source cross-entropy alone (the source prototypes still gather)
        /// before the target terms start. The paper starts from a source-trained
        /// network instead, so its value is 0.
        #[serde(default)]
        warmup_iters: usize,
    },
}

fn default_nce_temperature() -> f64 {
    0.07
}
fn default_nce_patches() -> usize {
    256
}
fn default_pseudo_threshold() -> f64 {
    0.9
}
fn default_disc_channels() -> usize {
    64
}
fn default_disc_layers() -> usize {
    3
}

fn default_proto_scale() -> f64 {
    10.0
}
fn default_target_ce_weight() -> f64 {
    0.3
}
fn default_entropy_weight() -> f64 {
    0.001
}
fn default_proto_momentum() -> f64 {
    0.99
}
fn default_pl_threshold() -> f64 {
    0.9
}
fn default_balance_fraction() -> f64 {
    0.5
}

impl MethodCfg {
    /// The parameter sets the method trains besides the network, each with its
    /// optimiser in `optimizers`.
    pub fn parameter_sets(&self) -> &'static [&'static str] {
        match self {
            MethodCfg::Maskcontrast { .. }
            | MethodCfg::PixelContrast { .. }
            | MethodCfg::BidirProto { .. } => &[],
            MethodCfg::TranslationCoding { .. } => &["discriminator"],
        }
    }
}

fn default_contrast_weight() -> f64 {
    0.1
}
fn default_pc_temperature() -> f64 {
    0.1
}
fn default_base_temperature() -> f64 {
    0.07
}
fn default_max_samples() -> usize {
    1024
}
fn default_max_views() -> usize {
    100
}
fn default_memory_size() -> usize {
    5000
}
fn default_pixel_update_freq() -> usize {
    10
}
fn default_contrast_warmup() -> usize {
    5000
}
fn default_proj_dim() -> usize {
    256
}

fn default_temperature() -> f64 {
    0.5
}
fn default_momentum() -> f64 {
    0.999
}
fn default_queue() -> usize {
    128
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimCfg {
    pub kind: OptimKind,
    pub lr: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Learning-rate multiplier of the head relative to the backbone.
    #[serde(default = "one")]
    pub head_lr_scale: f64,
    /// Parameter name prefixes that are not trained (e.g. "backbone.features.0").
    #[serde(default)]
    pub frozen: Vec<String>,
    /// Keep batch norm in eval mode (running statistics) while training.
    #[serde(default)]
    pub freeze_bn: bool,
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleCfg {
    /// Optimisation steps.
    pub iters: usize,
    #[serde(default = "default_policy")]
    pub policy: Schedule,
    pub warmup: Option<Warmup>,
}

/// One training stage: its steps, schedule and overrides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCfg {
    /// Names the stage in metrics, checkpoints and the report.
    pub name: String,
    /// Optimisation steps of the stage.
    pub iters: usize,
    /// Learning-rate policy over the stage's steps, restarting at its first;
    /// omitted: `schedule.policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Schedule>,
    /// Warm-up at the stage's start; omitted: `schedule.warmup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
    /// Keys of the `method` section set for this stage (loss weights, ...).
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    pub method: serde_yaml::Mapping,
    /// Keys of the `optim` section set for this stage (lr, momentum, ...; not kind
    /// or frozen: the optimiser's state carries over).
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    pub optim: serde_yaml::Mapping,
    /// The same for the sections of `optimizers`, by parameter set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub optimizers: BTreeMap<String, serde_yaml::Mapping>,
}

fn default_policy() -> Schedule {
    Schedule::Poly { power: 0.9 }
}

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
#[serde(deny_unknown_fields)]
pub struct KMeansCfg {
    /// Clusters for the foreground (the background is its own class, as in MaskContrast).
    pub clusters: Option<usize>,
    #[serde(default = "default_restarts")]
    pub restarts: usize,
    /// One evaluation per seed; the report gives mean and std.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// PCA whitening to this many dims before clustering (0: none).
    #[serde(default = "default_pca")]
    pub pca_dim: usize,
    /// Whose saliency makes an image's prototype and its foreground.
    #[serde(default)]
    pub saliency: SaliencySource,
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

fn default_restarts() -> usize {
    3
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2, 3, 4]
}
fn default_pca() -> usize {
    32
}

impl Default for KMeansCfg {
    fn default() -> Self {
        KMeansCfg {
            clusters: None,
            restarts: default_restarts(),
            seeds: default_seeds(),
            pca_dim: default_pca(),
            saliency: SaliencySource::default(),
        }
    }
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCfg {
    #[serde(default = "default_runs")]
    pub dir: PathBuf,
    /// Log training scalars every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Write a checkpoint every this many steps (and always at the end).
    #[serde(default = "default_ckpt_every")]
    pub checkpoint_every: usize,
    /// Validation images drawn as prediction PNGs at the end.
    #[serde(default = "default_pictures")]
    pub pictures: usize,
}

fn default_runs() -> PathBuf {
    PathBuf::from("runs")
}
fn default_log_every() -> usize {
    10
}
fn default_ckpt_every() -> usize {
    100
}
fn default_pictures() -> usize {
    4
}

impl Default for OutputCfg {
    fn default() -> Self {
        OutputCfg {
            dir: default_runs(),
            log_every: default_log_every(),
            checkpoint_every: default_ckpt_every(),
            pictures: default_pictures(),
        }
    }
}
