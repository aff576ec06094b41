//! Datasets as an experiment opens them: the built-in sets (shapes, garments)
//! generated into memory, or a VOC-layout folder read image by image; all filtered by
//! saliency coverage.

use std::path::Path;

use super::fashion_mnist::labels_of;
use super::garments::{self, GarmentSet, GarmentSpec};
use super::synthetic::{generate, Sample, SynthSpec, CLASSES};
use super::voc::{Item, VocDataset, IGNORE, VOC_CLASSES};
use crate::data::config::{DataCfg, DataSource};
use crate::error::{Error, Result};

enum Storage {
    Memory(Vec<Item>),
    Folder(VocDataset, Vec<usize>),
}

/// One split of a dataset.
pub struct Dataset {
    storage: Storage,
    pub class_names: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Memory(items) => items.len(),
            Storage::Folder(_, keep) => keep.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Item `i` (cloned from memory, or read from disk).
    pub fn get(&self, i: usize) -> Result<Item> {
        match &self.storage {
            Storage::Memory(items) => {
                let it = &items[i];
                Ok(Item {
                    id: it.id.clone(),
                    image: it.image.clone(),
                    label: it.label.clone(),
                    saliency: it.saliency.clone(),
                })
            }
            Storage::Folder(voc, keep) => voc.get(keep[i]),
        }
    }
}

/// The class names of a data source, background first.
pub fn class_names(source: &DataSource) -> Vec<String> {
    match source {
        DataSource::Synthetic { .. } => CLASSES.iter().map(|s| s.to_string()).collect(),
        DataSource::Garments { classes, .. } => garments::class_names(classes),
        DataSource::Voc { num_classes, .. } if *num_classes == VOC_CLASSES.len() => {
            VOC_CLASSES.iter().map(|s| s.to_string()).collect()
        }
        DataSource::Voc { num_classes, .. } => {
            (0..*num_classes).map(|c| format!("class {c}")).collect()
        }
    }
}

fn coverage(saliency: &[u8]) -> f64 {
    saliency.iter().filter(|&&m| m != 0).count() as f64 / saliency.len().max(1) as f64
}

/// Opens the train and val splits of `data.source`; `tick` is called per generated
/// or checked image. Training images whose saliency covers less or more than
/// `saliency_range` are dropped (MaskContrast keeps 1%..99%); validation keeps
/// everything.
pub fn open(cfg: &DataCfg, tick: &mut dyn FnMut()) -> Result<(Dataset, Dataset)> {
    open_source(&cfg.source, cfg.saliency_range, tick)
}

/// Opens the train and val splits of `data.target` as [`open`] does the source's,
/// or `None` without a target domain.
pub fn open_target(cfg: &DataCfg, tick: &mut dyn FnMut()) -> Result<Option<(Dataset, Dataset)>> {
    cfg.target
        .as_ref()
        .map(|t| open_source(t, cfg.saliency_range, tick))
        .transpose()
}

fn open_source(
    source: &DataSource,
    saliency_range: [f64; 2],
    tick: &mut dyn FnMut(),
) -> Result<(Dataset, Dataset)> {
    let [lo, hi] = saliency_range;
    match source {
        DataSource::Synthetic {
            train,
            val,
            size,
            max_objects,
            texture_contrast,
            class_textures,
            style,
            seed,
        } => {
            let spec = SynthSpec {
                size: *size,
                style: *style,
                seed: *seed,
                max_objects: *max_objects,
                texture_contrast: *texture_contrast as f32,
                class_textures: *class_textures,
            };
            generated(source, *train, *val, saliency_range, tick, |i| {
                generate(&spec, i)
            })
        }
        DataSource::Garments {
            train,
            val,
            classes,
            size,
            max_objects,
            object_scale,
            garment_texture,
            background_texture,
            style,
            seed,
        } => {
            let spec = GarmentSpec {
                size: *size,
                style: *style,
                seed: *seed,
                max_objects: *max_objects,
                object_scale: object_scale.map(|v| v as f32),
                garment_texture: *garment_texture as f32,
                background_texture: *background_texture as f32,
            };
            let labels = labels_of(classes, "data.source.classes")?;
            let set = GarmentSet::open(spec, *train, &labels)?;
            generated(source, *train, *val, saliency_range, tick, |i| {
                set.sample(i)
            })
        }
        DataSource::Voc {
            root,
            train_split,
            val_split,
            saliency_dir,
            num_classes,
        } => {
            let train = VocDataset::open(root, train_split, saliency_dir.as_deref())?;
            let val = VocDataset::open(root, val_split, saliency_dir.as_deref())?;
            // Every file a run will read is decoded now, before a run folder exists: a
            // truncated image or a label the classes do not cover fails here, named.
            for i in 0..val.len() {
                check_labels(root, &val.get(i)?, *num_classes)?;
                tick();
            }
            let mut keep = Vec::new();
            for i in 0..train.len() {
                let item = train.get(i)?;
                check_labels(root, &item, *num_classes)?;
                tick();
                let ok = item
                    .saliency
                    .as_deref()
                    .is_none_or(|s| (lo..=hi).contains(&coverage(s)));
                if ok {
                    keep.push(i);
                }
            }
            if keep.is_empty() {
                return Err(Error::file(
                    root,
                    format!("no training image has saliency in {lo}..{hi}"),
                ));
            }
            let names = class_names(source);
            let all_val = (0..val.len()).collect();
            Ok((
                Dataset {
                    storage: Storage::Folder(train, keep),
                    class_names: names.clone(),
                },
                Dataset {
                    storage: Storage::Folder(val, all_val),
                    class_names: names,
                },
            ))
        }
    }
}

/// Refuses a mask of `item` (from the VOC folder `root`) with a label that is neither
/// a class below `num_classes` nor the ignore label.
fn check_labels(root: &Path, item: &Item, num_classes: usize) -> Result<()> {
    let bad = item
        .label
        .iter()
        .position(|&l| l != IGNORE && usize::from(l) >= num_classes);
    match bad {
        Some(i) => Err(Error::file(
            root.join("SegmentationClass").join(format!("{}.png", item.id)),
            format!(
                "label {} at pixel {i} is neither a class (num_classes {num_classes}) nor 255 (ignore)",
                item.label[i]
            ),
        )),
        None => Ok(()),
    }
}

/// The splits of a generated source: samples 0..train (those whose saliency lies in
/// `saliency_range`) and train..train + val (all), each from `sample`.
fn generated(
    source: &DataSource,
    train: usize,
    val: usize,
    saliency_range: [f64; 2],
    tick: &mut dyn FnMut(),
    sample: impl Fn(u64) -> Sample,
) -> Result<(Dataset, Dataset)> {
    let [lo, hi] = saliency_range;
    let mut make = |range: std::ops::Range<usize>, filter: bool| {
        let mut items = Vec::new();
        for i in range {
            let s = sample(i as u64);
            tick();
            let c = coverage(&s.saliency);
            if filter && !(lo..=hi).contains(&c) {
                continue;
            }
            items.push(Item {
                id: format!("{i:06}"),
                image: s.image,
                label: s.label,
                saliency: Some(s.saliency),
            });
        }
        items
    };
    let train_items = make(0..train, true);
    let val_items = make(train..train + val, false);
    if train_items.is_empty() {
        return Err(Error::Usage(format!(
            "data: no built-in training image has saliency in {lo}..{hi}"
        )));
    }
    let names = class_names(source);
    Ok((
        Dataset {
            storage: Storage::Memory(train_items),
            class_names: names.clone(),
        },
        Dataset {
            storage: Storage::Memory(val_items),
            class_names: names,
        },
    ))
}
