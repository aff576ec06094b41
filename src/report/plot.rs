//! Line plots as PNG (loss curves, metrics over training), drawn with imageproc and
//! an embedded font so a run needs no system fonts.

use std::path::Path;

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_hollow_rect_mut, draw_line_segment_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

use crate::error::{Error, Result};

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The embedded label font.
pub fn font() -> Result<FontRef<'static>> {
    FontRef::try_from_slice(FONT_BYTES).map_err(|e| Error::file("assets/DejaVuSans.ttf", e))
}

/// Distinguishable line colours, cycled per series.
const COLOURS: [[u8; 3]; 6] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [23, 190, 207],
];

/// One named line.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// "Nice" tick step for a range: 1, 2 or 5 times a power of ten.
fn tick_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    // Ticks are multiples of the step; snapping avoids "-0" and 0.30000000000000004.
    let v = (v / step).round() * step;
    let v = if v == 0.0 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// Draws `series` into a PNG at `path`, written atomically.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let font = font()?;
    let (w, h) = (800u32, 480u32);
    let (left, right, top, bottom) = (80i32, 20i32, 40i32, 60i32);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let black = Rgb([0, 0, 0]);
    let grey = Rgb([220, 220, 220]);
    let small = PxScale::from(14.0);
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = all.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if all.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.05;
    (y0, y1) = (y0 - pad, y1 + pad);
    let (pw, ph) = (
        (w as i32 - left - right) as f64,
        (h as i32 - top - bottom) as f64,
    );
    let px = |x: f64| left as f64 + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top as f64 + (1.0 - (y - y0) / (y1 - y0)) * ph;
    for (lo, hi, horizontal) in [(y0, y1, true), (x0, x1, false)] {
        let step = tick_step(hi - lo);
        let mut t = (lo / step).ceil() * step;
        while t <= hi {
            let text = fmt_tick(t, step);
            let (tw, th) = text_size(small, &font, &text);
            if horizontal {
                let y = py(t) as f32;
                draw_line_segment_mut(
                    &mut img,
                    (left as f32, y),
                    ((w as i32 - right) as f32, y),
                    grey,
                );
                draw_text_mut(
                    &mut img,
                    black,
                    left - 6 - tw as i32,
                    y as i32 - th as i32 / 2,
                    small,
                    &font,
                    &text,
                );
            } else {
                let x = px(t) as f32;
                draw_line_segment_mut(
                    &mut img,
                    (x, top as f32),
                    (x, (h as i32 - bottom) as f32),
                    grey,
                );
                draw_text_mut(
                    &mut img,
                    black,
                    x as i32 - tw as i32 / 2,
                    h as i32 - bottom + 6,
                    small,
                    &font,
                    &text,
                );
            }
            t += step;
        }
    }
    draw_hollow_rect_mut(
        &mut img,
        Rect::at(left, top).of_size(pw as u32, ph as u32),
        black,
    );
    for (i, s) in series.iter().enumerate() {
        let c = Rgb(COLOURS[i % COLOURS.len()]);
        for pair in s.points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.1.is_finite() && b.1.is_finite() {
                draw_line_segment_mut(
                    &mut img,
                    (px(a.0) as f32, py(a.1) as f32),
                    (px(b.0) as f32, py(b.1) as f32),
                    c,
                );
            }
        }
        let ly = top + 8 + 20 * i as i32;
        let lx = w as i32 - right - 200;
        draw_line_segment_mut(
            &mut img,
            (lx as f32, ly as f32 + 8.0),
            (lx as f32 + 24.0, ly as f32 + 8.0),
            c,
        );
        draw_text_mut(&mut img, black, lx + 30, ly, small, &font, &s.label);
    }
    let big = PxScale::from(18.0);
    let (tw, _) = text_size(big, &font, title);
    draw_text_mut(
        &mut img,
        black,
        (w as i32 - tw as i32) / 2,
        10,
        big,
        &font,
        title,
    );
    let (tw, _) = text_size(small, &font, x_label);
    draw_text_mut(
        &mut img,
        black,
        left + (pw as i32 - tw as i32) / 2,
        h as i32 - 24,
        small,
        &font,
        x_label,
    );
    draw_text_mut(&mut img, black, 8, top - 22, small, &font, y_label);
    super::write_png(path, &img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_plot_with_two_series() {
        let path = std::env::temp_dir().join(format!("wgseg_plot_{}.png", std::process::id()));
        let a = Series {
            label: "loss".into(),
            points: (0..50)
                .map(|i| (i as f64, 2.0 / (1.0 + i as f64)))
                .collect(),
        };
        let b = Series {
            label: "lr".into(),
            points: (0..50).map(|i| (i as f64, 0.01 * i as f64)).collect(),
        };
        line_plot(&path, "training", "step", "value", &[a, b]).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (800, 480));
        // Both line colours appear.
        for c in &COLOURS[..2] {
            assert!(img.pixels().any(|p| p.0 == *c), "colour {c:?} missing");
        }
        std::fs::remove_file(path).unwrap();
        assert_eq!(tick_step(10.0), 2.0);
    }
}
