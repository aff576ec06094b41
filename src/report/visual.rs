//! Pictures of predictions: class maps in the VOC palette, overlays on the input,
//! and a legend naming each class's colour.

use std::path::Path;

use ab_glyph::PxScale;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut};
use imageproc::rect::Rect;

use super::plot::font;
use crate::data::voc::{palette, IGNORE};
use crate::error::{Error, Result};

/// Colours a class map (row-major, `width` wide) with the VOC palette.
pub fn colorize(labels: &[u8], width: u32, height: u32) -> RgbImage {
    let pal = palette();
    RgbImage::from_fn(width, height, |x, y| {
        Rgb(pal[labels[(y * width + x) as usize] as usize])
    })
}

/// Blends the class colours over the image (`alpha` of colour); ignored pixels stay.
pub fn overlay(image: &RgbImage, labels: &[u8], alpha: f32) -> RgbImage {
    let pal = palette();
    let mut out = image.clone();
    for (i, p) in out.pixels_mut().enumerate() {
        let l = labels[i];
        if l == IGNORE {
            continue;
        }
        let c = pal[l as usize];
        for ch in 0..3 {
            p[ch] = (p[ch] as f32 * (1.0 - alpha) + c[ch] as f32 * alpha).round() as u8;
        }
    }
    out
}

/// A panel listing each class name next to its colour.
pub fn legend(names: &[String], height: u32) -> Result<RgbImage> {
    let f = font()?;
    let scale = PxScale::from(14.0);
    let pal = palette();
    let rows = names.len() as u32;
    let mut img = RgbImage::from_pixel(150, height.max(rows * 18 + 8), Rgb([255, 255, 255]));
    for (i, name) in names.iter().enumerate() {
        let y = 4 + 18 * i as i32;
        draw_filled_rect_mut(&mut img, Rect::at(4, y).of_size(14, 14), Rgb(pal[i]));
        draw_text_mut(&mut img, Rgb([0, 0, 0]), 24, y, scale, &f, name);
    }
    Ok(img)
}

/// Saves [input | overlay | prediction | legend] side by side as one PNG.
pub fn save_prediction(path: &Path, image: &RgbImage, pred: &[u8], names: &[String]) -> Result<()> {
    let (w, h) = image.dimensions();
    if pred.len() != (w * h) as usize {
        return Err(Error::file(
            path,
            format!("prediction has {} pixels, image {w}x{h}", pred.len()),
        ));
    }
    let legend = legend(names, h)?;
    let mut out = RgbImage::from_pixel(
        3 * w + legend.width(),
        h.max(legend.height()),
        Rgb([255, 255, 255]),
    );
    image::imageops::replace(&mut out, image, 0, 0);
    image::imageops::replace(&mut out, &overlay(image, pred, 0.5), w as i64, 0);
    image::imageops::replace(&mut out, &colorize(pred, w, h), 2 * w as i64, 0);
    image::imageops::replace(&mut out, &legend, 3 * w as i64, 0);
    let mut bytes = Vec::new();
    out.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::file(path, e))?;
    crate::io::write_atomic(path, &bytes)
}
