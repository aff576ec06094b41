//! Tensors: a shape, an element type and a pooled GPU buffer. Storage is immutable
//! from the user's side (ops return new tensors), so clones and reshapes share it;
//! the buffer returns to the pool when the last holder drops.

use std::fmt;
use std::rc::Rc;

pub mod elementwise;
pub mod shape;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::U32 => "u32",
        })
    }
}

struct Storage {
    buf: Option<wgpu::Buffer>,
    gpu: Gpu,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.gpu.give_buffer(b);
        }
    }
}

#[derive(Clone)]
pub struct Tensor {
    storage: Rc<Storage>,
    shape: Vec<usize>,
    dtype: DType,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Tensor({:?}, {})", self.shape, self.dtype)
    }
}

/// Formats a shape as `[2, 3, 4]`.
pub fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}

fn too_large(shape: &[usize]) -> Error {
    Error::op(
        "tensor",
        format!(
            "shape {} has more elements than 64 bits count",
            shape_str(shape)
        ),
    )
}

/// The number of elements of `shape`, refused when the product overflows.
fn numel_checked(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| too_large(shape))
}

impl Tensor {
    /// An uninitialised tensor from the pool; kernels write every element.
    pub fn empty(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let n = numel_checked(shape)?;
        if n == 0 {
            return Err(Error::Op {
                op: "tensor".into(),
                msg: format!(
                    "shape {} has no elements; empty tensors are not supported",
                    shape_str(shape)
                ),
            });
        }
        let bytes = (n as u64).checked_mul(4).ok_or_else(|| too_large(shape))?;
        let buf = gpu.take_buffer(bytes)?;
        Ok(Tensor {
            storage: Rc::new(Storage {
                buf: Some(buf),
                gpu: gpu.clone(),
            }),
            shape: shape.to_vec(),
            dtype,
        })
    }

    fn check_len(shape: &[usize], len: usize) -> Result<()> {
        let n = numel_checked(shape)?;
        if n != len {
            return Err(Error::op(
                "tensor",
                format!("shape {} needs {n} values, got {len}", shape_str(shape)),
            ));
        }
        Ok(())
    }

    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Self::check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::F32)?;
        gpu.upload(t.buffer(), bytemuck::cast_slice(data))?;
        Ok(t)
    }

    pub fn from_u32(gpu: &Gpu, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        Self::check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::U32)?;
        gpu.upload(t.buffer(), bytemuck::cast_slice(data))?;
        Ok(t)
    }

    /// Overwrites this tensor's storage in place (every holder sees the new values).
    pub fn write(&self, data: &[f32]) -> Result<()> {
        Self::check_len(&self.shape, data.len())?;
        self.expect_dtype(DType::F32)?;
        self.gpu().upload(self.buffer(), bytemuck::cast_slice(data))
    }

    /// An RGB image as a [3, H, W] tensor with values in [0, 1].
    pub fn from_image(gpu: &Gpu, img: &image::DynamicImage) -> Result<Tensor> {
        let rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut data = vec![0f32; 3 * h * w];
        for (x, y, p) in rgb.enumerate_pixels() {
            for c in 0..3 {
                data[c * h * w + y as usize * w + x as usize] = p[c] as f32 / 255.0;
            }
        }
        Tensor::from_slice(gpu, &data, &[3, h, w])
    }

    /// Reads an image file into a [3, H, W] tensor in [0, 1].
    pub fn from_image_file(gpu: &Gpu, path: &std::path::Path) -> Result<Tensor> {
        let img = image::open(path).map_err(|e| Error::file(path, e))?;
        Tensor::from_image(gpu, &img)
    }

    pub fn gpu(&self) -> &Gpu {
        &self.storage.gpu
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        self.storage
            .buf
            .as_ref()
            .expect("storage is only emptied on drop")
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether two tensors share one buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Rc::ptr_eq(&self.storage, &other.storage)
    }

    /// The same storage under another shape with as many elements.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(Error::op(
                "reshape",
                format!(
                    "cannot view {} as {}",
                    shape_str(&self.shape),
                    shape_str(shape)
                ),
            ));
        }
        Ok(Tensor {
            storage: self.storage.clone(),
            shape: shape.to_vec(),
            dtype: self.dtype,
        })
    }

    fn expect_dtype(&self, want: DType) -> Result<()> {
        if self.dtype != want {
            return Err(Error::op(
                "to_vec",
                format!("tensor is {}, not {want}", self.dtype),
            ));
        }
        Ok(())
    }

    /// Reads an f32 tensor back to the host.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.expect_dtype(DType::F32)?;
        let bytes = self
            .gpu()
            .read_bytes(self.buffer(), self.numel() as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads a u32 tensor back to the host.
    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        self.expect_dtype(DType::U32)?;
        let bytes = self
            .gpu()
            .read_bytes(self.buffer(), self.numel() as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::op(
                "item",
                format!("tensor of shape {} is not a scalar", shape_str(&self.shape)),
            ));
        }
        Ok(self.to_vec()?[0])
    }
}
