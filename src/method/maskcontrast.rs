//! MaskContrast (Van Gansbeke et al., ICCV 2021; docs/methods/maskcontrast.md). A query
//! network embeds one augmented view per image; a momentum (key) network embeds a
//! second view, whose saliency-masked mean embedding is the image's prototype. Every
//! salient query pixel is pulled to its own prototype and pushed from the other
//! images' prototypes and a queue of past ones (InfoNCE, temperature T). The last
//! output channel is a saliency logit trained with balanced BCE.


use serde::{Deserialize, Serialize};

use super::{Method, MethodKind, Setup, StepScalars, TrainSets};
use crate::autograd::{no_grad, Var};
use crate::data::loader::{contrastive_views, step_indices};
use crate::error::Result;
use crate::nn::seg_model::SegModel;
use crate::gpu::Gpu;
use crate::memory::queue::PrototypeQueue;
use crate::nn::builder::{Builder, StepClock};
use crate::optim::config::optimizer;
use crate::state::StateVisitor;
use crate::nn::module::ema_update_module;
use crate::nn::module::Module;
use crate::optim::Optimizer;

/// MaskContrast (docs/methods/maskcontrast.md).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// InfoNCE temperature T.
    pub temperature: f64,
    /// Momentum m of the key encoder.
    pub momentum: f64,
    /// Prototypes kept in the queue (K).
    pub queue_size: usize,
    /// Weight of the balanced-BCE saliency head loss.
    pub saliency_weight: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            temperature: 0.5,
            momentum: 0.999,
            queue_size: 128,
            saliency_weight: 1.0,
        }
    }
}

pub struct MaskContrast {
    setup: Setup,
    query: SegModel,
    key: SegModel,
    gpu: Gpu,
    clock: StepClock,
    /// Past prototypes; `None` when `queue_size` is 0.
    queue: Option<PrototypeQueue>,
    optimizer: Optimizer,
    dim: usize,
    temperature: f32,
    momentum: f32,
    saliency_weight: f32,
}

impl MaskContrast {
    fn embedding_of(&self, out: &Var) -> Result<Var> {
        out.slice(1, 0, self.dim as i64, 1)?.l2_normalize(1, 1e-12)
    }
}

impl MethodKind for MaskContrast {
    type Config = Config;

    fn new(gpu: &Gpu, setup: &Setup, cfg: &Config) -> Result<Self> {
        let Config {
            temperature,
            momentum,
            queue_size,
            saliency_weight,
        } = *cfg;
        let dim = setup.model.embed_dim;
        // Same seed: the key network starts as an exact copy of the query network.
        let mut qb = Builder::new(gpu, setup.seed);
        let query = SegModel::build(&mut qb, &setup.model, dim + 1)?;
        let mut kb = Builder::new(gpu, setup.seed);
        let key = SegModel::build(&mut kb, &setup.model, dim + 1)?;
        kb.clock = qb.clock.clone();
        qb.bn_freeze.set(setup.optim.freeze_bn);
        kb.bn_freeze.set(setup.optim.freeze_bn);
        let optimizer = optimizer(&query, &setup.optim)?;
        Ok(MaskContrast {
            setup: setup.clone(),
            clock: qb.clock.clone(),
            queue: match queue_size {
                0 => None,
                k => Some(PrototypeQueue::new(gpu, k, dim)?),
            },
            gpu: gpu.clone(),
            query,
            key,
            optimizer,
            dim,
            temperature: temperature as f32,
            momentum: momentum as f32,
            saliency_weight: saliency_weight as f32,
        })
    }
}

impl Method for MaskContrast {
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars> {
        let train = sets.source;
        let gpu = self.gpu.clone();
        let data = &self.setup.data;
        let idx = step_indices(train.len(), data.batch_size, self.setup.seed, step);
        let (q, k) = contrastive_views(
            &gpu,
            train,
            &idx,
            &self.setup.augment,
            data.image_size,
            self.setup.seed,
            step,
        )?;
        self.clock.set(step as u64);
        self.query.set_training(true);
        self.key.set_training(true);
        let out = self.query.forward(&Var::constant(q.images.clone()))?;
        let emb = self.embedding_of(&out)?;
        let saliency_logit = out.slice(1, self.dim as i64, self.dim as i64 + 1, 1)?;
        // The loader guarantees every view keeps some salient pixels, so no readback
        // is needed to rule out empty masks.
        let prototypes = no_grad(|| -> Result<Var> {
            let key_out = self.key.forward(&Var::constant(k.images.clone()))?;
            self.embedding_of(&key_out)?
                .masked_average_nonempty(&k.saliency)?
                .l2_normalize(1, 1e-12)
        })?;
        let queue = match &self.queue {
            Some(q) => q.view()?,
            None => None,
        };
        let contrast =
            emb.mask_infonce_nonempty(&q.saliency, &prototypes, queue.as_ref(), self.temperature)?;
        let target = Var::constant(q.saliency.reshape(saliency_logit.shape().as_slice())?);
        let saliency = saliency_logit.balanced_bce(&target, true)?;
        let loss = contrast.add(&saliency.mul_scalar(self.saliency_weight)?)?;
        let scalars = vec![
            ("loss", loss.value()),
            ("loss_infonce", contrast.value()),
            ("loss_saliency", saliency.value()),
        ];
        self.optimizer.zero_grad();
        loss.backward()?;
        self.optimizer
            .check_finite(&scalars, step + 1, self.setup.on_nonfinite)?;
        self.optimizer.step(lr_factor)?;
        ema_update_module(&self.key, &self.query, self.momentum)?;
        if let Some(q) = &mut self.queue {
            q.enqueue(&prototypes.value())?;
        }
        Ok(scalars)
    }

    fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    fn model(&self) -> &dyn Module {
        &self.query
    }

    fn classifier(&self) -> Option<&dyn Module> {
        None
    }

    fn embed_and_saliency(&self, images: &Var) -> Result<(Var, Var)> {
        let out = self.query.forward(images)?;
        let saliency = out.slice(1, self.dim as i64, self.dim as i64 + 1, 1)?;
        Ok((self.embedding_of(&out)?, saliency))
    }

    fn backbone_network(&self) -> Option<&SegModel> {
        Some(&self.query)
    }

    fn embed(&self, images: &Var) -> Result<Var> {
        self.embedding_of(&self.query.forward(images)?)
    }

    fn visit_state(&mut self, v: &mut dyn StateVisitor) -> Result<()> {
        v.module("key", &self.key)?;
        if let Some(q) = &mut self.queue {
            q.visit_state("queue", v)?;
        }
        v.optimizer("optim", &mut self.optimizer)
    }
}
