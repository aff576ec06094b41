//! Training methods: what one optimisation step does, what is evaluated, and what a
//! checkpoint must hold to resume exactly. Each method is one file: its `method:`
//! section as a `Config` struct, its construction and step, and its state listed
//! once for save and load. The list at the bottom registers it.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::autograd::Var;
use crate::data::config::{AugmentCfg, DataCfg};
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::module::Module;
use crate::nn::seg_model::{ModelCfg, SegModel};
use crate::optim::config::OptimCfg;
use crate::optim::finite::{Nonfinite, OnNonfinite};
use crate::optim::Optimizer;
use crate::state::StateVisitor;
use crate::tensor::Tensor;

/// The training images a step draws from: the labelled source and, for domain
/// adaptation, the unlabelled target (`data.target`).
pub struct TrainSets<'a> {
    pub source: &'a Dataset,
    pub target: Option<&'a Dataset>,
}

/// What a method is built from besides its own `method` section: the sections of
/// the experiment it reads.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Seeds weights, data order and augmentation.
    pub seed: u64,
    pub data: DataCfg,
    pub augment: AugmentCfg,
    pub model: ModelCfg,
    /// The network's optimiser.
    pub optim: OptimCfg,
    /// Optimisers of the further parameter sets, by set name.
    pub optimizers: BTreeMap<String, OptimCfg>,
    /// What a step whose loss or gradient is not finite does.
    pub on_nonfinite: OnNonfinite,
}

/// Scalars of one step, still on the GPU: read back only when logged.
pub type StepScalars = Vec<(&'static str, Tensor)>;

pub trait Method {
    /// Forward, backward and update on the batches of `step`, every optimiser at its
    /// base learning rate times the schedule's `lr_factor`.
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars>;

    /// The network's optimiser (its learning rate is what a run logs).
    fn optimizer(&self) -> &Optimizer;

    /// The earliest step whose loss terms or gradients were not finite, over every
    /// optimiser (one read-back each).
    fn first_nonfinite(&self) -> Result<Option<Nonfinite>> {
        self.optimizer().first_nonfinite()
    }

    /// The trained network: what a checkpoint's `model.*` tensors hold, evaluated and
    /// drawn.
    fn model(&self) -> &dyn Module;

    /// For a method that predicts classes, the network whose forward gives class
    /// logits [B, classes, S, S] for images [B, 3, S, S]: it is scored by their
    /// argmax. `None` for a method scored by clustering its embeddings (K-means).
    fn classifier(&self) -> Option<&dyn Module>;

    /// L2-normalised per-pixel embeddings [B, D, S, S] of images [B, 3, S, S].
    fn embed(&self, images: &Var) -> Result<Var>;

    /// [`Method::embed`] and the per-pixel saliency logits [B, 1, S, S] (positive =
    /// salient) of one forward pass. Methods that predict classes have no saliency
    /// head, which is what the default says.
    fn embed_and_saliency(&self, _images: &Var) -> Result<(Var, Var)> {
        Err(Error::Usage(
            "this method predicts classes; it has no saliency head".into(),
        ))
    }

    /// For a method scored by K-means, the network whose backbone's own features are
    /// the comparison its embeddings have to beat (the pretrained start, before any
    /// head). `None` for a method without that comparison.
    fn backbone_network(&self) -> Option<&SegModel> {
        None
    }

    /// Everything besides the model needed to resume (second networks, optimisers,
    /// memories), named once for both saving and loading.
    fn visit_state(&mut self, v: &mut dyn StateVisitor) -> Result<()>;
}

/// How a registered method is configured and built.
pub trait MethodKind: Method + Sized + 'static {
    /// Its `method:` section (`kind` aside), defaults the paper's.
    type Config: Clone + Debug + Serialize + DeserializeOwned;

    /// The parameter sets it trains besides the network, each with its optimiser in
    /// `optimizers`.
    const PARAMETER_SETS: &'static [&'static str] = &[];

    /// Refuses a setup the method cannot run on (checked before any run starts, for
    /// the experiment, its stages and its baselines).
    fn check(_setup: &Setup, _cfg: &Self::Config) -> Result<()> {
        Ok(())
    }

    fn new(gpu: &Gpu, setup: &Setup, cfg: &Self::Config) -> Result<Self>;
}

/// Declares the method modules and `MethodCfg`, the `method:` section: one variant
/// per method, named by `kind` (the variant in snake_case), holding its `Config`.
macro_rules! register_methods {
    ($($variant:ident => $module:ident::$method:ident,)*) => {
        $(pub mod $module;)*

        #[derive(Clone, Debug, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum MethodCfg {
            $($variant(<$module::$method as MethodKind>::Config),)*
        }

        impl MethodCfg {
            pub fn parameter_sets(&self) -> &'static [&'static str] {
                match self {
                    $(MethodCfg::$variant(_) => <$module::$method as MethodKind>::PARAMETER_SETS,)*
                }
            }

            pub fn check(&self, setup: &Setup) -> Result<()> {
                match self {
                    $(MethodCfg::$variant(cfg) => $module::$method::check(setup, cfg),)*
                }
            }

            pub fn build(&self, gpu: &Gpu, setup: &Setup) -> Result<Box<dyn Method>> {
                match self {
                    $(MethodCfg::$variant(cfg) => Ok(Box::new($module::$method::new(gpu, setup, cfg)?)),)*
                }
            }
        }
    };
}

// A new method: its file, and one line here.
register_methods! {
    Maskcontrast => maskcontrast::MaskContrast,
    PixelContrast => pixel_contrast::PixelContrast,
    TranslationCoding => translation_coding::TranslationCoding,
    BidirProto => bidir_proto::BidirProto,
}
