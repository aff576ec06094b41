//! Network modules with PyTorch's parameter names and default initialisation.

pub mod aspp;
pub mod builder;
pub mod checkpoint;
pub mod heads;
pub mod init;
pub mod layers;
pub mod mobilenet;
pub mod module;
pub mod patchgan;
pub mod resnet;
pub mod seg_model;

pub use module::{parameters, state_dict, Mode, Module, Sequential, State};
