//! PASCAL VOC folder layout: JPEGImages/ID.jpg, SegmentationClass/ID.png (palette
//! indices, 255 = ignore), ImageSets/Segmentation/SPLIT.txt, plus an optional
//! saliency folder of 0/255 PNG masks. Other datasets use the same layout.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::error::{Error, Result};

/// Label value that marks pixels to ignore.
pub const IGNORE: u8 = 255;

/// PASCAL VOC's 21 classes, background first.
pub const VOC_CLASSES: [&str; 21] = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// One image with its per-pixel labels (and saliency, 0/1, when the dataset has it).
pub struct Item {
    pub id: String,
    pub image: RgbImage,
    pub label: Vec<u8>,
    pub saliency: Option<Vec<u8>>,
}

/// The standard VOC colour map: class i's colour interleaves the bits of i.
pub fn palette() -> [[u8; 3]; 256] {
    let mut p = [[0u8; 3]; 256];
    for (i, entry) in p.iter_mut().enumerate() {
        let mut c = i;
        for j in 0..8 {
            for (ch, v) in entry.iter_mut().enumerate() {
                *v |= (((c >> ch) & 1) as u8) << (7 - j);
            }
            c >>= 3;
        }
    }
    p
}

/// Reads an 8-bit PNG's raw samples: palette indices for an indexed PNG, values for
/// grayscale. Colour label images are refused: their classes are ambiguous.
pub fn read_indices(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
    let file = File::open(path).map_err(|e| Error::file(path, e))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| Error::file(path, format!("not a readable PNG: {e}")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::file(path, "PNG too large"))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::file(path, format!("corrupt PNG: {e}")))?;
    if info.bit_depth != png::BitDepth::Eight
        || !matches!(
            info.color_type,
            png::ColorType::Indexed | png::ColorType::Grayscale
        )
    {
        return Err(Error::file(
            path,
            format!(
                "expected an 8-bit indexed or grayscale label PNG, found {:?} {:?}",
                info.color_type, info.bit_depth
            ),
        ));
    }
    buf.truncate(info.width as usize * info.height as usize);
    Ok((info.width, info.height, buf))
}

/// Writes class indices as an indexed PNG with the VOC palette.
pub fn write_indices(path: &Path, width: u32, height: u32, indices: &[u8]) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::file(path, e))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(palette().iter().flatten().copied().collect::<Vec<u8>>());
    let mut w = enc.write_header().map_err(|e| Error::file(path, e))?;
    w.write_image_data(indices)
        .map_err(|e| Error::file(path, e))?;
    w.finish().map_err(|e| Error::file(path, e))
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. The decoder
/// fills a file cut inside a scan with grey in silence; inside a scan a 0xFF byte is
/// always followed by 0x00 or a restart marker, so the first FF D9 after the last
/// start-of-scan (FF DA) is the real end.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| move |w: &[u8]| w == [0xFF, m];
    match bytes.windows(2).rposition(marker(0xDA)) {
        Some(sos) => bytes[sos..].windows(2).any(marker(0xD9)),
        None => false,
    }
}

/// A VOC-layout dataset split.
pub struct VocDataset {
    root: PathBuf,
    saliency_dir: Option<String>,
    pub ids: Vec<String>,
}

impl VocDataset {
    /// Opens `root` with the ids of ImageSets/Segmentation/`split`.txt.
    pub fn open(root: &Path, split: &str, saliency_dir: Option<&str>) -> Result<VocDataset> {
        let list = root
            .join("ImageSets/Segmentation")
            .join(format!("{split}.txt"));
        let text = std::fs::read_to_string(&list).map_err(|e| Error::file(&list, e))?;
        let ids: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if ids.is_empty() {
            return Err(Error::file(&list, "lists no images"));
        }
        if let Some(d) = saliency_dir {
            let dir = root.join(d);
            if !dir.is_dir() {
                return Err(Error::file(&dir, "saliency folder not found"));
            }
        }
        Ok(VocDataset {
            root: root.to_path_buf(),
            saliency_dir: saliency_dir.map(String::from),
            ids,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Loads item `i`; a missing or corrupt file is an error naming it.
    pub fn get(&self, i: usize) -> Result<Item> {
        let id = &self.ids[i];
        let img_path = self.root.join("JPEGImages").join(format!("{id}.jpg"));
        let bytes = std::fs::read(&img_path).map_err(|e| Error::file(&img_path, e))?;
        if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_complete(&bytes) {
            return Err(Error::file(
                &img_path,
                "truncated: no end-of-image marker after its last scan",
            ));
        }
        let image = image::load_from_memory(&bytes)
            .map_err(|e| Error::file(&img_path, e))?
            .to_rgb8();
        let label_path = self
            .root
            .join("SegmentationClass")
            .join(format!("{id}.png"));
        let (w, h, label) = read_indices(&label_path)?;
        if (w, h) != image.dimensions() {
            return Err(Error::file(
                &label_path,
                format!(
                    "label is {w}x{h}, image is {}x{}",
                    image.width(),
                    image.height()
                ),
            ));
        }
        let saliency = match &self.saliency_dir {
            Some(d) => {
                let p = self.root.join(d).join(format!("{id}.png"));
                let m = image::open(&p).map_err(|e| Error::file(&p, e))?.to_luma8();
                if m.dimensions() != (w, h) {
                    return Err(Error::file(
                        &p,
                        format!("mask is {}x{}, image is {w}x{h}", m.width(), m.height()),
                    ));
                }
                Some(
                    m.into_raw()
                        .into_iter()
                        .map(|v| u8::from(v >= 128))
                        .collect(),
                )
            }
            None => None,
        };
        Ok(Item {
            id: id.clone(),
            image,
            label,
            saliency,
        })
    }
}
