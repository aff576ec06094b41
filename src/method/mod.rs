//! Training methods: what one optimisation step does, what is evaluated, and what a
//! checkpoint must hold to resume exactly.

pub mod bidir_proto;
pub mod maskcontrast;
mod params;
pub mod pixel_contrast;
pub(crate) mod state;
pub mod translation_coding;

use std::collections::HashMap;

use crate::autograd::Var;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::nn::module::Module;
use crate::tensor::Tensor;

pub use state::Extra;

/// The training images a step draws from: the labelled source and, for domain
/// adaptation, the unlabelled target (`data.target`).
pub struct TrainSets<'a> {
    pub source: &'a Dataset,
    pub target: Option<&'a Dataset>,
}

/// Scalars of one step, still on the GPU: read back only when logged.
pub type StepScalars = Vec<(&'static str, Tensor)>;

pub trait Method {
    /// Forward, backward and update on the batches of `step`, every optimiser at its
    /// base learning rate times the schedule's `lr_factor`.
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars>;

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

    /// Everything besides the model needed to resume: tensors and metadata.
    fn extra_state(&self) -> Extra;

    /// Restores what `extra_state` saved.
    fn load_extra_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        meta: &HashMap<String, String>,
    ) -> Result<()>;
}
