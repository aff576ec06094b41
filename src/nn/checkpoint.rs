//! Checkpoints: every parameter and buffer of a module as safetensors under PyTorch
//! state_dict names, written atomically (temporary file, then rename).

use std::collections::HashMap;
use std::path::Path;

use super::module::{state_dict, Module, State};
use crate::error::{Error, Result};
use crate::io::{self, HostData};
use crate::tensor::{shape_str, Tensor};

/// Writes a module's state to `path`.
pub fn save(m: &dyn Module, path: &Path) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = state_dict(m)
        .into_iter()
        .map(|(n, s)| (n, s.tensor()))
        .collect();
    io::write(path, &tensors)
}

/// Loads a module's state from `path`. Every parameter and buffer must be present
/// with its shape (an error names the first that is not). Tensors the module does not
/// have are an error when `strict`, else returned (e.g. a classifier head when only
/// the backbone is wanted). PyTorch's `num_batches_tracked` counters are skipped.
pub fn load(m: &dyn Module, path: &Path, strict: bool) -> Result<Vec<String>> {
    let mut file: HashMap<String, (Vec<usize>, HostData)> = io::read_host(path)?
        .into_iter()
        .filter(|(n, _, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, s, d)| (n, (s, d)))
        .collect();
    for (name, state) in state_dict(m) {
        let (shape, data) = file
            .remove(&name)
            .ok_or_else(|| Error::file(path, format!("checkpoint has no tensor {name}")))?;
        let current = state.tensor();
        let shape = if shape.is_empty() { vec![1] } else { shape };
        if shape != current.shape() {
            return Err(Error::file(
                path,
                format!(
                    "tensor {name} has shape {}, the model expects {}",
                    shape_str(&shape),
                    shape_str(current.shape())
                ),
            ));
        }
        let HostData::F32(values) = data else {
            return Err(Error::file(
                path,
                format!("tensor {name} is not floating point"),
            ));
        };
        match state {
            State::Param(v) => v.set_value(Tensor::from_slice(current.gpu(), &values, &shape)?)?,
            State::Buffer(t) => t.write(&values)?,
        }
    }
    let mut unused: Vec<String> = file.into_keys().collect();
    unused.sort();
    if strict && !unused.is_empty() {
        return Err(Error::file(
            path,
            format!(
                "tensor {} is not part of the model (and {} more)",
                unused[0],
                unused.len() - 1
            ),
        ));
    }
    Ok(unused)
}
