//! The PatchGAN discriminator of pix2pix and CUT (their NLayerDiscriminator with
//! batch norm): every output pixel scores one receptive-field patch of the input
//! as real or fake. Parameters are named as theirs, `model.<layer>.*`.

use super::builder::Builder;
use super::layers::{Activation, BatchNorm2d, Conv2d, ConvOpts};
use super::module::{join, Module, Sequential, State};
use crate::autograd::Var;
use crate::error::{Error, Result};

/// The negative slope of the discriminator's LeakyReLUs.
const SLOPE: f32 = 0.2;

pub struct PatchGan {
    model: Sequential,
}

/// A 4x4 convolution with padding 1, without bias when batch norm follows.
fn conv(b: &mut Builder, cin: usize, cout: usize, stride: usize, bias: bool) -> Result<Conv2d> {
    let opts = ConvOpts {
        stride,
        padding: 1,
        bias,
        ..ConvOpts::default()
    };
    Conv2d::new(b, cin, cout, 4, opts)
}

impl PatchGan {
    /// `layers` strided 4x4 convolutions from `channels` (ndf) up to at most 8 x
    /// `channels`, one more at stride 1, then a 1-channel 4x4 output: pix2pix's
    /// NLayerDiscriminator(in_channels, ndf=channels, n_layers=layers).
    pub fn new(
        b: &mut Builder,
        in_channels: usize,
        channels: usize,
        layers: usize,
    ) -> Result<PatchGan> {
        if channels == 0 || layers == 0 {
            return Err(Error::Usage(
                "PatchGAN: channels and layers must be at least 1".into(),
            ));
        }
        let leaky = || Box::new(Activation::LeakyRelu(SLOPE)) as Box<dyn Module>;
        let mut seq: Vec<Box<dyn Module>> =
            vec![Box::new(conv(b, in_channels, channels, 2, true)?), leaky()];
        let mut width = channels;
        for n in 1..=layers {
            let out = channels * (1 << n.min(3));
            let stride = if n < layers { 2 } else { 1 };
            seq.push(Box::new(conv(b, width, out, stride, false)?));
            seq.push(Box::new(BatchNorm2d::new(b, out)?));
            seq.push(leaky());
            width = out;
        }
        seq.push(Box::new(conv(b, width, 1, 1, true)?));
        Ok(PatchGan {
            model: Sequential::new(seq),
        })
    }
}

impl Module for PatchGan {
    /// Patch scores [B, 1, h, w] of inputs [B, in_channels, H, W].
    fn forward(&self, x: &Var) -> Result<Var> {
        self.model.forward(x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.model.visit(&join(prefix, "model"), f);
    }

    fn set_training(&self, training: bool) {
        self.model.set_training(training);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;
    use crate::nn::module::state_dict;
    use crate::ops::kernels::full;

    #[test]
    fn names_shapes_and_output_size_follow_pix2pix() {
        let gpu = Gpu::shared().unwrap();
        let d = PatchGan::new(&mut Builder::new(&gpu, 0), 5, 8, 3).unwrap();
        let shapes: Vec<(String, Vec<usize>)> = state_dict(&d)
            .into_iter()
            .map(|(n, s)| (n, s.tensor().shape().to_vec()))
            .collect();
        let get = |name: &str| {
            shapes
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name} missing from {shapes:?}"))
                .1
                .clone()
        };
        assert_eq!(get("model.0.weight"), vec![8, 5, 4, 4]);
        assert_eq!(get("model.0.bias"), vec![8]);
        assert_eq!(get("model.2.weight"), vec![16, 8, 4, 4]);
        assert_eq!(get("model.3.running_var"), vec![16]);
        assert_eq!(get("model.5.weight"), vec![32, 16, 4, 4]);
        assert_eq!(get("model.8.weight"), vec![64, 32, 4, 4]);
        assert_eq!(get("model.11.weight"), vec![1, 64, 4, 4]);
        assert_eq!(get("model.11.bias"), vec![1]);
        assert!(!shapes.iter().any(|(n, _)| n == "model.2.bias"));
        // 64 -> 32 -> 16 -> 8 (stride 2), then 7 and 6 (stride 1), as in pix2pix.
        let x = Var::constant(full(&gpu, &[2, 5, 64, 64], 0.5).unwrap());
        assert_eq!(d.forward(&x).unwrap().shape(), vec![2, 1, 6, 6]);
    }
}
