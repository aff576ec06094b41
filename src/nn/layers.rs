//! Leaf layers: Conv2d, BatchNorm2d, Linear and activations, with torch.nn's
//! parameter names and default initialisation.

use super::builder::{BnFreeze, Builder};
use super::init::{bias_default, kaiming_normal_fan_out, kaiming_uniform_default};
use super::module::{join, Mode, Module, State};
use crate::autograd::Var;
use crate::error::Result;
use crate::ops::kernels::full;
use crate::ops::norm::{BatchNormOpts, NormActivation};
use crate::tensor::Tensor;

/// torch.nn.Conv2d.
pub struct Conv2d {
    pub weight: Var,
    pub bias: Option<Var>,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// Conv2d hyperparameters beyond the channel counts and kernel size.
#[derive(Clone, Copy, Debug)]
pub struct ConvOpts {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
    pub bias: bool,
    pub init: WeightInit,
}

/// How a convolution's weight starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightInit {
    /// torch.nn.Conv2d's own: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    #[default]
    TorchDefault,
    /// torchvision's ResNet and MobileNetV2: N(0, 2 / fan_out). Larger weights than the
    /// default make a step of SGD a smaller change relative to them under batch norm,
    /// which is what torchvision's training recipes were tuned for.
    KaimingFanOut,
}

impl Default for ConvOpts {
    fn default() -> Self {
        ConvOpts {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
            init: WeightInit::TorchDefault,
        }
    }
}

impl Conv2d {
    pub fn new(
        b: &mut Builder,
        cin: usize,
        cout: usize,
        kernel: usize,
        o: ConvOpts,
    ) -> Result<Conv2d> {
        let shape = [cout, cin / o.groups, kernel, kernel];
        let weight = Var::leaf(match o.init {
            WeightInit::TorchDefault => kaiming_uniform_default(&b.gpu, &mut b.rng, &shape)?,
            WeightInit::KaimingFanOut => kaiming_normal_fan_out(&b.gpu, &mut b.rng, &shape)?,
        });
        let fan_in = shape[1] * kernel * kernel;
        let bias = if o.bias {
            Some(Var::leaf(bias_default(&b.gpu, &mut b.rng, fan_in, cout)?))
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            stride: [o.stride; 2],
            padding: [o.padding; 2],
            dilation: [o.dilation; 2],
            groups: o.groups,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.conv2d(
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        f(join(prefix, "weight"), State::Param(self.weight.clone()));
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), State::Param(b.clone()));
        }
    }

    fn set_training(&self, _: bool) {}
}

/// torch.nn.BatchNorm2d (affine, tracking running statistics). While `frozen` (shared
/// by the network's builder) is set it keeps eval behaviour even in training.
pub struct BatchNorm2d {
    pub weight: Var,
    pub bias: Var,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub momentum: f32,
    pub eps: f32,
    pub mode: Mode,
    pub frozen: BnFreeze,
    /// What follows the norm inside its output pass (conv-BN-ReLU6 blocks).
    pub activation: NormActivation,
}

impl BatchNorm2d {
    pub fn new(b: &Builder, channels: usize) -> Result<BatchNorm2d> {
        Self::with_activation(b, channels, NormActivation::None)
    }

    /// BatchNorm2d followed by `activation`, fused into its kernels: the same outputs
    /// and parameter names as the two modules one after the other.
    pub fn with_activation(
        b: &Builder,
        channels: usize,
        activation: NormActivation,
    ) -> Result<BatchNorm2d> {
        let g = &b.gpu;
        Ok(BatchNorm2d {
            weight: Var::leaf(full(g, &[channels], 1.0)?),
            bias: Var::leaf(full(g, &[channels], 0.0)?),
            running_mean: full(g, &[channels], 0.0)?,
            running_var: full(g, &[channels], 1.0)?,
            momentum: 0.1,
            eps: 1e-5,
            mode: Mode::default(),
            frozen: b.bn_freeze.clone(),
            activation,
        })
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        let opts = BatchNormOpts {
            training: self.mode.training() && !self.frozen.get(),
            momentum: self.momentum,
            eps: self.eps,
            activation: self.activation,
        };
        x.batch_norm(
            Some(&self.running_mean),
            Some(&self.running_var),
            Some(&self.weight),
            Some(&self.bias),
            opts,
        )
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        f(join(prefix, "weight"), State::Param(self.weight.clone()));
        f(join(prefix, "bias"), State::Param(self.bias.clone()));
        f(
            join(prefix, "running_mean"),
            State::Buffer(self.running_mean.clone()),
        );
        f(
            join(prefix, "running_var"),
            State::Buffer(self.running_var.clone()),
        );
    }

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

/// torch.nn.Linear.
pub struct Linear {
    pub weight: Var,
    pub bias: Option<Var>,
}

impl Linear {
    pub fn new(b: &mut Builder, fan_in: usize, fan_out: usize, bias: bool) -> Result<Linear> {
        let weight = Var::leaf(kaiming_uniform_default(
            &b.gpu,
            &mut b.rng,
            &[fan_out, fan_in],
        )?);
        let bias = if bias {
            Some(Var::leaf(bias_default(
                &b.gpu, &mut b.rng, fan_in, fan_out,
            )?))
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.linear(&self.weight, self.bias.as_ref())
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        f(join(prefix, "weight"), State::Param(self.weight.clone()));
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), State::Param(b.clone()));
        }
    }

    fn set_training(&self, _: bool) {}
}

/// Parameter-free activations.
#[derive(Clone, Copy, Debug)]
pub enum Activation {
    Relu,
    Relu6,
    /// torch.nn.LeakyReLU(negative_slope).
    LeakyRelu(f32),
}

impl Module for Activation {
    fn forward(&self, x: &Var) -> Result<Var> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.relu6(),
            Activation::LeakyRelu(slope) => x.leaky_relu(*slope),
        }
    }

    fn visit(&self, _: &str, _: &mut dyn FnMut(String, State)) {}

    fn set_training(&self, _: bool) {}
}
