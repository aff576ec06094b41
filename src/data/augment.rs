//! Host-side augmentations as torchvision applies them: RandomResizedCrop (bilinear
//! for the image, nearest for label maps), horizontal flip, rotation, colour jitter,
//! random grayscale and Gaussian blur, all drawn from a seeded RNG so a run is
//! reproducible.

use image::{imageops, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::Rng;

use super::color::{hsv_to_rgb, rgb_to_hsv};
use crate::data::config::AugmentCfg;

/// Where a view was cut from its source and whether it is mirrored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub flip: bool,
    /// Rotation of the view about its centre in degrees (RandomRotation); what falls
    /// outside the source is filled (black image, the caller's label fill).
    pub angle: f32,
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
            angle: 0.0,
        }
    }

    /// torchvision's RandomResizedCrop sampling (area fraction in `aug.crop_scale`,
    /// log-uniform aspect ratio in [3/4, 4/3], ten tries, then a centre crop), the flip,
    /// and a rotation angle uniform in +-`aug.rotation` degrees.
    pub fn random(rng: &mut StdRng, width: u32, height: u32, aug: &AugmentCfg) -> Geometry {
        let mut g = Geometry::crop(rng, width, height, aug.crop_scale, aug.hflip);
        // No draw when rotation is off: runs without it keep their random stream.
        if aug.rotation > 0.0 {
            g.angle = rng.random_range(-aug.rotation..=aug.rotation) as f32;
        }
        g
    }

    fn crop(rng: &mut StdRng, width: u32, height: u32, scale: [f64; 2], hflip: f64) -> Geometry {
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
                    angle: 0.0,
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
            angle: 0.0,
        }
    }

    /// Cuts and resizes an image to `size` x `size` (bilinear).
    pub fn apply_image(&self, img: &RgbImage, size: u32) -> RgbImage {
        let crop = imageops::crop_imm(img, self.x, self.y, self.w, self.h).to_image();
        let mut out = imageops::resize(&crop, size, size, imageops::FilterType::Triangle);
        if self.flip {
            imageops::flip_horizontal_in_place(&mut out);
        }
        if self.angle == 0.0 {
            return out;
        }
        let unrotate = Unrotate::new(self.angle, size);
        RgbImage::from_fn(size, size, |ox, oy| {
            // Bilinear in pixel-index coordinates; black outside the view.
            let (sx, sy) = unrotate.source(ox, oy);
            let (fx, fy) = (sx - 0.5, sy - 0.5);
            let (x0, y0) = (fx.floor(), fy.floor());
            let (ax, ay) = (fx - x0, fy - y0);
            let at = |x: f32, y: f32| -> [f32; 3] {
                if x < 0.0 || y < 0.0 || x >= size as f32 || y >= size as f32 {
                    [0.0; 3]
                } else {
                    out.get_pixel(x as u32, y as u32).0.map(f32::from)
                }
            };
            let (p00, p10) = (at(x0, y0), at(x0 + 1.0, y0));
            let (p01, p11) = (at(x0, y0 + 1.0), at(x0 + 1.0, y0 + 1.0));
            Rgb([0, 1, 2].map(|c| {
                let top = p00[c] * (1.0 - ax) + p10[c] * ax;
                let bottom = p01[c] * (1.0 - ax) + p11[c] * ax;
                (top * (1.0 - ay) + bottom * ay).round().clamp(0.0, 255.0) as u8
            }))
        })
    }

    /// Cuts and resizes a label map (nearest: labels are never blended); pixels that
    /// rotation brings in from outside the view get `fill`.
    pub fn apply_labels(&self, labels: &[u8], width: u32, size: u32, fill: u8) -> Vec<u8> {
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
        if self.angle == 0.0 {
            return out;
        }
        let unrotate = Unrotate::new(self.angle, size);
        (0..size * size)
            .map(|i| {
                let (sx, sy) = unrotate.source(i % size, i / size);
                if sx < 0.0 || sy < 0.0 || sx >= size as f32 || sy >= size as f32 {
                    fill
                } else {
                    out[(sy as u32 * size + sx as u32) as usize]
                }
            })
            .collect()
    }
}

/// Where an output pixel of a view rotated by `angle` degrees about its centre comes
/// from in the unrotated view: one mapping shared by images and label maps, so they
/// stay aligned.
struct Unrotate {
    cos: f32,
    sin: f32,
    centre: f32,
}

impl Unrotate {
    fn new(angle: f32, size: u32) -> Unrotate {
        let (sin, cos) = angle.to_radians().sin_cos();
        Unrotate {
            cos,
            sin,
            centre: size as f32 / 2.0,
        }
    }

    /// Source position (continuous, pixel centres at +0.5) of output pixel (ox, oy).
    fn source(&self, ox: u32, oy: u32) -> (f32, f32) {
        let (dx, dy) = (ox as f32 + 0.5 - self.centre, oy as f32 + 0.5 - self.centre);
        (
            self.cos * dx - self.sin * dy + self.centre,
            self.sin * dx + self.cos * dy + self.centre,
        )
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
            let g = Geometry::crop(&mut rng, 40, 30, [0.2, 1.0], 0.5);
            assert!(g.x + g.w <= 40 && g.y + g.h <= 30);
            let l = g.apply_labels(&labels, 40, 16, 0);
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
    fn rotation_keeps_labels_aligned_and_fills_the_corners() {
        // Labels equal to a blocky red channel (never 0 inside the image).
        let img = RgbImage::from_fn(32, 32, |x, y| {
            Rgb([(1 + x / 8 + 4 * (y / 8)) as u8 * 10, 0, 0])
        });
        let labels: Vec<u8> = img.pixels().map(|p| p[0]).collect();
        let g = Geometry {
            angle: 30.0,
            ..Geometry::full(32, 32)
        };
        let (rotated, l) = (
            g.apply_image(&img, 32),
            g.apply_labels(&labels, 32, 32, 255),
        );
        assert_eq!(l[0], 255, "a corner comes from outside the view");
        assert_eq!(rotated.get_pixel(0, 0)[0], 0);
        assert_eq!(l[16 * 32 + 16], labels[16 * 32 + 16], "the centre stays");
        // Away from the filled corners, every interpolated pixel lies within the labels
        // of its 3x3 neighbourhood.
        for y in 1..31u32 {
            for x in 1..31u32 {
                let near: Vec<u8> = (0..9)
                    .map(|k| l[((y + k / 3 - 1) * 32 + x + k % 3 - 1) as usize])
                    .collect();
                if near.contains(&255) {
                    continue;
                }
                let v = rotated.get_pixel(x, y)[0];
                let (lo, hi) = (near.iter().min().unwrap(), near.iter().max().unwrap());
                assert!((*lo..=*hi).contains(&v), "({x}, {y}): {v} outside {near:?}");
            }
        }
        // A quarter turn moves the top-left block to a corner of the view.
        let quarter = Geometry {
            angle: 90.0,
            ..Geometry::full(32, 32)
        }
        .apply_labels(&labels, 32, 32, 255);
        assert!(!quarter.contains(&255));
        let corners = [
            quarter[0],
            quarter[31],
            quarter[31 * 32],
            quarter[32 * 32 - 1],
        ];
        assert!(corners.contains(&labels[0]), "{corners:?}");
        assert_ne!(quarter[0], labels[0]);
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
