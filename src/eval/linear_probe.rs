//! Linear probe: a 1x1 convolution trained with cross-entropy on frozen embeddings
//! (labels used only here), then scored on the validation set. The embeddings of the
//! probe's training images are computed once and kept on the GPU, so the probe's
//! iterations cost a 1x1 convolution each.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::images_to_score;
use super::metrics::{Confusion, Scores};
use super::supervised::argmax_channels;
use crate::autograd::{no_grad, Var};
use crate::data::dataset::Dataset;
use crate::data::loader::plain;
use crate::data::voc::IGNORE;
use crate::error::Result;
use crate::eval::config::LinearProbeCfg;
use crate::gpu::Gpu;
use crate::loss::cross_entropy::check_targets;
use crate::loss::Reduction;
use crate::nn::builder::Builder;
use crate::nn::layers::{Conv2d, ConvOpts};
use crate::nn::module::{parameters, Module};
use crate::optim::{Kind, Optimizer, ParamGroup};
use crate::tensor::Tensor;

/// Embeddings and u32 labels of `count` images of `data`, batch by batch.
fn features(
    gpu: &Gpu,
    embed: &dyn Fn(&Var) -> Result<Var>,
    data: &Dataset,
    size: usize,
    batch: usize,
    count: usize,
) -> Result<Vec<(Tensor, Tensor, Vec<u8>)>> {
    let mut out = Vec::new();
    for start in (0..count).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(count)).collect();
        let b = plain(gpu, data, &idx, size)?;
        let emb = no_grad(|| embed(&Var::constant(b.images.clone())))?.value();
        let labels: Vec<u32> = b.labels.iter().map(|&l| l as u32).collect();
        let lt = Tensor::from_u32(gpu, &labels, &[idx.len(), size, size])?;
        out.push((emb, lt, b.labels));
    }
    Ok(out)
}

/// Trains the probe on up to `train_images` training images and scores it on the
/// validation set (`limit` images, 0 for all).
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    gpu: &Gpu,
    embed: &dyn Fn(&Var) -> Result<Var>,
    train: &Dataset,
    val: &Dataset,
    size: usize,
    batch: usize,
    limit: usize,
    cfg: &LinearProbeCfg,
    seed: u64,
    tick: &mut dyn FnMut(),
) -> Result<Scores> {
    let classes = train.num_classes();
    let train_feats = features(gpu, embed, train, size, batch, cfg.images.min(train.len()))?;
    for (_, _, host) in &train_feats {
        let labels: Vec<u32> = host.iter().map(|&l| l as u32).collect();
        check_targets(&labels, classes, IGNORE as i64)?;
    }
    let dim = train_feats[0].0.shape()[1];
    let mut b = Builder::new(gpu, seed);
    let probe = Conv2d::new(&mut b, dim, classes, 1, ConvOpts::default())?;
    let params = parameters(&probe);
    let kind = Kind::Sgd {
        momentum: cfg.momentum as f32,
        dampening: 0.0,
        nesterov: false,
    };
    let mut opt = Optimizer::new(
        kind,
        vec![ParamGroup {
            params,
            lr_scale: 1.0,
            weight_decay: 0.0,
        }],
        cfg.lr,
    )?;
    let mut rng = StdRng::seed_from_u64(seed);
    for it in 0..cfg.iters {
        let (x, y, _) = &train_feats[rng.random_range(0..train_feats.len())];
        // Poly decay, as DeepLab-style probes train.
        let lr_factor = (1.0 - it as f64 / cfg.iters as f64).powf(0.9);
        let loss = probe
            .forward(&Var::constant(x.clone()))?
            .cross_entropy_checked(
                &Var::constant(y.clone()),
                None,
                IGNORE as i64,
                Reduction::Mean,
            )?;
        opt.zero_grad();
        loss.backward()?;
        opt.step(lr_factor)?;
        tick();
    }
    let count = images_to_score(val.len(), limit);
    let mut conf = Confusion::new(classes, classes);
    for (x, _, host_labels) in features(gpu, embed, val, size, batch, count)? {
        let logits = no_grad(|| probe.forward(&Var::constant(x)))?.value();
        let pred = argmax_channels(&logits)?;
        conf.add(&host_labels, &pred, IGNORE);
    }
    Ok(conf.scores())
}
