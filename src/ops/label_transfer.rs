//! Non-parametric label transfer (shaders/label_transfer.wgsl `assign`,
//! `apply_thresholds`): pseudo labels for unlabelled pixels from their nearest
//! prototype, kept where confident.
//!
//! For pixel n with features x_n and prototypes p_c [C, D] (cosines as F.normalize,
//! norms clamped at 1e-12):
//!
//! ```text
//! label_n = argmax_c cos(x_n, p_c)                 (the lowest c on ties)
//! conf_n  = softmax_c(scale * cos(x_n, p_c))[label_n]
//! out_n   = label_n if conf_n >= thr[label_n] else ignore_index
//! ```
//!
//! Without class balancing every thr_c is `threshold`. With it (CBST-style class-
//! balanced self-training), let n_c be the number of pixels assigned to class c and
//! k_c = ceil(balance_fraction * n_c); thr_c = min(threshold, the k_c-th largest
//! confidence among them), so each class keeps at least its most confident
//! `balance_fraction` of pixels and every pixel at least `threshold` confident is kept.
//! The per-class quantile is computed on the host after one readback of the labels and
//! confidences: once per pseudo-label round, not per training step.

use super::class_prototypes::Launch;
use super::feature_map::{check_prototypes, feature_map, ignore_index};
use super::l2_normalize::l2_normalize;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::Kernel;
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, fixed_in, OpSpec};
use crate::tensor::elementwise::full;
use crate::tensor::{DType, Tensor};

/// Settings of [`label_transfer`], defaults as in the op table.
#[derive(Clone, Copy, Debug)]
pub struct LabelTransfer {
    pub scale: f32,
    pub threshold: f32,
    pub class_balanced: bool,
    /// f64 so that ceil(balance_fraction * n) matches the attribute's value exactly.
    pub balance_fraction: f64,
    pub ignore_index: u32,
}

impl Default for LabelTransfer {
    fn default() -> Self {
        LabelTransfer {
            scale: 10.0,
            threshold: 0.9,
            class_balanced: false,
            balance_fraction: 0.5,
            ignore_index: 255,
        }
    }
}

/// The nearest prototype of every pixel (u32 [B, H, W]) and its softmax confidence
/// (f32 [B, H, W]).
pub fn nearest_prototype(
    features: &Tensor,
    prototypes: &Tensor,
    scale: f32,
) -> Result<(Tensor, Tensor)> {
    let op = "label_transfer";
    let map = feature_map(op, "features", features)?;
    let classes = check_prototypes(op, prototypes, map.dim)?;
    let phat = l2_normalize(prototypes, 1, 1e-12)?;
    let gpu = features.gpu();
    let shape = [map.batch, map.h, map.w];
    let labels = Tensor::empty(gpu, &shape, DType::U32)?;
    let conf = Tensor::empty(gpu, &shape, DType::F32)?;
    let l = Launch {
        scale,
        ..Launch::of_map(&map, classes, 0)
    };
    l.run(
        gpu,
        Kernel::new("label_transfer", "assign"),
        &[
            features.buffer(),
            phat.buffer(),
            labels.buffer(),
            conf.buffer(),
        ],
        map.pixels(),
    )?;
    Ok((labels, conf))
}

/// Per-class thresholds of the class-balanced rule (see the module docs).
pub fn class_balanced_thresholds(
    labels: &[u32],
    confidence: &[f32],
    classes: usize,
    threshold: f32,
    balance_fraction: f64,
) -> Vec<f32> {
    let mut per_class: Vec<Vec<f32>> = vec![Vec::new(); classes];
    for (&l, &c) in labels.iter().zip(confidence) {
        if let Some(v) = per_class.get_mut(l as usize) {
            v.push(c);
        }
    }
    per_class
        .into_iter()
        .map(|mut v| {
            if v.is_empty() {
                return threshold;
            }
            v.sort_by(|a, b| b.total_cmp(a));
            let k = ((balance_fraction * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[k - 1].min(threshold)
        })
        .collect()
}

fn check(cfg: &LabelTransfer, classes: usize) -> Result<()> {
    let op = "label_transfer";
    if !(0.0..=1.0).contains(&cfg.threshold) {
        return Err(Error::op(
            op,
            format!("threshold must be in [0, 1], got {}", cfg.threshold),
        ));
    }
    if !(cfg.balance_fraction > 0.0 && cfg.balance_fraction <= 1.0) {
        return Err(Error::op(
            op,
            format!(
                "balance_fraction must be in (0, 1], got {}",
                cfg.balance_fraction
            ),
        ));
    }
    if (cfg.ignore_index as usize) < classes {
        return Err(Error::op(
            op,
            format!(
                "ignore_index {} is one of the {classes} classes; pseudo labels would be ambiguous",
                cfg.ignore_index
            ),
        ));
    }
    Ok(())
}

/// Pseudo labels u32 [B, H, W] for `features` [B, D, H, W] from `prototypes` [C, D].
pub fn label_transfer(
    features: &Tensor,
    prototypes: &Tensor,
    cfg: &LabelTransfer,
) -> Result<Tensor> {
    let map = feature_map("label_transfer", "features", features)?;
    let classes = check_prototypes("label_transfer", prototypes, map.dim)?;
    check(cfg, classes)?;
    let (labels, conf) = nearest_prototype(features, prototypes, cfg.scale)?;
    let gpu = features.gpu();
    let thresholds = if cfg.class_balanced {
        let thr = class_balanced_thresholds(
            &labels.to_vec_u32()?,
            &conf.to_vec()?,
            classes,
            cfg.threshold,
            cfg.balance_fraction,
        );
        Tensor::from_slice(gpu, &thr, &[classes])?
    } else {
        full(gpu, &[classes], cfg.threshold)?
    };
    let out = Tensor::empty(gpu, labels.shape(), DType::U32)?;
    Launch::of_map(&map, classes, cfg.ignore_index).run(
        gpu,
        Kernel::new("label_transfer", "apply_thresholds"),
        &[
            labels.buffer(),
            conf.buffer(),
            thresholds.buffer(),
            out.buffer(),
        ],
        map.pixels(),
    )?;
    Ok(out)
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "label_transfer",
    summary: "pseudo labels (u32) by nearest prototype, kept where softmax confidence passes a (class-balanced) threshold",
    inputs: &[fixed_in("features", DType::F32, false), fixed_in("prototypes", DType::F32, false)],
    attrs: &[
        attr("scale", AttrKind::Float, Some("10")),
        attr("threshold", AttrKind::Float, Some("0.9")),
        attr("class_balanced", AttrKind::Bool, Some("false")),
        attr("balance_fraction", AttrKind::Float, Some("0.5")),
        attr("ignore_index", AttrKind::Int, Some("255")),
    ],
    run: |c| {
        let a = &c.attrs;
        let cfg = LabelTransfer {
            scale: a.float("scale")? as f32,
            threshold: a.float("threshold")? as f32,
            class_balanced: a.bool("class_balanced")?,
            balance_fraction: a.float("balance_fraction")?,
            ignore_index: ignore_index(c.op, a.int("ignore_index")?)?,
        };
        let out = label_transfer(
            &c.input("features")?.value(),
            &c.input("prototypes")?.value(),
            &cfg,
        )?;
        Ok(Var::constant(out))
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn thresholds_keep_the_top_fraction_capped_by_threshold() {
        let labels = [0, 0, 0, 0, 1, 1, 2];
        let conf = [0.9, 0.5, 0.7, 0.6, 0.99, 0.95, 0.4];
        let thr = class_balanced_thresholds(&labels, &conf, 4, 0.9, 0.5);
        // Class 0: top ceil(2) of {0.9, 0.7, 0.6, 0.5} -> 0.7; class 1: min(0.99, 0.9);
        // class 2: its single pixel; class 3: no pixels.
        assert_eq!(thr, vec![0.7, 0.9, 0.4, 0.9]);
    }

    #[test]
    fn keeps_confident_nearest_labels() {
        let gpu = Gpu::shared().unwrap();
        // Pixel 0 on prototype 1, pixel 1 half way between both.
        let f = Tensor::from_slice(&gpu, &[0.0, 1.0, 1.0, 1.0], &[1, 2, 1, 2]).unwrap();
        let p = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
        let out = label_transfer(&f, &p, &LabelTransfer::default()).unwrap();
        assert_eq!(out.to_vec_u32().unwrap(), vec![1, 255]);
        let e = label_transfer(
            &f,
            &p,
            &LabelTransfer {
                ignore_index: 1,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("ambiguous"), "{e}");
    }
}
