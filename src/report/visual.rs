//! Pictures of predictions: class maps in the VOC palette, overlays on the input,
//! and a legend naming each class's colour.

use std::path::Path;

use ab_glyph::PxScale;
use image::imageops::{resize, FilterType};
use image::{GrayImage, Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut};
use imageproc::rect::Rect;

use super::plot::font;
use super::write_png;
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

/// Pictures are enlarged (nearest, by a whole factor) until their longer side reaches
/// this many pixels: a 64-pixel tile is too small to see.
const READABLE_SIDE: u32 = 256;
/// Side of a contact sheet's tiles and their columns.
const SHEET_TILE: u32 = 128;
const SHEET_COLUMNS: u32 = 4;

/// The whole factor that brings the longer side of w x h to at least `side`.
fn enlargement(w: u32, h: u32, side: u32) -> u32 {
    side.div_ceil(w.max(h).max(1)).max(1)
}

fn enlarge(img: &RgbImage, k: u32) -> RgbImage {
    resize(img, img.width() * k, img.height() * k, FilterType::Nearest)
}

/// A class map of `w` x `h` resized (nearest) to `to_w` x `to_h`.
pub fn resize_labels(labels: &[u8], w: u32, h: u32, to_w: u32, to_h: u32) -> Result<Vec<u8>> {
    let map = GrayImage::from_raw(w, h, labels.to_vec()).ok_or_else(|| {
        Error::Usage(format!(
            "a class map of {} pixels is not {w}x{h}",
            labels.len()
        ))
    })?;
    Ok(resize(&map, to_w, to_h, FilterType::Nearest).into_raw())
}

fn check_pixels(path: &Path, image: &RgbImage, pred: &[u8]) -> Result<()> {
    let (w, h) = image.dimensions();
    if pred.len() != (w * h) as usize {
        return Err(Error::file(
            path,
            format!("prediction has {} pixels, image {w}x{h}", pred.len()),
        ));
    }
    Ok(())
}

/// Saves [input | overlay | prediction | legend] side by side as one PNG, enlarged
/// to a readable size.
pub fn save_prediction(path: &Path, image: &RgbImage, pred: &[u8], names: &[String]) -> Result<()> {
    check_pixels(path, image, pred)?;
    let (w, h) = image.dimensions();
    let k = enlargement(w, h, READABLE_SIDE);
    let (sw, sh) = (w * k, h * k);
    let legend = legend(names, sh)?;
    let mut out = RgbImage::from_pixel(
        3 * sw + legend.width(),
        sh.max(legend.height()),
        Rgb([255, 255, 255]),
    );
    image::imageops::replace(&mut out, &enlarge(image, k), 0, 0);
    image::imageops::replace(
        &mut out,
        &enlarge(&overlay(image, pred, 0.5), k),
        sw as i64,
        0,
    );
    image::imageops::replace(
        &mut out,
        &enlarge(&colorize(pred, w, h), k),
        2 * sw as i64,
        0,
    );
    image::imageops::replace(&mut out, &legend, 3 * sw as i64, 0);
    write_png(path, &out)
}

/// Saves the overlays of several predictions as one grid (a run's contact sheet),
/// each tile enlarged to about [`SHEET_TILE`] pixels, with the legend beside it.
pub fn save_contact_sheet(
    path: &Path,
    items: &[(RgbImage, Vec<u8>)],
    names: &[String],
) -> Result<()> {
    let Some((first, _)) = items.first() else {
        return Err(Error::file(
            path,
            "a contact sheet needs at least one picture",
        ));
    };
    let (w, h) = first.dimensions();
    let k = enlargement(w, h, SHEET_TILE);
    let (tw, th) = (w * k, h * k);
    let columns = SHEET_COLUMNS.min(items.len() as u32);
    let rows = (items.len() as u32).div_ceil(columns);
    let legend = legend(names, rows * th)?;
    let mut out = RgbImage::from_pixel(
        columns * tw + legend.width(),
        (rows * th).max(legend.height()),
        Rgb([255, 255, 255]),
    );
    for (i, (image, pred)) in items.iter().enumerate() {
        check_pixels(path, image, pred)?;
        if image.dimensions() != (w, h) {
            return Err(Error::file(
                path,
                "contact sheet pictures must share one size",
            ));
        }
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let tile = enlarge(&overlay(image, pred, 0.5), k);
        image::imageops::replace(&mut out, &tile, (col * tw) as i64, (row * th) as i64);
    }
    image::imageops::replace(&mut out, &legend, (columns * tw) as i64, 0);
    write_png(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pictures_are_enlarged_by_a_whole_factor() {
        assert_eq!(enlargement(64, 64, READABLE_SIDE), 4);
        assert_eq!(enlargement(100, 60, READABLE_SIDE), 3);
        assert_eq!(enlargement(451, 300, READABLE_SIDE), 1);
    }

    #[test]
    fn class_maps_resize_by_nearest_neighbour() {
        let labels = [1, 2, 3, 4];
        let big = resize_labels(&labels, 2, 2, 4, 2).unwrap();
        assert_eq!(big, [1, 1, 2, 2, 3, 3, 4, 4]);
        assert!(resize_labels(&labels, 3, 2, 4, 4).is_err());
    }
}
