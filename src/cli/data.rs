//! `wgseg data synth --out DIR`: the built-in dataset in the VOC layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::data::export::write_synthetic;
use crate::data::synthetic::{Style, SynthSpec};
use crate::error::Result;
use crate::experiment::progress::bar;

#[derive(Args)]
pub struct DataCli {
    #[command(subcommand)]
    action: DataAction,
}

#[derive(Subcommand)]
enum DataAction {
    /// Write the synthetic shapes dataset (JPEGImages, SegmentationClass, saliency, ImageSets).
    Synth {
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
        /// Texture strength: 1 bold, towards 0 nearly flat.
        #[arg(long, default_value_t = 1.0)]
        texture_contrast: f32,
        /// Each class draws its texture from its own pattern family (circle stripes,
        /// square checkerboard, triangle dots, cross noise); colour stays random.
        #[arg(long)]
        class_textures: bool,
        /// a (saturated, clean) or b (muted, noisy, blurred: the other domain).
        #[arg(long, default_value = "a")]
        style: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

pub fn run(a: DataCli) -> Result<ExitCode> {
    let DataAction::Synth {
        out,
        train,
        val,
        size,
        max_objects,
        texture_contrast,
        class_textures,
        style,
        seed,
    } = a.action;
    let style = match style.as_str() {
        "a" => Style::A,
        "b" => Style::B,
        other => {
            return Err(crate::error::Error::Usage(format!(
                "wgseg data synth: --style {other:?} is not a or b"
            )))
        }
    };
    if size < 8 || train + val == 0 || max_objects == 0 {
        return Err(crate::error::Error::Usage(
            "wgseg data synth: need --size >= 8, some images and --max-objects >= 1".into(),
        ));
    }
    let spec = SynthSpec {
        size,
        style,
        seed,
        max_objects,
        texture_contrast,
        class_textures,
    };
    let pb = bar((train + val) as u64, "synth");
    write_synthetic(&out, &spec, train, val, &mut || pb.inc(1))?;
    pb.finish_and_clear();
    println!("wrote {} images to {}", train + val, out.display());
    Ok(ExitCode::SUCCESS)
}
