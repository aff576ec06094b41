//! `wgseg infer`: class maps for new images from a trained run. A method with a
//! classifier predicts the argmax of its class logits. Otherwise pixels the saliency
//! head calls salient form the image's mask; its prototype (mean embedding) takes the
//! class of the nearest class centroid the run's evaluation left in
//! clusters.safetensors; the rest is background.

use std::path::{Path, PathBuf};

use super::evaluate::CENTROIDS;
use super::loaded_run::{load_run, LoadedRun};
use crate::autograd::no_grad;
use crate::autograd::Var;
use crate::data::augment::{normalise_into, Geometry};
use crate::data::dataset::class_names;
use crate::error::{Error, Result};
use crate::eval::supervised::argmax_channels;
use crate::io::{read_host, HostData};
use crate::nn::module::Module;
use crate::report::visual::{resize_labels, save_prediction};
use crate::tensor::Tensor;

/// The images to run on: one file, or every .png/.jpg/.jpeg of a folder (sorted).
fn inputs(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::file(path, e))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::file(path, "no .png or .jpg images"));
    }
    Ok(files)
}

/// The class centroids [classes, dim] a K-means evaluation left in the run folder.
struct Centroids {
    classes: usize,
    dim: usize,
    values: Vec<f32>,
}

fn read_centroids(run_dir: &Path) -> Result<Centroids> {
    let path = run_dir.join(CENTROIDS);
    match read_host(&path)?.into_iter().next() {
        Some((_, shape, HostData::F32(values))) if shape.len() == 2 => Ok(Centroids {
            classes: shape[0],
            dim: shape[1],
            values,
        }),
        _ => Err(Error::file(&path, "expected one f32 [classes, dim] tensor")),
    }
}

/// The class map of one image [1, 3, S, S]: salient pixels take the class of the
/// nearest centroid to their mean embedding, the rest is background.
fn by_centroids(run: &LoadedRun, c: &Centroids, x: &Var, run_dir: &Path) -> Result<Vec<u8>> {
    let (emb, sal) = no_grad(|| -> Result<(Vec<f32>, Vec<f32>)> {
        let (emb, sal) = run.method.embed_and_saliency(x)?;
        Ok((emb.value().to_vec()?, sal.value().to_vec()?))
    })?;
    let hw = sal.len();
    let dim = c.dim;
    if emb.len() != dim * hw {
        return Err(Error::file(
            run_dir.join(CENTROIDS),
            format!(
                "centroids have {dim} dims, the model's embedding {}",
                emb.len() / hw
            ),
        ));
    }
    let salient: Vec<bool> = sal.iter().map(|&l| l > 0.0).collect();
    let mut proto = vec![0f32; dim];
    for (p, _) in salient.iter().enumerate().filter(|(_, &s)| s) {
        for d in 0..dim {
            proto[d] += emb[d * hw + p];
        }
    }
    let class = (1..c.classes)
        .max_by(|&a, &b| {
            let dot = |k: usize| {
                (0..dim)
                    .map(|d| proto[d] * c.values[k * dim + d])
                    .sum::<f32>()
            };
            dot(a).total_cmp(&dot(b))
        })
        .unwrap_or(0) as u8;
    Ok(salient.iter().map(|&s| if s { class } else { 0 }).collect())
}

/// How a run turns an image into classes.
enum Predictor<'a> {
    /// The argmax of a classifier's logits.
    Classes(&'a dyn Module),
    Centroids(Centroids),
}

/// Writes `<stem>.png` (input | overlay | prediction | legend, at the input's size and
/// aspect) for every image.
pub fn infer(run_dir: &Path, input: &Path, out: &Path) -> Result<usize> {
    let run = load_run(run_dir)?;
    let predictor = match run.method.classifier() {
        Some(net) => Predictor::Classes(net),
        None => Predictor::Centroids(read_centroids(run_dir)?),
    };
    let names = class_names(&run.exp.data.source);
    let files = inputs(input)?;
    // Every input's header is read before the output folder exists, so a bad input
    // leaves nothing behind.
    for file in &files {
        image::image_dimensions(file).map_err(|e| Error::file(file, e))?;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))?;
    let size = run.exp.data.image_size;
    for file in &files {
        let img = image::open(file)
            .map_err(|e| Error::file(file, e))?
            .to_rgb8();
        let view = Geometry::full(img.width(), img.height()).apply_image(&img, size as u32);
        let mut pixels = Vec::new();
        normalise_into(&view, &mut pixels);
        let x = Var::constant(Tensor::from_slice(&run.gpu, &pixels, &[1, 3, size, size])?);
        let pred: Vec<u8> = match &predictor {
            Predictor::Classes(net) => argmax_channels(&no_grad(|| net.forward(&x))?.value())?
                .into_iter()
                .map(|c| c as u8)
                .collect(),
            Predictor::Centroids(c) => by_centroids(&run, c, &x, run_dir)?,
        };
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        // Shown at the input's own size and aspect: the prediction is resized back.
        let (w, h) = img.dimensions();
        let pred = resize_labels(&pred, size as u32, size as u32, w, h)?;
        save_prediction(&out.join(format!("{stem}.png")), &img, &pred, &names)?;
    }
    Ok(files.len())
}
