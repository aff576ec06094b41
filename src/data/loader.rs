//! Batches as pure functions of (seed, step): the epoch order is a seeded shuffle
//! and every augmentation draws from an RNG seeded by the step, so a resumed run sees
//! exactly the batches an uninterrupted one would.

use image::RgbImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::augment::{blur, normalise_into, photometric, Geometry};
use super::dataset::Dataset;
use super::voc::{Item, IGNORE};
use crate::data::config::{AugmentCfg, DataCfg};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// Images and their per-pixel maps, on the GPU where kernels need them.
pub struct Batch {
    /// [B, 3, S, S], ImageNet-normalised.
    pub images: Tensor,
    /// [B, S, S] 0/1 saliency (all zero where the dataset has none).
    pub saliency: Tensor,
    /// Saliency on the host, row-major per image.
    pub saliency_host: Vec<u8>,
    /// Class labels on the host, row-major per image (255 = ignore).
    pub labels: Vec<u8>,
    /// The un-normalised images, for pictures.
    pub originals: Vec<RgbImage>,
    pub size: usize,
}

/// Indices of the images of training step `step`: epochs are seeded shuffles.
pub fn step_indices(len: usize, batch: usize, seed: u64, step: usize) -> Vec<usize> {
    let per_epoch = (len / batch).max(1);
    let (epoch, pos) = (step / per_epoch, step % per_epoch);
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    ));
    (0..batch).map(|i| order[(pos * batch + i) % len]).collect()
}

fn upload(gpu: &Gpu, views: Vec<(RgbImage, Vec<u8>, Vec<u8>)>, size: usize) -> Result<Batch> {
    let b = views.len();
    let mut pixels = Vec::with_capacity(b * 3 * size * size);
    let (mut sal, mut labels, mut originals) = (Vec::new(), Vec::new(), Vec::new());
    for (img, s, l) in views {
        normalise_into(&img, &mut pixels);
        sal.extend(s);
        labels.extend(l);
        originals.push(img);
    }
    let sal_f: Vec<f32> = sal.iter().map(|&v| v as f32).collect();
    Ok(Batch {
        images: Tensor::from_slice(gpu, &pixels, &[b, 3, size, size])?,
        saliency: Tensor::from_slice(gpu, &sal_f, &[b, size, size])?,
        saliency_host: sal,
        labels,
        originals,
        size,
    })
}

/// One augmented view: geometry, then photometric jitter and blur. A crop that would leave no
/// salient pixel is drawn again (up to 10 times, then the whole image): an empty mask
/// has no prototype.
fn view(
    item: &Item,
    aug: &AugmentCfg,
    size: u32,
    rng: &mut StdRng,
) -> (RgbImage, Vec<u8>, Vec<u8>) {
    let (w, h) = item.image.dimensions();
    let sal = item
        .saliency
        .clone()
        .unwrap_or_else(|| vec![0; (w * h) as usize]);
    let has_salient = sal.iter().any(|&s| s != 0);
    let mut geometry = Geometry::random(rng, w, h, aug);
    if aug.crop_around_salient && has_salient {
        centre_on_random_salient(&mut geometry, &sal, w, h, rng);
    }
    for _ in 0..10 {
        if !has_salient
            || geometry
                .apply_labels(&sal, w, size, 0)
                .iter()
                .any(|&s| s != 0)
        {
            break;
        }
        geometry = Geometry::random(rng, w, h, aug);
    }
    if has_salient
        && !geometry
            .apply_labels(&sal, w, size, 0)
            .iter()
            .any(|&s| s != 0)
    {
        geometry = Geometry::full(w, h);
    }
    let mut img = geometry.apply_image(&item.image, size);
    photometric(&mut img, aug, rng);
    blur(&mut img, aug, rng);
    (
        img,
        geometry.apply_labels(&sal, w, size, 0),
        geometry.apply_labels(&item.label, w, size, IGNORE),
    )
}

/// Moves a crop so that its centre is a random salient pixel, as far as the image
/// allows: views of one image then agree on what the object is, not on where.
fn centre_on_random_salient(g: &mut Geometry, sal: &[u8], w: u32, h: u32, rng: &mut StdRng) {
    let salient: Vec<usize> = (0..sal.len()).filter(|&i| sal[i] != 0).collect();
    let pick = salient[rng.random_range(0..salient.len())] as u32;
    let (px, py) = (pick % w, pick / w);
    g.x = px.saturating_sub(g.w / 2).min(w - g.w);
    g.y = py.saturating_sub(g.h / 2).min(h - g.h);
}

/// Two independently augmented views (query, key) of every image of a step.
pub fn contrastive_views(
    gpu: &Gpu,
    data: &Dataset,
    indices: &[usize],
    aug: &AugmentCfg,
    size: usize,
    seed: u64,
    step: usize,
) -> Result<(Batch, Batch)> {
    let mut rng = step_rng(seed, step, 0x5bd1_e995);
    let (mut q, mut k) = (Vec::new(), Vec::new());
    for &i in indices {
        let item = data.get(i)?;
        q.push(view(&item, aug, size as u32, &mut rng));
        k.push(view(&item, aug, size as u32, &mut rng));
    }
    Ok((upload(gpu, q, size)?, upload(gpu, k, size)?))
}

/// The augmented batch of training step `step` from `data` (supervised methods): its
/// images and their augmentation drawn from `seed`.
pub fn augmented_step(
    gpu: &Gpu,
    data: &Dataset,
    cfg: &DataCfg,
    aug: &AugmentCfg,
    seed: u64,
    step: usize,
) -> Result<Batch> {
    let idx = step_indices(data.len(), cfg.batch_size, seed, step);
    augmented(gpu, data, &idx, aug, cfg.image_size, seed, step)
}

/// One augmented view per image (supervised methods).
pub fn augmented(
    gpu: &Gpu,
    data: &Dataset,
    indices: &[usize],
    aug: &AugmentCfg,
    size: usize,
    seed: u64,
    step: usize,
) -> Result<Batch> {
    let mut rng = step_rng(seed, step, 0x68e3_1da4);
    let views = indices
        .iter()
        .map(|&i| Ok(view(&data.get(i)?, aug, size as u32, &mut rng)))
        .collect::<Result<Vec<_>>>()?;
    upload(gpu, views, size)
}

/// Whole images resized to `size` without augmentation (evaluation).
pub fn plain(gpu: &Gpu, data: &Dataset, indices: &[usize], size: usize) -> Result<Batch> {
    let views = indices
        .iter()
        .map(|&i| {
            let item = data.get(i)?;
            let (w, h) = item.image.dimensions();
            let g = Geometry::full(w, h);
            let sal = item
                .saliency
                .clone()
                .unwrap_or_else(|| vec![0; (w * h) as usize]);
            Ok((
                g.apply_image(&item.image, size as u32),
                g.apply_labels(&sal, w, size as u32, 0),
                g.apply_labels(&item.label, w, size as u32, IGNORE),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    upload(gpu, views, size)
}

/// A seeded RNG for what step `step` draws; `salt` separates independent uses.
pub fn step_rng(seed: u64, step: usize, salt: u64) -> StdRng {
    let mut r = StdRng::seed_from_u64(seed ^ salt);
    let skip: u64 = r.random();
    StdRng::seed_from_u64(skip.wrapping_add(step as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_centred_on_a_salient_pixel_stay_inside_the_image() {
        let (w, h) = (40u32, 30u32);
        let mut rng = StdRng::seed_from_u64(5);
        for (px, py) in [(20u32, 15u32), (1, 1), (39, 29), (10, 25)] {
            let mut sal = vec![0u8; (w * h) as usize];
            sal[(py * w + px) as usize] = 1;
            let mut g = Geometry::full(w, h);
            (g.w, g.h) = (12, 10);
            centre_on_random_salient(&mut g, &sal, w, h, &mut rng);
            assert!(g.x + g.w <= w && g.y + g.h <= h, "{g:?}");
            assert!((g.x..g.x + g.w).contains(&px) && (g.y..g.y + g.h).contains(&py));
            if (6..=34).contains(&px) && (5..=25).contains(&py) {
                assert_eq!((g.x + g.w / 2, g.y + g.h / 2), (px, py));
            }
        }
    }

    #[test]
    fn step_indices_cover_each_epoch_once_and_are_reproducible() {
        let mut seen: Vec<usize> = (0..5).flat_map(|s| step_indices(20, 4, 3, s)).collect();
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(step_indices(20, 4, 3, 7), step_indices(20, 4, 3, 7));
        assert_ne!(
            step_indices(20, 4, 3, 0),
            step_indices(20, 4, 3, 5),
            "a new epoch reshuffles"
        );
    }
}
