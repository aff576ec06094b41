//! A kernel's uniform parameter block, built field by field with the names of its
//! WGSL struct. A dispatch compares the names and byte offsets with the struct that
//! naga reflects from the shader (see `EntryBindings::uniform_fields`), so a Rust
//! builder and a WGSL struct that disagree (an edited shader, a field added on one
//! side) fail with an error naming the field instead of reading the wrong words.

use crate::error::{Error, Result};

/// The most dims a kernel's index arithmetic takes (two vec4 in a uniform).
pub const MAX_DIMS: usize = 8;

pub struct Params {
    /// The op whose sizes these are, for errors.
    op: String,
    words: Vec<u32>,
    /// (field name, byte offset) in the order they were pushed.
    fields: Vec<(&'static str, u32)>,
}

impl Params {
    pub fn new(op: &str) -> Self {
        Params {
            op: op.to_string(),
            words: Vec::with_capacity(32),
            fields: Vec::with_capacity(16),
        }
    }

    fn field(&mut self, name: &'static str) {
        self.fields.push((name, 4 * self.words.len() as u32));
    }

    fn word(&self, v: usize) -> Result<u32> {
        u32::try_from(v).map_err(|_| {
            Error::op(
                &self.op,
                format!("index {v} does not fit the kernels' 32-bit indexing"),
            )
        })
    }

    pub fn u32(mut self, name: &'static str, v: u32) -> Self {
        self.field(name);
        self.words.push(v);
        self
    }

    /// A size or stride, refused when it exceeds 32 bits.
    pub fn idx(mut self, name: &'static str, v: usize) -> Result<Self> {
        let w = self.word(v)?;
        self.field(name);
        self.words.push(w);
        Ok(self)
    }

    pub fn f32(mut self, name: &'static str, v: f32) -> Self {
        self.field(name);
        self.words.push(v.to_bits());
        self
    }

    /// Pads to a 16-byte boundary (before a vec4 array; the WGSL struct's `_pad`
    /// fields).
    pub fn align16(mut self) -> Self {
        while !self.words.len().is_multiple_of(4) {
            self.words.push(0);
        }
        self
    }

    /// An `array<vec4<u32>, 2>` of up to 8 dims, zero-filled.
    pub fn dims(mut self, name: &'static str, v: &[usize]) -> Result<Self> {
        debug_assert!(
            self.words.len().is_multiple_of(4),
            "dims must start 16-byte aligned"
        );
        if v.len() > MAX_DIMS {
            return Err(Error::op(&self.op, format!("more than {MAX_DIMS} dims")));
        }
        let mut words = [0u32; MAX_DIMS];
        for (w, &x) in words.iter_mut().zip(v) {
            *w = self.word(x)?;
        }
        self.field(name);
        self.words.extend_from_slice(&words);
        Ok(self)
    }

    pub fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.words)
    }

    pub fn fields(&self) -> &[(&'static str, u32)] {
        &self.fields
    }
}
