//! Training methods: what one optimisation step does, what is evaluated, and what a
//! checkpoint must hold to resume exactly.

pub mod maskcontrast;
mod params;

use std::collections::HashMap;

use crate::autograd::Var;
use crate::data::dataset::Dataset;
use crate::error::Result;
use crate::experiment::model::SegModel;
use crate::tensor::Tensor;

/// Scalars of one step, still on the GPU: read back only when logged.
pub type StepScalars = Vec<(&'static str, Tensor)>;

pub trait Method {
    /// Forward, backward and update on the batch of `step` at learning rate `lr`.
    fn step(&mut self, train: &Dataset, step: usize, lr: f64) -> Result<StepScalars>;

    /// The network evaluated and drawn.
    fn model(&self) -> &SegModel;

    /// L2-normalised per-pixel embeddings [B, D, S, S] of images [B, 3, S, S].
    fn embed(&self, images: &Var) -> Result<Var>;

    /// Per-pixel saliency logits [B, 1, S, S] (positive = salient).
    fn saliency_logits(&self, images: &Var) -> Result<Var>;

    /// Everything besides the model needed to resume: tensors and metadata.
    fn extra_state(&self) -> (Vec<(String, Tensor)>, HashMap<String, String>);

    /// Restores what `extra_state` saved.
    fn load_extra_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        meta: &HashMap<String, String>,
    ) -> Result<()>;
}
