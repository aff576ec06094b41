//! The built-in dataset: textured shapes on textured backgrounds, generated
//! deterministically from a seed. The class of an object is its shape (circle,
//! square, triangle, cross); its colour is drawn independently of the class, so
//! colour clustering cannot solve the task. Its texture is independent of the class
//! too, unless `class_textures` gives each class its own pattern family (as real
//! classes differ by texture as well as outline: fur, metal, foliage). Each sample
//! carries class labels and a saliency mask (the union of objects). Style B changes
//! palette, texture family, noise and blur: the target domain for domain adaptation.

use image::{Rgb, RgbImage};

use super::color::hsv_to_rgb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Class names; index 0 is the background.
pub const CLASSES: [&str; 5] = ["background", "circle", "square", "triangle", "cross"];

/// Visual domain of the generated images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Saturated colours, stripes and checkerboards, clean.
    A,
    /// Muted colours, dots and value noise, sensor noise and blur.
    B,
}

#[derive(Clone, Copy, Debug)]
pub struct SynthSpec {
    /// Square image side in pixels.
    pub size: usize,
    pub style: Style,
    pub seed: u64,
    /// Objects per image: 1..=max_objects.
    pub max_objects: usize,
    /// Strength of the textures' light/dark variation: 1 for bold patterns, towards 0
    /// for nearly flat regions (shape boundaries then dominate what is visible).
    pub texture_contrast: f32,
    /// Each class draws its object texture from its own pattern family (circle
    /// stripes, square checkerboard, triangle dots, cross noise); frequency, angle,
    /// phase and colour stay random. Off: every object draws its pattern at random.
    pub class_textures: bool,
}

/// One generated image with its labels.
pub struct Sample {
    pub image: RgbImage,
    /// Class index per pixel, row-major.
    pub label: Vec<u8>,
    /// 1 where a pixel belongs to an object.
    pub saliency: Vec<u8>,
}

#[derive(Clone, Copy)]
pub(super) enum Pattern {
    Stripes,
    Checker,
    Dots,
    Noise,
}

impl Pattern {
    /// The family of `class` when textures follow the class.
    fn of_class(class: u8) -> Pattern {
        match class {
            1 => Pattern::Stripes,
            2 => Pattern::Checker,
            3 => Pattern::Dots,
            _ => Pattern::Noise,
        }
    }
}

#[derive(Clone, Copy)]
pub(super) struct Texture {
    pattern: Pattern,
    a: [f32; 3],
    b: [f32; 3],
    freq: f32,
    angle: f32,
    phase: f32,
    seed: u32,
}

fn colour(rng: &mut StdRng, style: Style) -> [f32; 3] {
    match style {
        Style::A => hsv_to_rgb([
            rng.random(),
            rng.random_range(0.6..1.0),
            rng.random_range(0.6..1.0),
        ]),
        Style::B => hsv_to_rgb([
            rng.random(),
            rng.random_range(0.1..0.45),
            rng.random_range(0.25..0.75),
        ]),
    }
}

/// A random texture of the style; `pattern` fixes its family (class textures).
pub(super) fn texture(
    rng: &mut StdRng,
    style: Style,
    contrast: f32,
    pattern: Option<Pattern>,
) -> Texture {
    // Drawn even when the family is fixed, so that the images with and without class
    // textures differ only in their object textures (same colours, shapes, places).
    let coin = rng.random_bool(0.5);
    let pattern = pattern.unwrap_or(match (style, coin) {
        (Style::A, true) => Pattern::Stripes,
        (Style::A, false) => Pattern::Checker,
        (Style::B, true) => Pattern::Dots,
        (Style::B, false) => Pattern::Noise,
    });
    let a = colour(rng, style);
    // The second colour is a shade of the first: texture varies brightness, not hue.
    let shade = 1.0 - contrast.clamp(0.0, 1.0) * rng.random_range(0.2..0.55);
    Texture {
        pattern,
        a,
        b: [a[0] * shade, a[1] * shade, a[2] * shade],
        freq: rng.random_range(0.15..0.45),
        angle: rng.random_range(0.0..std::f32::consts::PI),
        phase: rng.random_range(0.0..std::f32::consts::TAU),
        seed: rng.random(),
    }
}

fn hash(x: i32, y: i32, seed: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8da6_b343)
        ^ (y as u32).wrapping_mul(0xd816_3841)
        ^ seed.wrapping_mul(0xcb1a_b31f);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0xffff) as f32 / 65535.0
}

/// Smoothly interpolated lattice noise in [0, 1].
fn value_noise(x: f32, y: f32, seed: u32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let (xi, yi) = (x0 as i32, y0 as i32);
    let top = hash(xi, yi, seed) * (1.0 - sx) + hash(xi + 1, yi, seed) * sx;
    let bottom = hash(xi, yi + 1, seed) * (1.0 - sx) + hash(xi + 1, yi + 1, seed) * sx;
    top * (1.0 - sy) + bottom * sy
}

impl Texture {
    pub(super) fn at(&self, x: f32, y: f32) -> [f32; 3] {
        let (s, c) = self.angle.sin_cos();
        let u = (x * c + y * s) * self.freq;
        let v = (-x * s + y * c) * self.freq;
        let t = match self.pattern {
            Pattern::Stripes => 0.5 + 0.5 * (u * 2.0 + self.phase).sin(),
            Pattern::Checker => {
                let q = ((u + self.phase).floor() as i64 + v.floor() as i64).rem_euclid(2);
                q as f32
            }
            Pattern::Dots => {
                let (du, dv) = (u.fract() - 0.5, v.fract() - 0.5);
                if du * du + dv * dv < 0.09 {
                    1.0
                } else {
                    0.0
                }
            }
            Pattern::Noise => value_noise(u * 1.5, v * 1.5, self.seed),
        };
        [
            self.a[0] * t + self.b[0] * (1.0 - t),
            self.a[1] * t + self.b[1] * (1.0 - t),
            self.a[2] * t + self.b[2] * (1.0 - t),
        ]
    }
}

struct Shape {
    class: u8,
    cx: f32,
    cy: f32,
    radius: f32,
    angle: f32,
    texture: Texture,
}

impl Shape {
    /// Whether (x, y) lies inside, tested in the shape's rotated frame.
    fn contains(&self, x: f32, y: f32) -> bool {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = (dx * c + dy * s) / self.radius;
        let v = (-dx * s + dy * c) / self.radius;
        match self.class {
            1 => u * u + v * v < 1.0,
            2 => u.abs() < 0.8 && v.abs() < 0.8,
            3 => {
                let r3 = 3f32.sqrt();
                v < 0.5 && r3 * u - v < 1.0 && -r3 * u - v < 1.0
            }
            _ => (u.abs() < 0.33 && v.abs() < 1.0) || (v.abs() < 0.33 && u.abs() < 1.0),
        }
    }
}

fn box_blur(img: &mut [[f32; 3]], size: usize) {
    let src = img.to_vec();
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0f32; 3];
            let mut n = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(size) {
                for xx in x.saturating_sub(1)..(x + 2).min(size) {
                    for c in 0..3 {
                        acc[c] += src[yy * size + xx][c];
                    }
                    n += 1.0;
                }
            }
            img[y * size + x] = [acc[0] / n, acc[1] / n, acc[2] / n];
        }
    }
}

/// The image of `pixels` [n * n] in [0, 1]: style B blurs them and adds sensor noise
/// drawn from `rng`.
fn finish(mut pixels: Vec<[f32; 3]>, n: usize, style: Style, rng: &mut StdRng) -> RgbImage {
    if style == Style::B {
        box_blur(&mut pixels, n);
        for p in pixels.iter_mut() {
            for c in p.iter_mut() {
                // Approximately normal sensor noise (sum of uniforms), sigma ~0.04.
                let g: f32 = (0..4).map(|_| rng.random_range(-0.5f32..0.5)).sum::<f32>() * 0.07;
                *c += g;
            }
        }
    }
    RgbImage::from_fn(n as u32, n as u32, |x, y| {
        let p = pixels[y as usize * n + x as usize];
        Rgb([0, 1, 2].map(|c| (p[c].clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// The sample seed of `index` in a dataset of `seed` and `style`: the same spec and
/// index always give the same sample, independently of other samples.
pub(super) fn sample_rng(seed: u64, style: Style, index: u64, salt: u64) -> StdRng {
    let style_salt = match style {
        Style::A => 0x0005_eeda,
        Style::B => 0x0005_eedb,
    };
    StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ index.wrapping_mul(0xbf58_476d_1ce4_e5b9)
            ^ style_salt
            ^ salt,
    )
}

/// Generates sample `index` of the dataset described by `spec`; the same spec and
/// index always give the same sample, independently of other samples.
pub fn generate(spec: &SynthSpec, index: u64) -> Sample {
    let mut rng = sample_rng(spec.seed, spec.style, index, 0);
    let n = spec.size;
    let sz = n as f32;
    let background = texture(&mut rng, spec.style, spec.texture_contrast, None);
    let count = rng.random_range(1..=spec.max_objects.max(1));
    let shapes: Vec<Shape> = (0..count)
        .map(|_| {
            let radius = sz * rng.random_range(0.14..0.26);
            let class = rng.random_range(1..CLASSES.len() as u8);
            let pattern = spec.class_textures.then(|| Pattern::of_class(class));
            Shape {
                class,
                cx: rng.random_range(radius..sz - radius),
                cy: rng.random_range(radius..sz - radius),
                radius,
                angle: rng.random_range(0.0..std::f32::consts::TAU),
                texture: texture(&mut rng, spec.style, spec.texture_contrast, pattern),
            }
        })
        .collect();
    // Later shapes are drawn on top of earlier ones.
    compose(n, spec.style, &background, &mut rng, |fx, fy| {
        shapes
            .iter()
            .rev()
            .find(|s| s.contains(fx, fy))
            .map(|s| (s.texture.at(fx - s.cx, fy - s.cy), s.class))
    })
}

/// A sample drawn pixel by pixel: at each pixel centre (x, y), `object` gives the
/// colour and class of the topmost object there, if any; elsewhere `background`
/// shows; then `finish` with `rng`.
pub(super) fn compose(
    n: usize,
    style: Style,
    background: &Texture,
    rng: &mut StdRng,
    object: impl Fn(f32, f32) -> Option<([f32; 3], u8)>,
) -> Sample {
    let mut pixels = vec![[0f32; 3]; n * n];
    let mut label = vec![0u8; n * n];
    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            pixels[y * n + x] = match object(fx, fy) {
                Some((colour, class)) => {
                    label[y * n + x] = class;
                    colour
                }
                None => background.at(fx, fy),
            };
        }
    }
    let image = finish(pixels, n, style, rng);
    let saliency = label.iter().map(|&l| u8::from(l != 0)).collect();
    Sample {
        image,
        label,
        saliency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(style: Style) -> SynthSpec {
        SynthSpec {
            size: 48,
            style,
            seed: 3,
            max_objects: 3,
            texture_contrast: 1.0,
            class_textures: false,
        }
    }

    #[test]
    fn samples_are_deterministic_and_differ_by_index_and_style() {
        let a = generate(&spec(Style::A), 5);
        let b = generate(&spec(Style::A), 5);
        assert_eq!(a.image, b.image);
        assert_eq!(a.label, b.label);
        assert_ne!(generate(&spec(Style::A), 6).image, a.image);
        assert_ne!(generate(&spec(Style::B), 5).image, a.image);
    }

    #[test]
    fn labels_cover_every_class_and_saliency_is_the_union_of_objects() {
        let mut seen = [false; CLASSES.len()];
        for i in 0..40 {
            let s = generate(&spec(Style::A), i);
            for (&l, &m) in s.label.iter().zip(&s.saliency) {
                seen[l as usize] = true;
                assert_eq!(m == 1, l != 0);
            }
            let fg = s.saliency.iter().filter(|&&m| m == 1).count();
            assert!(fg > 0 && fg < s.label.len(), "sample {i}: foreground {fg}");
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn class_textures_change_only_the_object_textures() {
        let plain = spec(Style::A);
        let classed = SynthSpec {
            class_textures: true,
            ..plain
        };
        let mut changed = 0;
        for i in 0..20 {
            let (p, c) = (generate(&plain, i), generate(&classed, i));
            assert_eq!(p.label, c.label, "sample {i}: same shapes and places");
            for ((pp, cp), &l) in p.image.pixels().zip(c.image.pixels()).zip(&p.label) {
                if l == 0 {
                    assert_eq!(pp, cp, "sample {i}: background unchanged");
                }
            }
            changed += usize::from(p.image != c.image);
        }
        // Style A draws stripes or checkerboards: triangles (dots) and crosses (noise)
        // always change, so at least those samples differ.
        assert!(changed >= 5, "only {changed} of 20 samples changed");
    }

    #[test]
    fn class_textures_follow_the_class() {
        // Dots leave the pattern's dark colour over most of a triangle, while stripes
        // are bright over about half of a circle: the fraction of pixels near the
        // object's brightest value separates the two families.
        let classed = SynthSpec {
            class_textures: true,
            texture_contrast: 1.0,
            max_objects: 1,
            ..spec(Style::A)
        };
        let bright_fraction = |class: u8| -> f64 {
            let (mut bright, mut total) = (0usize, 0usize);
            for i in 0..60 {
                let s = generate(&classed, i);
                let obj: Vec<u32> = s
                    .image
                    .pixels()
                    .zip(&s.label)
                    .filter(|(_, &l)| l == class)
                    .map(|(p, _)| p.0.iter().map(|&v| v as u32).sum())
                    .collect();
                if let Some(&max) = obj.iter().max() {
                    bright += obj.iter().filter(|&&v| v * 10 >= max * 9).count();
                    total += obj.len();
                }
            }
            bright as f64 / total as f64
        };
        let (stripes, dots) = (bright_fraction(1), bright_fraction(3));
        assert!(
            dots < 0.4 && stripes > dots + 0.1,
            "stripes {stripes}, dots {dots}"
        );
    }

    #[test]
    fn colour_does_not_determine_the_class() {
        // Mean object colour per class: hue is drawn independently of the shape, so
        // every class spans many hues.
        let mut hues: Vec<Vec<u8>> = vec![Vec::new(); CLASSES.len()];
        for i in 0..60 {
            let s = generate(&spec(Style::A), i);
            for (p, &l) in s.image.pixels().zip(&s.label) {
                if l != 0 {
                    let dominant = (0..3).max_by_key(|&c| p[c]).unwrap() as u8;
                    hues[l as usize].push(dominant);
                }
            }
        }
        for (class, h) in hues.iter().enumerate().skip(1) {
            let distinct = (0..3u8).filter(|c| h.contains(c)).count();
            assert_eq!(
                distinct, 3,
                "class {} shows only {distinct} dominant channels",
                CLASSES[class]
            );
        }
    }
}
