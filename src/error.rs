//! One error type for the whole crate: every variant renders as a single line that
//! names what is at fault (file, op, tensor, shape or key), so the CLI can print it
//! and exit non-zero instead of panicking.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU or CPU adapter.
    #[error("{0}")]
    NoAdapter(String),
    /// wgpu refused a device, buffer or pipeline.
    #[error("gpu: {0}")]
    Gpu(String),
    /// A WGSL source that naga rejects: `file:line:column: message`.
    #[error("{0}")]
    Shader(String),
    /// An op was called with inputs or attributes it cannot take.
    #[error("{op}: {msg}")]
    Op { op: String, msg: String },
    /// Autograd misuse (backward from a non-scalar, a value without gradient, ...).
    #[error("autograd: {0}")]
    Autograd(String),
    /// A file could not be read or written, or its contents are invalid.
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    /// A training step whose loss or gradient came out NaN or infinite: which step
    /// (counted from 1) and what was.
    #[error("step {step}: {what}")]
    NonFinite { step: usize, what: String },
    /// A command-line usage error.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn op(op: impl fmt::Display, msg: impl fmt::Display) -> Self {
        Error::Op {
            op: op.to_string(),
            msg: msg.to_string(),
        }
    }

    pub fn file(path: impl AsRef<std::path::Path>, msg: impl fmt::Display) -> Self {
        Error::File {
            path: path.as_ref().display().to_string(),
            msg: msg.to_string(),
        }
    }
}
