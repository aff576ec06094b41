//! Host-side augmentations as torchvision applies them: RandomResizedCrop (bilinear
//! for the image, nearest for label maps), horizontal flip, colour jitter and random
//! grayscale, all drawn from a seeded RNG so a run is reproducible.

use image::{imageops, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::Rng;

use super::color::{hsv_to_rgb, rgb_to_hsv};
use crate::experiment::config::AugmentCfg;

/// Where a view was cut from its source and whether it is mirrored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub flip: bool,
}

impl Geometry {
    /// The whole image, unflipped.
    pub fn full(width: u32, height: u32) -> Geometry {
        Geometry {
            x: 0,
            y: 0,
            w: width,
            h: height,
            flip: false,
        }
    }

    /// torchvision's RandomResizedCrop sampling: area fraction in `scale`, log-uniform
    /// aspect ratio in [3/4, 4/3], ten tries, then a centre crop.
    pub fn random(
        rng: &mut StdRng,
        width: u32,
        height: u32,
        scale: [f64; 2],
        hflip: f64,
    ) -> Geometry {
        let area = (width * height) as f64;
        let flip = rng.random_bool(hflip.clamp(0.0, 1.0));
        for _ in 0..10 {
            let target = area * rng.random_range(scale[0]..=scale[1]);
            let ratio = rng
                .random_range((3f64 / 4.0).ln()..=(4f64 / 3.0).ln())
                .exp();
            let w = (target * ratio).sqrt().round() as u32;
            let h = (target / ratio).sqrt().round() as u32;
            if w > 0 && h > 0 && w <= width && h <= height {
                return Geometry {
                    x: rng.random_range(0..=width - w),
                    y: rng.random_range(0..=height - h),
                    w,
                    h,
                    flip,
                };
            }
        }
        let side = width.min(height);
        Geometry {
            x: (width - side) / 2,
            y: (height - side) / 2,
            w: side,
            h: side,
            flip,
        }
    }

    /// Cuts and resizes an image to `size` x `size` (bilinear).
    pub fn apply_image(&self, img: &RgbImage, size: u32) -> RgbImage {
        let crop = imageops::crop_imm(img, self.x, self.y, self.w, self.h).to_image();
        let mut out = imageops::resize(&crop, size, size, imageops::FilterType::Triangle);
        if self.flip {
            imageops::flip_horizontal_in_place(&mut out);
        }
        out
    }

    /// Cuts and resizes a label map (nearest: labels are never blended).
    pub fn apply_labels(&self, labels: &[u8], width: u32, size: u32) -> Vec<u8> {
        let mut out = vec![0u8; (size * size) as usize];
        for oy in 0..size {
            for ox in 0..size {
                let sx = ((ox as f64 + 0.5) * self.w as f64 / size as f64).floor() as u32;
                let sy = ((oy as f64 + 0.5) * self.h as f64 / size as f64).floor() as u32;
                let (sx, sy) = (sx.min(self.w - 1) + self.x, sy.min(self.h - 1) + self.y);
                let tx = if self.flip { size - 1 - ox } else { ox };
                out[(oy * size + tx) as usize] = labels[(sy * width + sx) as usize];
            }
        }
        out
    }
}

fn luma(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// ColorJitter (brightness, contrast, saturation, hue in random order, each factor
/// drawn uniformly as torchvision does) with probability p, then RandomGrayscale.
pub fn photometric(img: &mut RgbImage, cfg: &AugmentCfg, rng: &mut StdRng) {
    let j = &cfg.color_jitter;
    let mut px: Vec<[f32; 3]> = img
        .pixels()
        .map(|p| [0, 1, 2].map(|c| p[c] as f32 / 255.0))
        .collect();
    if rng.random_bool(j.p.clamp(0.0, 1.0)) {
        let factor =
            |rng: &mut StdRng, v: f64| rng.random_range((1.0 - v).max(0.0)..=1.0 + v) as f32;
        let mut order = [0, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for step in order {
            match step {
                0 if j.brightness > 0.0 => {
                    let f = factor(rng, j.brightness);
                    px.iter_mut()
                        .for_each(|p| *p = p.map(|c| (c * f).clamp(0.0, 1.0)));
                }
                1 if j.contrast > 0.0 => {
                    let f = factor(rng, j.contrast);
                    let mean = px.iter().map(|&p| luma(p)).sum::<f32>() / px.len().max(1) as f32;
                    px.iter_mut()
                        .for_each(|p| *p = p.map(|c| ((c - mean) * f + mean).clamp(0.0, 1.0)));
                }
                2 if j.saturation > 0.0 => {
                    let f = factor(rng, j.saturation);
                    px.iter_mut().for_each(|p| {
                        let g = luma(*p);
                        *p = p.map(|c| ((c - g) * f + g).clamp(0.0, 1.0));
                    });
                }
                3 if j.hue > 0.0 => {
                    let shift = rng.random_range(-j.hue..=j.hue) as f32;
                    px.iter_mut().for_each(|p| {
                        let mut hsv = rgb_to_hsv(*p);
                        hsv[0] += shift;
                        *p = hsv_to_rgb(hsv);
                    });
                }
                _ => {}
            }
        }
    }
    if rng.random_bool(cfg.grayscale.clamp(0.0, 1.0)) {
        px.iter_mut().for_each(|p| *p = [luma(*p); 3]);
    }
    for (dst, p) in img.pixels_mut().zip(px) {
        *dst = Rgb(p.map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8));
    }
}

/// GaussianBlur with probability `cfg.blur.p`; draws nothing when it is off, so
/// runs without blur see the same random stream as before it existed.
pub fn blur(img: &mut RgbImage, cfg: &AugmentCfg, rng: &mut StdRng) {
    let b = &cfg.blur;
    if b.p <= 0.0 || !rng.random_bool(b.p.min(1.0)) {
        return;
    }
    let sigma = rng.random_range(b.sigma[0]..=b.sigma[1]) as f32;
    *img = imageops::blur(img, sigma);
}

/// ImageNet mean/std normalisation into a CHW f32 buffer appended to `out`.
pub fn normalise_into(img: &RgbImage, out: &mut Vec<f32>) {
    const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    const STD: [f32; 3] = [0.229, 0.224, 0.225];
    for c in 0..3 {
        out.extend(
            img.pixels()
                .map(|p| (p[c] as f32 / 255.0 - MEAN[c]) / STD[c]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crops_keep_labels_aligned_with_pixels() {
        // A label map equal to the red channel: any geometry must keep them equal.
        let img = RgbImage::from_fn(40, 30, |x, y| Rgb([((x * 7 + y * 3) % 5) as u8, 0, 0]));
        let labels: Vec<u8> = img.pixels().map(|p| p[0]).collect();
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..20 {
            let g = Geometry::random(&mut rng, 40, 30, [0.2, 1.0], 0.5);
            assert!(g.x + g.w <= 40 && g.y + g.h <= 30);
            let l = g.apply_labels(&labels, 40, 16);
            let nearest = {
                let crop = imageops::crop_imm(&img, g.x, g.y, g.w, g.h).to_image();
                let mut r = imageops::resize(&crop, 16, 16, imageops::FilterType::Nearest);
                if g.flip {
                    imageops::flip_horizontal_in_place(&mut r);
                }
                r
            };
            let agree = l
                .iter()
                .zip(nearest.pixels())
                .filter(|(a, p)| **a == p[0])
                .count();
            assert!(agree >= 16 * 16 * 9 / 10, "{agree} of 256 agree for {g:?}");
        }
    }

    #[test]
    fn jitter_and_grayscale_are_seeded() {
        let img = RgbImage::from_fn(8, 8, |x, y| Rgb([x as u8 * 30, y as u8 * 30, 128]));
        let cfg = AugmentCfg {
            grayscale: 1.0,
            ..AugmentCfg::default()
        };
        let (mut a, mut b) = (img.clone(), img.clone());
        photometric(&mut a, &cfg, &mut StdRng::seed_from_u64(1));
        photometric(&mut b, &cfg, &mut StdRng::seed_from_u64(1));
        assert_eq!(a, b);
        assert!(
            a.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
            "grayscale"
        );
        for v in [[0.2f32, 0.5, 0.9], [0.9, 0.1, 0.1], [0.3, 0.3, 0.3]] {
            let back = hsv_to_rgb(rgb_to_hsv(v));
            assert!(
                v.iter().zip(back).all(|(a, b)| (a - b).abs() < 1e-5),
                "{v:?} -> {back:?}"
            );
        }
    }
}
