//! The range of every key a run reads, checked before anything is created: finite
//! numbers, probabilities in [0, 1], ordered ranges, sizes a run can allocate, the
//! experiment's name as a folder inside `output.dir`, and the evaluation against the
//! data and the model. Each refusal names its key.

use super::config::Experiment;
use crate::data::config::{AugmentCfg, DataSource};
use crate::error::{Error, Result};

/// Largest image side a run accepts: a batch of 4096-px images already needs
/// gigabytes, and larger sides overflow the 32-bit indices of the kernels.
const MAX_IMAGE_SIDE: usize = 4096;

fn bad(key: &str, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{key}: {why}"))
}

fn probability(key: &str, v: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&v) {
        return Err(bad(key, format!("{v} is not a probability in [0, 1]")));
    }
    Ok(())
}

fn non_negative(key: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(bad(key, format!("{v} must be a finite number >= 0")));
    }
    Ok(())
}

fn positive(key: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(bad(key, format!("{v} must be a finite number > 0")));
    }
    Ok(())
}

fn momentum(key: &str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(bad(key, format!("{v} must lie in [0, 1)")));
    }
    Ok(())
}

fn side(key: &str, v: usize) -> Result<()> {
    if !(16..=MAX_IMAGE_SIDE).contains(&v) {
        return Err(bad(key, format!("{v} must lie in 16..={MAX_IMAGE_SIDE}")));
    }
    Ok(())
}

/// A name that is one folder: letters, digits, '_', '-' and '.', not "." or "..".
pub fn check_folder_name(key: &str, name: &str) -> Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(plain) {
        return Err(bad(
            key,
            format!("{name:?} must be one folder name (letters, digits, '_', '-', '.'): runs are written inside output.dir"),
        ));
    }
    Ok(())
}

fn augment(a: &AugmentCfg) -> Result<()> {
    let [lo, hi] = a.crop_scale;
    if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
        return Err(bad(
            "augment.crop_scale",
            format!("[{lo}, {hi}] must be [low, high] with 0 < low <= high <= 1"),
        ));
    }
    probability("augment.hflip", a.hflip)?;
    probability("augment.grayscale", a.grayscale)?;
    probability("augment.blur.p", a.blur.p)?;
    let j = &a.color_jitter;
    probability("augment.color_jitter.p", j.p)?;
    non_negative("augment.color_jitter.brightness", j.brightness)?;
    non_negative("augment.color_jitter.contrast", j.contrast)?;
    non_negative("augment.color_jitter.saturation", j.saturation)?;
    if !(0.0..=0.5).contains(&j.hue) {
        return Err(bad(
            "augment.color_jitter.hue",
            format!(
                "{} must lie in [0, 0.5] (a fraction of the colour wheel)",
                j.hue
            ),
        ));
    }
    Ok(())
}

/// Checks a generated source's sizes; returns its validation image count.
fn source(key: &str, s: &DataSource) -> Result<Option<usize>> {
    match s {
        DataSource::Synthetic {
            val,
            size,
            max_objects,
            texture_contrast,
            ..
        } => {
            side(&format!("{key}.size"), *size)?;
            probability(&format!("{key}.texture_contrast"), *texture_contrast)?;
            if *max_objects == 0 {
                return Err(bad(&format!("{key}.max_objects"), "must be at least 1"));
            }
            Ok(Some(*val))
        }
        DataSource::Garments {
            val,
            classes,
            size,
            max_objects,
            ..
        } => {
            crate::data::fashion_mnist::labels_of(classes, &format!("{key}.classes"))?;
            side(&format!("{key}.size"), *size)?;
            if *max_objects == 0 {
                return Err(bad(&format!("{key}.max_objects"), "must be at least 1"));
            }
            Ok(Some(*val))
        }
        DataSource::Voc { num_classes, .. } => {
            if *num_classes < 2 {
                return Err(bad(
                    &format!("{key}.num_classes"),
                    format!("{num_classes} must be at least 2 (the background and one class)"),
                ));
            }
            Ok(None)
        }
    }
}

pub fn check(exp: &Experiment) -> Result<()> {
    check_folder_name("name", &exp.name)?;
    if let Some(t) = exp.device.timeout_s {
        positive("device.timeout_s", t)?;
    }
    side("data.image_size", exp.data.image_size)?;
    let val = source("data.source", &exp.data.source)?;
    let target_val = match &exp.data.target {
        Some(t) => source("data.target", t)?,
        None => None,
    };
    // Evaluation scores the target's validation images when there is a target.
    let (scored_key, scored) = match &exp.data.target {
        Some(_) => ("data.target.val", target_val),
        None => ("data.source.val", val),
    };
    if scored == Some(0) {
        return Err(bad(scored_key, "must be at least 1: evaluation scores it"));
    }
    let [lo, hi] = exp.data.saliency_range;
    if !(0.0 <= lo && lo <= hi && hi <= 1.0) {
        return Err(bad(
            "data.saliency_range",
            format!("[{lo}, {hi}] must be [low, high] with 0 <= low <= high <= 1"),
        ));
    }
    augment(&exp.augment)?;
    let o = &exp.optim;
    positive("optim.lr", o.lr)?;
    momentum("optim.momentum", o.momentum)?;
    non_negative("optim.weight_decay", o.weight_decay)?;
    non_negative("optim.head_lr_scale", o.head_lr_scale)?;
    let k = &exp.eval.kmeans;
    if k.seeds.is_empty() {
        return Err(bad("eval.kmeans.seeds", "must name at least one seed"));
    }
    if k.restarts == 0 {
        return Err(bad("eval.kmeans.restarts", "must be at least 1"));
    }
    if let Some(c) = k.clusters {
        if c == 0 {
            return Err(bad("eval.kmeans.clusters", "must be at least 1"));
        }
        if let Some(v) = scored {
            if c > v {
                return Err(bad(
                    "eval.kmeans.clusters",
                    format!("{c} clusters need at least as many validation images, there are {v}"),
                ));
            }
        }
    }
    if k.pca_dim > exp.model.embed_dim {
        return Err(bad(
            "eval.kmeans.pca_dim",
            format!(
                "{} is more than the embedding's {} dimensions (model.embed_dim)",
                k.pca_dim, exp.model.embed_dim
            ),
        ));
    }
    if let Some(p) = &exp.eval.linear_probe {
        positive("eval.linear_probe.lr", p.lr)?;
        momentum("eval.linear_probe.momentum", p.momentum)?;
        if p.images == 0 || p.iters == 0 {
            return Err(bad(
                "eval.linear_probe",
                "images and iters must be at least 1",
            ));
        }
    }
    Ok(())
}
