//! MaskContrast (Van Gansbeke et al., ICCV 2021; METHODS.md section 1). A query
//! network embeds one augmented view per image; a momentum (key) network embeds a
//! second view, whose saliency-masked mean embedding is the image's prototype. Every
//! salient query pixel is pulled to its own prototype and pushed from the other
//! images' prototypes and a queue of past ones (InfoNCE, temperature T). The last
//! output channel is a saliency logit trained with balanced BCE.

use std::collections::HashMap;

use super::params::optimizer;
use super::state::{
    copy_into, load_module, load_optimizer, number, save_module, save_optimizer, Extra,
};
use super::{Method, StepScalars, TrainSets};
use crate::autograd::{no_grad, Var};
use crate::data::loader::{contrastive_views, step_indices};
use crate::error::{Error, Result};
use crate::experiment::config::{Experiment, MethodCfg};
use crate::experiment::model::SegModel;
use crate::gpu::Gpu;
use crate::memory::queue::PrototypeQueue;
use crate::nn::builder::{Builder, StepClock};
use crate::nn::module::ema_update_module;
use crate::nn::module::Module;
use crate::optim::Optimizer;
use crate::tensor::Tensor;

pub struct MaskContrast {
    exp: Experiment,
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
    pub fn new(gpu: &Gpu, exp: &Experiment) -> Result<MaskContrast> {
        let MethodCfg::Maskcontrast {
            temperature,
            momentum,
            queue_size,
            saliency_weight,
        } = exp.method
        else {
            return Err(Error::Usage("method.kind: maskcontrast expected".into()));
        };
        let dim = exp.model.embed_dim;
        // Same seed: the key network starts as an exact copy of the query network.
        let mut qb = Builder::new(gpu, exp.seed);
        let query = SegModel::build(&mut qb, &exp.model, dim + 1)?;
        let mut kb = Builder::new(gpu, exp.seed);
        let key = SegModel::build(&mut kb, &exp.model, dim + 1)?;
        kb.clock = qb.clock.clone();
        qb.bn_freeze.set(exp.optim.freeze_bn);
        kb.bn_freeze.set(exp.optim.freeze_bn);
        let optimizer = optimizer(&query, &exp.optim)?;
        Ok(MaskContrast {
            exp: exp.clone(),
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

    fn embedding_of(&self, out: &Var) -> Result<Var> {
        out.slice(1, 0, self.dim as i64, 1)?.l2_normalize(1, 1e-12)
    }
}

impl Method for MaskContrast {
    fn step(&mut self, sets: &TrainSets, step: usize, lr_factor: f64) -> Result<StepScalars> {
        let train = sets.source;
        let gpu = self.gpu.clone();
        let data = &self.exp.data;
        let idx = step_indices(train.len(), data.batch_size, self.exp.seed, step);
        let (q, k) = contrastive_views(
            &gpu,
            train,
            &idx,
            &self.exp.augment,
            data.image_size,
            self.exp.seed,
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
        self.optimizer.zero_grad();
        loss.backward()?;
        self.optimizer
            .step((self.exp.optim.lr * lr_factor) as f32)?;
        ema_update_module(&self.key, &self.query, self.momentum)?;
        if let Some(q) = &mut self.queue {
            q.enqueue(&prototypes.value())?;
        }
        Ok(vec![
            ("loss", loss.value()),
            ("loss_infonce", contrast.value()),
            ("loss_saliency", saliency.value()),
        ])
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

    fn embed(&self, images: &Var) -> Result<Var> {
        self.embedding_of(&self.query.forward(images)?)
    }

    fn extra_state(&self) -> Extra {
        let mut extra = Extra::default();
        save_module(&self.key, "key", &mut extra);
        if let Some(q) = &self.queue {
            extra.0.push(("queue.data".into(), q.data().clone()));
            extra.1.insert("queue.ptr".into(), q.ptr().to_string());
            extra.1.insert("queue.len".into(), q.len().to_string());
        }
        save_optimizer(&self.optimizer, "optim", &mut extra);
        extra
    }

    fn load_extra_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        meta: &HashMap<String, String>,
    ) -> Result<()> {
        load_module(&self.key, "key", tensors)?;
        if let Some(q) = &mut self.queue {
            copy_into(q.data(), tensors, "queue.data")?;
            q.restore(number(meta, "queue.ptr")?, number(meta, "queue.len")?)?;
        }
        load_optimizer(&mut self.optimizer, "optim", tensors, meta)
    }
}
