//! `wgseg train --dry-run`: what a run would train, on what, for how long, and the
//! GPU memory one step takes, without training.

use super::config::Experiment;
use super::datasets::Sets;
use super::stages::Stage;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::method::Method;
use crate::nn::module::parameters;
use crate::nn::seg_model::BackboneKind;

pub fn print_plan(
    gpu: &Gpu,
    exp: &Experiment,
    plan: &[Stage],
    method: &mut dyn Method,
    sets: &Sets,
) -> Result<()> {
    let params: usize = parameters(method.model())
        .iter()
        .map(|(_, p)| p.value().numel())
        .sum();
    let before = gpu.pool_stats().bytes_held;
    // One step measures the memory a step needs; its update is thrown away with the method.
    method.step(&sets.train_sets(), 0, 1.0)?;
    gpu.sync()?;
    let held = gpu.pool_stats().bytes_held.max(before);
    println!("experiment      {}", exp.name);
    println!("adapter         {} ({:?})", gpu.info.name, gpu.info.backend);
    println!(
        "data            {} training images (after the saliency filter), {} validation",
        sets.train.len(),
        sets.val.len()
    );
    if let Some((train, val)) = &sets.target {
        println!(
            "target domain   {} training images (unlabelled), {} validation (evaluated)",
            train.len(),
            val.len()
        );
    }
    let backbone = match exp.model.backbone {
        BackboneKind::Resnet => format!("ResNet-{}", exp.model.depth),
        BackboneKind::MobilenetV2 => "MobileNetV2".to_string(),
    };
    println!(
        "model           {backbone} width {} output stride {}, {params} parameters",
        exp.model.width, exp.model.output_stride
    );
    println!(
        "steps           {} of batch {} at {}x{}",
        exp.schedule.iters, exp.data.batch_size, exp.data.image_size, exp.data.image_size
    );
    for s in plan {
        if let Some(name) = &s.name {
            println!("stage           {name}: steps {}..{}", s.start + 1, s.end);
        }
    }
    println!(
        "GPU memory      ~{:.1} MiB (measured over one step)",
        held as f64 / (1 << 20) as f64
    );
    Ok(())
}
