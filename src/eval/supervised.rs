//! Supervised evaluation: the per-pixel argmax of a network's class logits against
//! the validation labels, as mIoU, pixel accuracy and per-class IoU.

use super::images_to_score;
use super::metrics::{Confusion, Scores};
use crate::autograd::{no_grad, Var};
use crate::data::dataset::Dataset;
use crate::data::loader::plain;
use crate::data::voc::IGNORE;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// Scores and what is drawn of them.
pub struct ClassOutcome {
    pub scores: Scores,
    /// Predicted class map of every evaluated image.
    pub predictions: Vec<Vec<u8>>,
}

/// Scores `classify` (images [B, 3, S, S] -> logits [B, classes, S, S]) on `limit`
/// validation images (0: all), `batch` at a time; `tick` is called per batch.
pub fn evaluate(
    gpu: &Gpu,
    classify: &dyn Fn(&Var) -> Result<Var>,
    data: &Dataset,
    size: usize,
    batch: usize,
    limit: usize,
    tick: &mut dyn FnMut(),
) -> Result<ClassOutcome> {
    let classes = data.num_classes();
    let count = images_to_score(data.len(), limit);
    let mut conf = Confusion::new(classes, classes);
    let mut predictions = Vec::with_capacity(count);
    for start in (0..count).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(count)).collect();
        let b = plain(gpu, data, &idx, size)?;
        let logits = no_grad(|| classify(&Var::constant(b.images.clone())))?.value();
        let pred = argmax_channels(&logits)?;
        let pixels = size * size;
        for (labels, p) in b.labels.chunks(pixels).zip(pred.chunks(pixels)) {
            conf.add(labels, p, IGNORE);
            predictions.push(p.iter().map(|&c| c as u8).collect());
        }
        tick();
    }
    Ok(ClassOutcome {
        scores: conf.scores(),
        predictions,
    })
}

/// Per-pixel argmax over dim 1 of [B, C, H, W] logits, on the host.
pub fn argmax_channels(logits: &Tensor) -> Result<Vec<u32>> {
    let s = logits.shape();
    let (b, c, hw) = (s[0], s[1], s[2] * s[3]);
    let v = logits.to_vec()?;
    let mut out = Vec::with_capacity(b * hw);
    for n in 0..b {
        for p in 0..hw {
            let best = (0..c)
                .max_by(|&i, &j| v[(n * c + i) * hw + p].total_cmp(&v[(n * c + j) * hw + p]))
                .unwrap_or(0);
            out.push(best as u32);
        }
    }
    Ok(out)
}
