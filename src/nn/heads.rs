//! Projection heads of the contrastive methods.

use super::builder::Builder;
use super::layers::{Activation, BatchNorm2d, Conv2d, ConvOpts};
use super::module::{Module, Sequential, State};
use crate::autograd::Var;
use crate::error::Result;

/// The "convmlp" head of cross-image pixel contrast: 1x1 conv -> BN -> ReLU -> 1x1
/// conv, then L2-normalisation over channels, so every pixel is a unit embedding.
/// Parameters are named as the Sequential's layers: 0 (conv), 1 (bn), 3 (conv).
pub struct ProjectionHead {
    layers: Sequential,
}

impl ProjectionHead {
    pub fn new(b: &mut Builder, in_channels: usize, dim: usize) -> Result<ProjectionHead> {
        let c1 = Conv2d::new(b, in_channels, in_channels, 1, ConvOpts::default())?;
        let c2 = Conv2d::new(b, in_channels, dim, 1, ConvOpts::default())?;
        Ok(ProjectionHead {
            layers: Sequential::new(vec![
                Box::new(c1),
                Box::new(BatchNorm2d::new(b, in_channels)?),
                Box::new(Activation::Relu),
                Box::new(c2),
            ]),
        })
    }
}

impl Module for ProjectionHead {
    fn forward(&self, x: &Var) -> Result<Var> {
        self.layers.forward(x)?.l2_normalize(1, 1e-12)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.layers.visit(prefix, f);
    }

    fn set_training(&self, training: bool) {
        self.layers.set_training(training);
    }
}
