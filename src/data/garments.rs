//! The built-in dataset of real objects: Fashion-MNIST garments (five classes unless
//! told otherwise, see assets/fashion_mnist) composited onto the generated textured backgrounds of the
//! shapes dataset. The class of an object is its garment category; its colour,
//! texture, size, position and mirror image are drawn independently of the class, so
//! that only what the garment looks like tells the classes apart. The garment's own
//! shading (folds, seams, straps) modulates its texture, and its mask is where the
//! garment's intensity is above a threshold. Style B (muted palette, dots and noise,
//! blur and sensor noise) is the other domain, as for the shapes.

use rand::Rng;

use super::fashion_mnist::{Garment, Garments, Split, SIDE};
use super::synthetic::{compose, sample_rng, texture, Sample, Style};
use crate::error::{Error, Result};

/// Class names for the garment classes `classes`: index 0 is the background.
pub fn class_names(classes: &[String]) -> Vec<String> {
    std::iter::once("background".to_string())
        .chain(classes.iter().cloned())
        .collect()
}

/// A garment pixel at or above this intensity (of 255, after resampling) is the object.
const MASK_LEVEL: f32 = 0.12;

/// Seed salt that keeps garment images apart from shape images of the same seed.
const SALT: u64 = 0x6a72_6d74;

#[derive(Clone, Copy, Debug)]
pub struct GarmentSpec {
    /// Square image side in pixels.
    pub size: usize,
    pub style: Style,
    pub seed: u64,
    /// Objects per image: 1..=max_objects.
    pub max_objects: usize,
    /// Side of an object's 28 x 28 garment box as a fraction of the image side.
    pub object_scale: [f32; 2],
    /// Contrast of the texture on each garment: 1 bold, 0 plain colour.
    pub garment_texture: f32,
    /// Contrast of the background's texture: 1 bold, 0 plain colour.
    pub background_texture: f32,
}

struct Placed<'a> {
    garment: &'a Garment<'static>,
    /// Top-left corner and side of the garment's box, in pixels.
    x0: f32,
    y0: f32,
    side: f32,
    mirrored: bool,
    texture: super::synthetic::Texture,
}

impl Placed<'_> {
    /// The garment's intensity in [0, 1] at image point (x, y), bilinear.
    fn intensity(&self, x: f32, y: f32) -> f32 {
        let scale = SIDE as f32 / self.side;
        let mut u = (x - self.x0) * scale - 0.5;
        let v = (y - self.y0) * scale - 0.5;
        if self.mirrored {
            u = SIDE as f32 - 1.0 - u;
        }
        if u <= -1.0 || v <= -1.0 || u >= SIDE as f32 || v >= SIDE as f32 {
            return 0.0;
        }
        let at = |i: i32, j: i32| -> f32 {
            if i < 0 || j < 0 || i >= SIDE as i32 || j >= SIDE as i32 {
                0.0
            } else {
                self.garment.pixels[j as usize * SIDE + i as usize] as f32 / 255.0
            }
        };
        let (i0, j0) = (u.floor(), v.floor());
        let (fu, fv) = (u - i0, v - j0);
        let (i0, j0) = (i0 as i32, j0 as i32);
        let top = at(i0, j0) * (1.0 - fu) + at(i0 + 1, j0) * fu;
        let bottom = at(i0, j0 + 1) * (1.0 - fu) + at(i0 + 1, j0 + 1) * fu;
        top * (1.0 - fv) + bottom * fv
    }
}

/// Generates sample `index` of `spec` from the garments of `pool`; the same spec,
/// index and pool always give the same sample, independently of other samples.
pub fn generate(spec: &GarmentSpec, pool: &Garments, index: u64) -> Sample {
    let mut rng = sample_rng(spec.seed, spec.style, index, SALT);
    let n = spec.size;
    let sz = n as f32;
    let background = texture(&mut rng, spec.style, spec.background_texture, None);
    let count = rng.random_range(1..=spec.max_objects.max(1));
    let [lo, hi] = spec.object_scale;
    let placed: Vec<Placed> = (0..count)
        .map(|_| {
            let class = rng.random_range(1..=pool.classes() as u8);
            let choices = pool.of_class(class);
            let garment = &choices[rng.random_range(0..choices.len())];
            let side = sz * rng.random_range(lo..=hi);
            Placed {
                garment,
                x0: rng.random_range(0.0..=(sz - side).max(0.0)),
                y0: rng.random_range(0.0..=(sz - side).max(0.0)),
                side,
                mirrored: rng.random_bool(0.5),
                texture: texture(&mut rng, spec.style, spec.garment_texture, None),
            }
        })
        .collect();
    // Later garments lie on top of earlier ones.
    compose(n, spec.style, &background, &mut rng, |fx, fy| {
        placed.iter().rev().find_map(|p| {
            let a = p.intensity(fx, fy);
            (a >= MASK_LEVEL).then(|| {
                let t = p.texture.at(fx - p.x0, fy - p.y0);
                // The garment's shading darkens its texture where the garment is
                // dark, so folds and seams stay visible.
                let shade = 0.35 + 0.65 * a;
                ([t[0] * shade, t[1] * shade, t[2] * shade], p.garment.class)
            })
        })
    })
}

/// A garments dataset: samples 0..train draw from the training garments, later ones
/// from the validation garments.
pub struct GarmentSet {
    spec: GarmentSpec,
    train: usize,
    pools: [Garments; 2],
}

impl GarmentSet {
    /// `labels`: the Fashion-MNIST labels of classes 1.. (from `labels_of`).
    pub fn open(spec: GarmentSpec, train: usize, labels: &[u8]) -> Result<GarmentSet> {
        for (key, v) in [
            ("garment_texture", spec.garment_texture),
            ("background_texture", spec.background_texture),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::Usage(format!(
                    "garments: {key} {v} must lie in [0, 1]"
                )));
            }
        }
        Ok(GarmentSet {
            spec,
            train,
            pools: [
                Garments::open(Split::Train, labels)?,
                Garments::open(Split::Val, labels)?,
            ],
        })
    }

    pub fn sample(&self, index: u64) -> Sample {
        let pool = if (index as usize) < self.train {
            &self.pools[0]
        } else {
            &self.pools[1]
        };
        generate(&self.spec, pool, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default classes' Fashion-MNIST labels.
    const FIVE: [u8; 5] = [0, 1, 5, 8, 9];

    fn spec(style: Style) -> GarmentSpec {
        GarmentSpec {
            size: 64,
            style,
            seed: 3,
            max_objects: 2,
            object_scale: [0.5, 0.8],
            garment_texture: 1.0,
            background_texture: 1.0,
        }
    }

    #[test]
    fn samples_are_deterministic_and_differ_by_index_style_and_split() {
        let (train, val) = (
            Garments::open(Split::Train, &FIVE).unwrap(),
            Garments::open(Split::Val, &FIVE).unwrap(),
        );
        let a = generate(&spec(Style::A), &train, 5);
        let b = generate(&spec(Style::A), &train, 5);
        assert_eq!(a.image, b.image);
        assert_eq!(a.label, b.label);
        assert_ne!(generate(&spec(Style::A), &train, 6).image, a.image);
        assert_ne!(generate(&spec(Style::B), &train, 5).image, a.image);
        assert_ne!(generate(&spec(Style::A), &val, 5).label, a.label);
    }

    #[test]
    fn masks_are_the_garments_and_every_class_appears() {
        let pool = Garments::open(Split::Train, &FIVE).unwrap();
        let mut seen = [false; FIVE.len() + 1];
        for i in 0..60 {
            let s = generate(&spec(Style::A), &pool, i);
            for (&l, &m) in s.label.iter().zip(&s.saliency) {
                seen[l as usize] = true;
                assert_eq!(m == 1, l != 0);
            }
            let fg = s.saliency.iter().filter(|&&m| m == 1).count();
            // A garment box covers at least a quarter of the image; the garment at
            // least a fifth of its box.
            assert!(
                fg * 25 > s.label.len() && fg < s.label.len(),
                "sample {i}: foreground {fg}"
            );
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn colour_does_not_determine_the_class() {
        let pool = Garments::open(Split::Train, &FIVE).unwrap();
        let mut channels: Vec<[bool; 3]> = vec![[false; 3]; FIVE.len() + 1];
        for i in 0..80 {
            let s = generate(&spec(Style::A), &pool, i);
            for (p, &l) in s.image.pixels().zip(&s.label) {
                if l != 0 {
                    let dominant = (0..3).max_by_key(|&c| p[c]).unwrap();
                    channels[l as usize][dominant] = true;
                }
            }
        }
        for (class, c) in channels.iter().enumerate().skip(1) {
            assert_eq!(c, &[true; 3], "class {class} shows too few hues");
        }
    }

    #[test]
    fn plain_garments_differ_from_textured_ones_only_inside_the_garments() {
        let pool = Garments::open(Split::Train, &FIVE).unwrap();
        let plain = GarmentSpec {
            garment_texture: 0.0,
            ..spec(Style::A)
        };
        for i in 0..10 {
            let (t, p) = (
                generate(&spec(Style::A), &pool, i),
                generate(&plain, &pool, i),
            );
            assert_eq!(
                t.label, p.label,
                "sample {i}: the same garments in the same places"
            );
            let mut inside_differs = false;
            for ((a, b), &l) in t.image.pixels().zip(p.image.pixels()).zip(&t.label) {
                if l == 0 {
                    assert_eq!(a, b, "sample {i}: the background is untouched");
                } else {
                    inside_differs |= a != b;
                }
            }
            assert!(inside_differs, "sample {i}");
        }
    }

    #[test]
    fn a_plain_background_is_one_colour_behind_the_same_garments() {
        let pool = Garments::open(Split::Train, &FIVE).unwrap();
        let plain = GarmentSpec {
            background_texture: 0.0,
            ..spec(Style::A)
        };
        for i in 0..10 {
            let (t, p) = (
                generate(&spec(Style::A), &pool, i),
                generate(&plain, &pool, i),
            );
            assert_eq!(t.label, p.label, "sample {i}");
            let background: Vec<_> = p
                .image
                .pixels()
                .zip(&p.label)
                .filter(|(_, &l)| l == 0)
                .map(|(px, _)| *px)
                .collect();
            assert!(
                background.windows(2).all(|w| w[0] == w[1]),
                "sample {i}: the background has more than one colour"
            );
        }
    }

    #[test]
    fn a_texture_contrast_outside_0_to_1_is_refused() {
        for (bad, key) in [
            (
                GarmentSpec {
                    garment_texture: 1.5,
                    ..spec(Style::A)
                },
                "garment_texture 1.5",
            ),
            (
                GarmentSpec {
                    background_texture: -0.5,
                    ..spec(Style::A)
                },
                "background_texture -0.5",
            ),
        ] {
            let e = GarmentSet::open(bad, 4, &FIVE).err().unwrap().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
