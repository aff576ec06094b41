//! Hard/easy anchor sampling for pixel contrast, on the host (the authors'
//! `_hard_anchor_sampling` in ContrastCELoss; docs/methods/pixel_contrast.md).
//!
//! Per image, every class other than `ignore_index` with more than `max_views` pixels
//! (the authors' `> max_views`) gets n_view = min(max_samples / #classes in the batch,
//! max_views) anchors: half of them hard (label == class, prediction != class), half
//! easy (prediction == class), n_view / 2 hard when both kinds suffice; when one kind
//! has fewer than n_view / 2 pixels all of it is kept and the other kind tops up.
//! Which pixels are kept is a seeded random choice, so a run is reproducible.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::index;

use crate::error::{Error, Result};

const OP: &str = "anchor_sampler";

/// The sampler's settings (the paper: max_samples 1024, max_views 100, ignore 255).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorSampler {
    pub max_samples: usize,
    pub max_views: usize,
    pub ignore_index: u32,
}

/// Sampled anchors, grouped by (image, class) in image order and ascending class,
/// each group's hard pixels first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchors {
    /// Flat pixel indices into the batch: image * pixels_per_image + pixel.
    pub indices: Vec<usize>,
    /// The class label of each anchor.
    pub labels: Vec<u32>,
    /// Anchors per (image, class) group.
    pub views: usize,
}

impl Default for AnchorSampler {
    fn default() -> Self {
        AnchorSampler {
            max_samples: 1024,
            max_views: 100,
            ignore_index: 255,
        }
    }
}

/// `amount` of `pool`'s entries chosen at random, in random order.
fn choose<'a>(
    rng: &mut StdRng,
    pool: &'a [usize],
    amount: usize,
) -> impl Iterator<Item = usize> + 'a {
    index::sample(rng, pool.len(), amount)
        .into_iter()
        .map(move |i| pool[i])
}

impl AnchorSampler {
    /// Samples anchors from a batch of `batch` images given their labels and
    /// predictions, each flattened image by image (same length, a multiple of
    /// `batch`). `None` when no class qualifies or max_samples is smaller than the
    /// number of qualifying classes (the loss is then skipped, as the authors do).
    pub fn sample(
        &self,
        labels: &[u32],
        preds: &[u32],
        batch: usize,
        rng: &mut StdRng,
    ) -> Result<Option<Anchors>> {
        if labels.len() != preds.len() {
            return Err(Error::op(
                OP,
                format!(
                    "labels ({}) and predictions ({}) must have as many pixels",
                    labels.len(),
                    preds.len()
                ),
            ));
        }
        if batch == 0 || labels.is_empty() || !labels.len().is_multiple_of(batch) {
            return Err(Error::op(
                OP,
                format!("{} pixels do not split into {batch} images", labels.len()),
            ));
        }
        let pixels = labels.len() / batch;
        let classes: Vec<Vec<u32>> = labels
            .chunks(pixels)
            .map(|img| {
                let mut counts = BTreeMap::new();
                for &l in img {
                    *counts.entry(l).or_insert(0usize) += 1;
                }
                counts
                    .into_iter()
                    .filter(|&(c, n)| c != self.ignore_index && n > self.max_views)
                    .map(|(c, _)| c)
                    .collect()
            })
            .collect();
        let total: usize = classes.iter().map(Vec::len).sum();
        if total == 0 {
            return Ok(None);
        }
        let views = (self.max_samples / total).min(self.max_views);
        if views == 0 {
            return Ok(None);
        }
        let mut anchors = Anchors {
            indices: Vec::with_capacity(total * views),
            labels: Vec::with_capacity(total * views),
            views,
        };
        for (b, image_classes) in classes.iter().enumerate() {
            let base = b * pixels;
            let (img_labels, img_preds) =
                (&labels[base..base + pixels], &preds[base..base + pixels]);
            for &class in image_classes {
                let (mut hard, mut easy) = (Vec::new(), Vec::new());
                for (p, (&l, &pr)) in img_labels.iter().zip(img_preds).enumerate() {
                    if l == class {
                        if pr == class {
                            easy.push(base + p);
                        } else {
                            hard.push(base + p);
                        }
                    }
                }
                // The class has more than max_views >= views pixels, so one kind
                // always covers half.
                let (keep_hard, keep_easy) = if 2 * hard.len() >= views && 2 * easy.len() >= views {
                    (views / 2, views - views / 2)
                } else if 2 * hard.len() >= views {
                    (views - easy.len(), easy.len())
                } else {
                    (hard.len(), views - hard.len())
                };
                anchors.indices.extend(choose(rng, &hard, keep_hard));
                anchors.indices.extend(choose(rng, &easy, keep_easy));
                anchors.labels.extend(std::iter::repeat_n(class, views));
            }
        }
        Ok(Some(anchors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Two images of 40 pixels: image 0 has class 1 (20 px, 6 predicted wrong),
    /// class 2 (12 px, all right), class 3 (4 px: too few) and ignore (4 px);
    /// image 1 has class 1 (30 px, 27 predicted wrong) and class 4 (10 px, 1 wrong).
    fn batch() -> (Vec<u32>, Vec<u32>) {
        let mut labels = Vec::new();
        let mut preds = Vec::new();
        let mut push = |l: u32, n: usize, wrong: usize| {
            for i in 0..n {
                labels.push(l);
                preds.push(if i < wrong { l + 10 } else { l });
            }
        };
        push(1, 20, 6);
        push(2, 12, 0);
        push(3, 4, 0);
        push(255, 4, 0);
        push(1, 30, 27);
        push(4, 10, 1);
        (labels, preds)
    }

    fn sampler(max_samples: usize) -> AnchorSampler {
        AnchorSampler {
            max_samples,
            max_views: 8,
            ignore_index: 255,
        }
    }

    fn run(s: AnchorSampler, seed: u64) -> Anchors {
        let (labels, preds) = batch();
        let mut rng = StdRng::seed_from_u64(seed);
        s.sample(&labels, &preds, 2, &mut rng).unwrap().unwrap()
    }

    #[test]
    fn counts_and_labels_per_class() {
        // 4 classes qualify (1 and 2 in image 0, 1 and 4 in image 1): 20 / 4 = 5 views.
        let a = run(sampler(20), 0);
        assert_eq!(a.views, 5);
        assert_eq!(a.labels, [[1u32; 5], [2; 5], [1; 5], [4; 5]].concat());
        let (labels, _) = batch();
        for (&i, &l) in a.indices.iter().zip(&a.labels) {
            assert_eq!(labels[i], l);
        }
        let mut unique = a.indices.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), a.indices.len());
        // max_views caps the views.
        assert_eq!(run(sampler(1000), 0).views, 8);
    }

    #[test]
    fn hard_easy_split_and_top_up() {
        let (labels, preds) = batch();
        let a = run(sampler(1000), 3);
        let hard_in = |g: usize| {
            a.indices[g * 8..(g + 1) * 8]
                .iter()
                .filter(|&&i| preds[i] != labels[i])
                .count()
        };
        // Both kinds plentiful: half and half, hard first.
        assert_eq!(hard_in(0), 4);
        assert!(a.indices[..4].iter().all(|&i| preds[i] != labels[i]));
        // No hard pixels: all easy.
        assert_eq!(hard_in(1), 0);
        // 27 hard, 3 easy: every easy pixel kept, hard tops up.
        assert_eq!(hard_in(2), 5);
        // 1 hard, 9 easy: the one hard pixel kept.
        assert_eq!(hard_in(3), 1);
    }

    #[test]
    fn deterministic_per_seed() {
        assert_eq!(run(sampler(1000), 7), run(sampler(1000), 7));
        assert_ne!(run(sampler(1000), 7), run(sampler(1000), 8));
    }

    #[test]
    fn nothing_to_sample_and_bad_sizes() {
        let (labels, preds) = batch();
        let mut rng = StdRng::seed_from_u64(0);
        let strict = AnchorSampler {
            max_views: 40,
            ..sampler(100)
        };
        assert!(strict
            .sample(&labels, &preds, 2, &mut rng)
            .unwrap()
            .is_none());
        assert!(sampler(100)
            .sample(&labels, &preds[1..], 2, &mut rng)
            .is_err());
        assert!(sampler(100).sample(&labels, &preds, 3, &mut rng).is_err());
    }
}
