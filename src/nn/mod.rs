//! Network modules with PyTorch's parameter names and default initialisation.

pub mod checkpoint;
pub mod init;
pub mod module;

pub use module::{parameters, state_dict, Mode, Module, Sequential, State};
