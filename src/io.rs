//! Tensor files: safetensors read into GPU tensors and written from them.
//! f32 stays f32; integer label tensors (u8/i32/i64/u32, as PyTorch saves them)
//! become u32 with a range check; f64/f16/bf16 are converted to f32.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};

/// A host copy of one named tensor.
pub enum HostData {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

impl HostData {
    /// The first element that is NaN or infinite, with its index (never for labels).
    pub fn first_nonfinite(&self) -> Option<(usize, f32)> {
        match self {
            HostData::F32(v) => v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i])),
            HostData::U32(_) => None,
        }
    }
}

/// A tensor as a safetensors file holds it: name, shape, values on the host.
pub type FileTensor = (String, Vec<usize>, HostData);

fn convert(path: &Path, name: &str, view: &TensorView) -> Result<HostData> {
    let bytes = view.data();
    let ints = |vals: Vec<i64>| -> Result<HostData> {
        vals.iter()
            .map(|&v| {
                u32::try_from(v).map_err(|_| {
                    Error::file(
                        path,
                        format!("tensor {name}: value {v} does not fit an unsigned 32-bit label"),
                    )
                })
            })
            .collect::<Result<Vec<u32>>>()
            .map(HostData::U32)
    };
    match view.dtype() {
        Dtype::F32 => Ok(HostData::F32(bytemuck::pod_collect_to_vec(bytes))),
        Dtype::F64 => {
            let v: Vec<f64> = bytemuck::pod_collect_to_vec(bytes);
            Ok(HostData::F32(v.into_iter().map(|x| x as f32).collect()))
        }
        Dtype::F16 => {
            let v: Vec<u16> = bytemuck::pod_collect_to_vec(bytes);
            Ok(HostData::F32(
                v.into_iter()
                    .map(|x| half::f16::from_bits(x).to_f32())
                    .collect(),
            ))
        }
        Dtype::BF16 => {
            let v: Vec<u16> = bytemuck::pod_collect_to_vec(bytes);
            Ok(HostData::F32(
                v.into_iter()
                    .map(|x| half::bf16::from_bits(x).to_f32())
                    .collect(),
            ))
        }
        Dtype::U32 => Ok(HostData::U32(bytemuck::pod_collect_to_vec(bytes))),
        Dtype::U8 => Ok(HostData::U32(bytes.iter().map(|&b| b as u32).collect())),
        Dtype::I32 => ints(
            bytemuck::pod_collect_to_vec::<u8, i32>(bytes)
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        Dtype::I64 => ints(bytemuck::pod_collect_to_vec(bytes)),
        other => Err(Error::file(
            path,
            format!("tensor {name}: unsupported dtype {other:?}"),
        )),
    }
}

/// Reads every tensor of a safetensors file to the host, in file order.
pub fn read_host(path: &Path) -> Result<Vec<FileTensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.iter() {
        let data = convert(path, name, &view)?;
        // relu and max would hide a NaN weight downstream; refuse it where it enters.
        if let Some((i, v)) = data.first_nonfinite() {
            return Err(Error::file(
                path,
                format!("tensor {name}: element {i} is {v}, not a finite number"),
            ));
        }
        out.push((name.to_string(), view.shape().to_vec(), data));
    }
    Ok(out)
}

/// The string metadata of a safetensors file's header (empty when it has none).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// The dtype each tensor of a safetensors file is stored as, lower case (`i64`), by
/// name: what an error names when a converted tensor is the wrong kind.
pub fn file_dtypes(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    Ok(st
        .iter()
        .map(|(n, v)| (n.to_string(), format!("{:?}", v.dtype()).to_lowercase()))
        .collect())
}

/// Reads every tensor of a safetensors file onto the GPU.
pub fn read(gpu: &Gpu, path: &Path) -> Result<Vec<(String, Tensor)>> {
    read_host(path)?
        .into_iter()
        .map(|(name, shape, data)| {
            let shape = if shape.is_empty() { vec![1] } else { shape };
            let t = match data {
                HostData::F32(v) => Tensor::from_slice(gpu, &v, &shape),
                HostData::U32(v) => Tensor::from_u32(gpu, &v, &shape),
            }
            .map_err(|e| Error::file(path, format!("tensor {name}: {e}")))?;
            Ok((name, t))
        })
        .collect()
}

/// Writes tensors to a safetensors file atomically (temporary file, then rename).
pub fn write(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    write_with_metadata(path, tensors, None)
}

/// Like [`write`], with string metadata in the file header (e.g. a checkpoint's step).
pub fn write_with_metadata(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    write_host(path, &to_host(tensors)?, metadata)
}

/// Reads GPU tensors back to the host, once each.
pub fn to_host(tensors: &[(String, Tensor)]) -> Result<Vec<FileTensor>> {
    tensors
        .iter()
        .map(|(name, t)| {
            let data = match t.dtype() {
                DType::F32 => HostData::F32(t.to_vec()?),
                DType::U32 => HostData::U32(t.to_vec_u32()?),
            };
            Ok((name.clone(), t.shape().to_vec(), data))
        })
        .collect()
}

/// Writes host tensors to a safetensors file atomically, like [`write_with_metadata`].
pub fn write_host(
    path: &Path,
    host: &[FileTensor],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let views = host
        .iter()
        .map(|(n, shape, data)| {
            let (dtype, bytes): (Dtype, &[u8]) = match data {
                HostData::F32(v) => (Dtype::F32, bytemuck::cast_slice(v)),
                HostData::U32(v) => (Dtype::U32, bytemuck::cast_slice(v)),
            };
            TensorView::new(dtype, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::file(path, format!("tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, metadata).map_err(|e| Error::file(path, e))?;
    write_atomic(path, &data)
}

/// Writes bytes to `path` through a temporary file in the same directory and a rename,
/// so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    // Named by the file asked for: the temporary name means nothing to the user.
    std::fs::write(&tmp, data).map_err(|e| Error::file(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file(path, e)
    })
}
