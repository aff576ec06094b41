//! What a run shows a person: plots and prediction pictures.

pub mod plot;
pub mod visual;

use std::path::Path;

use image::RgbImage;

use crate::error::{Error, Result};

/// Encodes `img` as PNG and writes it atomically (temporary file, then rename).
pub fn write_png(path: &Path, img: &RgbImage) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::file(path, e))?;
    crate::io::write_atomic(path, &bytes)
}
