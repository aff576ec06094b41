//! Builds a kernel's uniform parameter block word by word, in the order its WGSL
//! `struct Params` declares the fields.

use crate::error::{Error, Result};
use crate::tensor::shape::MAX_DIMS;

#[derive(Default)]
pub struct Params(Vec<u32>);

fn word(op: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::op(
            op,
            format!("index {v} does not fit the kernels' 32-bit indexing"),
        )
    })
}

impl Params {
    pub fn new() -> Self {
        Params(Vec::with_capacity(32))
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.0.push(v);
        self
    }

    /// A size or stride, refused when it exceeds 32 bits.
    pub fn idx(mut self, op: &str, v: usize) -> Result<Self> {
        self.0.push(word(op, v)?);
        Ok(self)
    }

    pub fn f32(mut self, v: f32) -> Self {
        self.0.push(v.to_bits());
        self
    }

    /// Pads to a 16-byte boundary (before a vec4 array).
    pub fn align16(mut self) -> Self {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }

    /// An `array<vec4<u32>, 2>` of up to 8 dims, zero-filled.
    pub fn dims(mut self, op: &str, v: &[usize]) -> Result<Self> {
        debug_assert!(
            self.0.len().is_multiple_of(4),
            "dims must start 16-byte aligned"
        );
        if v.len() > MAX_DIMS {
            return Err(Error::op(op, format!("more than {MAX_DIMS} dims")));
        }
        for i in 0..MAX_DIMS {
            self.0.push(match v.get(i) {
                Some(&x) => word(op, x)?,
                None => 0,
            });
        }
        Ok(self)
    }

    pub fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}
