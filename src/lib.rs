//! wgseg: contrastive and unsupervised semantic segmentation in which every tensor
//! computation is a hand-written WGSL compute shader driven by a tape autograd.

pub mod autograd;
pub mod bench;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod gpu;
pub mod gradcheck;
pub mod io;
pub mod loss;
pub mod memory;
pub mod method;
pub mod nn;
pub mod op_table;
pub mod ops;
pub mod optim;
pub mod report;
pub mod state;
pub mod tensor;

pub use autograd::{no_grad, Gradients, Var};
pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tensor::{DType, Tensor};
