//! `wgseg data synth|garments --out DIR`: a built-in dataset in the VOC layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::data::export::write_generated;
use crate::data::fashion_mnist::{default_classes, labels_of};
use crate::data::garments::{GarmentSet, GarmentSpec};
use crate::data::synthetic::{generate, Style, SynthSpec};
use crate::error::{Error, Result};
use crate::experiment::progress::bar;

#[derive(Args)]
pub struct DataCli {
    #[command(subcommand)]
    action: DataAction,
}

/// What every built-in dataset takes.
#[derive(Args)]
struct Common {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 512)]
    train: usize,
    #[arg(long, default_value_t = 96)]
    val: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    max_objects: usize,
    /// a (saturated, clean) or b (muted, noisy, blurred: the other domain).
    #[arg(long, default_value = "a")]
    style: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Subcommand)]
enum DataAction {
    /// Write the synthetic shapes dataset (JPEGImages, SegmentationClass, saliency, ImageSets).
    Synth {
        #[command(flatten)]
        common: Common,
        /// Texture strength: 1 bold, towards 0 nearly flat.
        #[arg(long, default_value_t = 1.0)]
        texture_contrast: f32,
        /// Each class draws its texture from its own pattern family (circle stripes,
        /// square checkerboard, triangle dots, cross noise); colour stays random.
        #[arg(long)]
        class_textures: bool,
    },
    /// Write the garments dataset: Fashion-MNIST garments on generated backgrounds.
    Garments {
        #[command(flatten)]
        common: Common,
        /// Smallest and largest garment box side, as fractions of the image side.
        #[arg(long, num_args = 2, value_names = ["LOW", "HIGH"], default_values_t = [0.5, 0.8])]
        object_scale: Vec<f32>,
        /// Contrast of the texture on each garment: 1 bold, 0 plain colour.
        #[arg(long, default_value_t = 1.0)]
        garment_texture: f32,
        /// Contrast of the background's texture: 1 bold, 0 plain colour.
        #[arg(long, default_value_t = 1.0)]
        background_texture: f32,
        /// Fashion-MNIST classes drawn, as classes 1.. in this order (t_shirt, trouser,
        /// pullover, dress, coat, sandal, shirt, sneaker, bag, ankle_boot).
        #[arg(long, value_delimiter = ',', default_values_t = default_classes())]
        classes: Vec<String>,
    },
}

/// Largest side `wgseg data` generates: the images are drawn in memory one at a time.
const MAX_SIDE: usize = 4096;

impl Common {
    fn style(&self, command: &str) -> Result<Style> {
        match self.style.as_str() {
            "a" => Ok(Style::A),
            "b" => Ok(Style::B),
            other => Err(Error::Usage(format!(
                "wgseg data {command}: --style {other:?} is not a or b"
            ))),
        }
    }

    fn check(&self, command: &str) -> Result<()> {
        if !(8..=MAX_SIDE).contains(&self.size)
            || self.train + self.val == 0
            || self.max_objects == 0
        {
            return Err(Error::Usage(format!(
                "wgseg data {command}: need --size in 8..={MAX_SIDE}, some images and --max-objects >= 1"
            )));
        }
        Ok(())
    }

    fn write(&self, sample: impl Fn(u64) -> crate::data::synthetic::Sample) -> Result<ExitCode> {
        let pb = bar((self.train + self.val) as u64, "data");
        write_generated(&self.out, self.train, self.val, sample, &mut || pb.inc(1))?;
        pb.finish_and_clear();
        println!(
            "wrote {} images to {}",
            self.train + self.val,
            self.out.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

pub fn run(a: DataCli) -> Result<ExitCode> {
    match a.action {
        DataAction::Synth {
            common,
            texture_contrast,
            class_textures,
        } => {
            common.check("synth")?;
            if !(0.0..=1.0).contains(&texture_contrast) {
                return Err(Error::Usage(format!(
                    "wgseg data synth: --texture-contrast {texture_contrast} must lie in [0, 1]"
                )));
            }
            let spec = SynthSpec {
                size: common.size,
                style: common.style("synth")?,
                seed: common.seed,
                max_objects: common.max_objects,
                texture_contrast,
                class_textures,
            };
            common.write(|i| generate(&spec, i))
        }
        DataAction::Garments {
            common,
            object_scale,
            garment_texture,
            background_texture,
            classes,
        } => {
            common.check("garments")?;
            let labels = labels_of(&classes, "wgseg data garments: --classes")?;
            let (lo, hi) = (object_scale[0], object_scale[1]);
            if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
                return Err(Error::Usage(format!(
                    "wgseg data garments: --object-scale {lo} {hi} must satisfy 0 < low <= high <= 1"
                )));
            }
            let spec = GarmentSpec {
                size: common.size,
                style: common.style("garments")?,
                seed: common.seed,
                max_objects: common.max_objects,
                object_scale: [lo, hi],
                garment_texture,
                background_texture,
            };
            let set = GarmentSet::open(spec, common.train, &labels)?;
            common.write(|i| set.sample(i))
        }
    }
}
