//! The `data` and `augment` sections of an experiment file: where the images come
//! from, the batch, the crops and the augmentation of the training views.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::synthetic::Style;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCfg {
    pub source: DataSource,
    pub batch_size: usize,
    /// Side of the square training crops (and of evaluation images).
    pub image_size: usize,
    /// Keep training images whose saliency covers this fraction range (MaskContrast: 1%..99%).
    #[serde(default = "default_saliency_range")]
    pub saliency_range: [f64; 2],
    /// An unlabelled target domain (domain adaptation), with the source's classes,
    /// batch and image size: adapting methods draw its training images without
    /// labels, and evaluation scores its validation split. Omitted: one domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<DataSource>,
}

fn default_saliency_range() -> [f64; 2] {
    [0.01, 0.99]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The built-in textured-shapes dataset, generated from `seed`.
    Synthetic {
        train: usize,
        val: usize,
        /// Side of the generated images.
        size: usize,
        #[serde(default = "default_max_objects")]
        max_objects: usize,
        /// Texture strength: 1 bold, towards 0 nearly flat.
        #[serde(default = "full_contrast")]
        texture_contrast: f64,
        /// Each class draws its texture from its own pattern family (colour stays
        /// independent of the class).
        #[serde(default)]
        class_textures: bool,
        #[serde(default = "default_style")]
        style: Style,
        #[serde(default)]
        seed: u64,
    },
    /// The built-in garments: Fashion-MNIST garments (t_shirt, trouser, sandal, bag,
    /// ankle_boot unless `classes` says otherwise) composited onto generated
    /// backgrounds, generated from `seed`; validation images show garments that
    /// training images never do.
    Garments {
        train: usize,
        val: usize,
        /// The Fashion-MNIST classes drawn, by name, as classes 1.. in this order.
        #[serde(default = "crate::data::fashion_mnist::default_classes")]
        classes: Vec<String>,
        /// Side of the generated images.
        size: usize,
        #[serde(default = "default_max_objects")]
        max_objects: usize,
        /// Range of a garment's box side as a fraction of the image side.
        #[serde(default = "default_object_scale")]
        object_scale: [f64; 2],
        /// Contrast of the texture painted on each garment: 1 bold, 0 plain colour (the
        /// garment's own shading only).
        #[serde(default = "full_contrast")]
        garment_texture: f64,
        /// Contrast of the background's texture: 1 bold, 0 plain colour (then nothing
        /// but its colour tells one image's background from another's).
        #[serde(default = "full_contrast")]
        background_texture: f64,
        #[serde(default = "default_style")]
        style: Style,
        #[serde(default)]
        seed: u64,
    },
    /// A folder in the PASCAL VOC layout.
    Voc {
        root: PathBuf,
        #[serde(default = "default_train_split")]
        train_split: String,
        #[serde(default = "default_val_split")]
        val_split: String,
        /// Folder of 0/255 saliency masks under root.
        saliency_dir: Option<String>,
        /// Number of classes including background (VOC: 21).
        num_classes: usize,
    },
}

fn default_max_objects() -> usize {
    1
}
fn default_object_scale() -> [f64; 2] {
    [0.5, 0.8]
}
fn full_contrast() -> f64 {
    1.0
}
fn default_style() -> Style {
    Style::A
}
fn default_train_split() -> String {
    "train".into()
}
fn default_val_split() -> String {
    "val".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentCfg {
    /// RandomResizedCrop area fraction range.
    pub crop_scale: [f64; 2],
    /// Centre each random crop on a random salient pixel (as far as the image allows),
    /// so that the views of an image do not agree on where its object is.
    pub crop_around_salient: bool,
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// RandomRotation: angle uniform in +-rotation degrees (0: off); corners that
    /// come from outside the view are black and ignored by the losses.
    pub rotation: f64,
    pub color_jitter: ColorJitterCfg,
    /// Probability of converting to grayscale.
    pub grayscale: f64,
    /// Gaussian blur after the colour changes (MoCo v2, SimCLR); off by default.
    pub blur: BlurCfg,
}

impl Default for AugmentCfg {
    fn default() -> Self {
        AugmentCfg {
            crop_scale: [0.2, 1.0],
            crop_around_salient: false,
            hflip: 0.5,
            rotation: 0.0,
            color_jitter: ColorJitterCfg::default(),
            grayscale: 0.2,
            blur: BlurCfg::default(),
        }
    }
}

/// torchvision's GaussianBlur applied with probability `p`, sigma drawn uniformly.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlurCfg {
    pub p: f64,
    /// Range of the standard deviation in pixels of the augmented view.
    #[serde(default = "default_blur_sigma")]
    pub sigma: [f64; 2],
}

impl Default for BlurCfg {
    fn default() -> Self {
        BlurCfg {
            p: 0.0,
            sigma: default_blur_sigma(),
        }
    }
}

fn default_blur_sigma() -> [f64; 2] {
    [0.1, 2.0]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColorJitterCfg {
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub hue: f64,
    /// Probability of applying the jitter.
    pub p: f64,
}

impl Default for ColorJitterCfg {
    fn default() -> Self {
        ColorJitterCfg {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1,
            p: 0.8,
        }
    }
}
