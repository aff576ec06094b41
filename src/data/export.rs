//! `wgseg data synth`: writes the built-in dataset in the VOC layout so it can be
//! inspected, shared, or read back like any other dataset.

use std::path::Path;

use super::synthetic::{generate, SynthSpec};
use super::voc::write_indices;
use crate::error::{Error, Result};

/// Folder (under the dataset root) holding the saliency masks.
pub const SALIENCY_DIR: &str = "saliency";

/// Writes `train` + `val` samples of `spec` under `root`; `tick` is called per image.
pub fn write_synthetic(
    root: &Path,
    spec: &SynthSpec,
    train: usize,
    val: usize,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    let dirs = [
        "JPEGImages",
        "SegmentationClass",
        SALIENCY_DIR,
        "ImageSets/Segmentation",
    ];
    for d in dirs {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(|e| Error::file(&p, e))?;
    }
    let mut lists = [(String::new(), "train"), (String::new(), "val")];
    for i in 0..train + val {
        let id = format!("{i:06}");
        let s = generate(spec, i as u64);
        let (w, h) = s.image.dimensions();
        let img = root.join("JPEGImages").join(format!("{id}.jpg"));
        let file = std::fs::File::create(&img).map_err(|e| Error::file(&img, e))?;
        image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 95)
            .encode_image(&s.image)
            .map_err(|e| Error::file(&img, e))?;
        write_indices(
            &root.join("SegmentationClass").join(format!("{id}.png")),
            w,
            h,
            &s.label,
        )?;
        let mask = image::GrayImage::from_raw(w, h, s.saliency.iter().map(|&m| m * 255).collect())
            .ok_or_else(|| Error::file(root, "saliency size"))?;
        let mp = root.join(SALIENCY_DIR).join(format!("{id}.png"));
        mask.save(&mp).map_err(|e| Error::file(&mp, e))?;
        let list = if i < train {
            &mut lists[0].0
        } else {
            &mut lists[1].0
        };
        list.push_str(&id);
        list.push('\n');
        tick();
    }
    for (text, split) in lists {
        let p = root
            .join("ImageSets/Segmentation")
            .join(format!("{split}.txt"));
        std::fs::write(&p, text).map_err(|e| Error::file(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Style;
    use crate::data::voc::VocDataset;

    #[test]
    fn synthetic_round_trips_through_the_voc_layout() {
        let root = std::env::temp_dir().join(format!("wgseg_synth_{}", std::process::id()));
        let spec = SynthSpec {
            size: 32,
            style: Style::A,
            seed: 9,
            max_objects: 2,
            texture_contrast: 1.0,
            class_textures: true,
        };
        write_synthetic(&root, &spec, 3, 2, &mut || {}).unwrap();
        let train = VocDataset::open(&root, "train", Some(SALIENCY_DIR)).unwrap();
        let val = VocDataset::open(&root, "val", Some(SALIENCY_DIR)).unwrap();
        assert_eq!((train.len(), val.len()), (3, 2));
        let item = val.get(1).unwrap();
        let original = generate(&spec, 4);
        assert_eq!(item.label, original.label);
        assert_eq!(item.saliency.unwrap(), original.saliency);
        assert_eq!(item.image.dimensions(), (32, 32));
        std::fs::remove_file(root.join("SegmentationClass/000001.png")).unwrap();
        let e = train.get(1).err().unwrap().to_string();
        assert!(e.contains("000001.png"), "{e}");
        let e = VocDataset::open(&root, "test", None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("test.txt"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
