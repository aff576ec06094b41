//! `wgseg data synth` and `wgseg data garments`: write a built-in dataset in the VOC
//! layout so it can be inspected, shared, or read back like any other dataset.

use std::path::Path;

use super::synthetic::Sample;
use super::voc::write_indices;
use crate::error::{Error, Result};

/// Folder (under the dataset root) holding the saliency masks.
pub const SALIENCY_DIR: &str = "saliency";

/// Writes samples 0..train (the train split) and train..train + val (val) of
/// `sample` under `root`; `tick` is called per image.
pub fn write_generated(
    root: &Path,
    train: usize,
    val: usize,
    sample: impl Fn(u64) -> Sample,
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
        let s = sample(i as u64);
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
    use crate::data::fashion_mnist::{Garments, Split};
    use crate::data::garments::{self, GarmentSet, GarmentSpec};
    use crate::data::synthetic::{generate, Style, SynthSpec};
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
        write_generated(&root, 3, 2, |i| generate(&spec, i), &mut || {}).unwrap();
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

    #[test]
    fn garments_export_with_validation_garments_after_the_training_ones() {
        let root = std::env::temp_dir().join(format!("wgseg_garments_{}", std::process::id()));
        let spec = GarmentSpec {
            size: 48,
            style: Style::B,
            seed: 2,
            max_objects: 2,
            object_scale: [0.5, 0.8],
            garment_texture: 1.0,
            background_texture: 1.0,
        };
        let labels = [0, 1, 5, 8, 9];
        let set = GarmentSet::open(spec, 3, &labels).unwrap();
        write_generated(&root, 3, 2, |i| set.sample(i), &mut || {}).unwrap();
        let val = VocDataset::open(&root, "val", Some(SALIENCY_DIR)).unwrap();
        assert_eq!(val.len(), 2);
        let item = val.get(0).unwrap();
        let val_pool = Garments::open(Split::Val, &labels).unwrap();
        let original = garments::generate(&spec, &val_pool, 3);
        assert_eq!(item.label, original.label);
        assert_eq!(item.saliency.unwrap(), original.saliency);
        assert_eq!(item.image.dimensions(), (48, 48));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
