//! ASPP and the DeepLabV3 head, laid out as torchvision's deeplabv3.py so its
//! parameter names (convs.N..., project.0...) carry over.

use rand::Rng;

use super::builder::{Builder, StepClock};
use super::layers::{BatchNorm2d, Conv2d, ConvOpts};
use super::module::{join, Mode, Module, Sequential, State};
use crate::autograd::Var;
use crate::error::Result;
use crate::ops::norm::NormActivation;

fn conv_bn_relu(
    b: &mut Builder,
    cin: usize,
    cout: usize,
    k: usize,
    dilation: usize,
) -> Result<Sequential> {
    let padding = if k == 3 { dilation } else { 0 };
    let conv = Conv2d::new(
        b,
        cin,
        cout,
        k,
        ConvOpts {
            padding,
            dilation,
            bias: false,
            ..Default::default()
        },
    )?;
    // The ReLU runs inside the norm's kernels; torchvision's index 2 holds no
    // parameters.
    Ok(Sequential::new(vec![
        Box::new(conv),
        Box::new(BatchNorm2d::with_activation(b, cout, NormActivation::Relu)?),
    ]))
}

/// torch.nn.Dropout with a mask drawn from (module seed, training step).
pub struct Dropout {
    p: f64,
    seed: u64,
    clock: StepClock,
    mode: Mode,
}

impl Dropout {
    pub fn new(b: &mut Builder, p: f64) -> Dropout {
        Dropout {
            p,
            seed: b.rng.random::<u32>() as u64,
            clock: b.clock.clone(),
            mode: Mode::default(),
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Var) -> Result<Var> {
        let seed = self
            .seed
            .wrapping_add(self.clock.get().wrapping_mul(0x9e37_79b9_7f4a_7c15));
        x.dropout(self.p, self.mode.training(), seed)
    }

    fn visit(&self, _: &str, _: &mut dyn FnMut(String, State)) {}

    fn set_training(&self, training: bool) {
        self.mode.set(training);
    }
}

/// Image-level features: global average pool, 1x1 conv + BN + ReLU, broadcast back.
struct AsppPooling {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl Module for AsppPooling {
    fn forward(&self, x: &Var) -> Result<Var> {
        let s = x.shape();
        let pooled = x.adaptive_avg_pool2d([1, 1])?;
        let h = self.bn.forward(&self.conv.forward(&pooled)?)?;
        // Bilinear upsampling of a 1x1 map is a broadcast.
        h.expand(&[s[0], h.shape()[1], s[2], s[3]])
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.conv.visit(&join(prefix, "1"), f);
        self.bn.visit(&join(prefix, "2"), f);
    }

    fn set_training(&self, training: bool) {
        self.bn.set_training(training);
    }
}

/// Atrous spatial pyramid pooling: a 1x1 branch, one 3x3 branch per rate, an
/// image-pooling branch, concatenated and projected to `out_channels`.
pub struct Aspp {
    convs: Vec<Box<dyn Module>>,
    project: Sequential,
}

impl Aspp {
    pub fn new(
        b: &mut Builder,
        in_channels: usize,
        rates: &[usize],
        out_channels: usize,
        dropout: f64,
    ) -> Result<Aspp> {
        let mut convs: Vec<Box<dyn Module>> =
            vec![Box::new(conv_bn_relu(b, in_channels, out_channels, 1, 1)?)];
        for &r in rates {
            convs.push(Box::new(conv_bn_relu(b, in_channels, out_channels, 3, r)?));
        }
        let pool_conv = Conv2d::new(
            b,
            in_channels,
            out_channels,
            1,
            ConvOpts {
                bias: false,
                ..Default::default()
            },
        )?;
        convs.push(Box::new(AsppPooling {
            conv: pool_conv,
            bn: BatchNorm2d::with_activation(b, out_channels, NormActivation::Relu)?,
        }));
        let mut project = conv_bn_relu(b, convs.len() * out_channels, out_channels, 1, 1)?;
        // Drawn even when unused, so that the layers after it start from the same weights.
        let drop = Dropout::new(b, dropout);
        if dropout > 0.0 {
            project.layers.push(Box::new(drop));
        }
        Ok(Aspp { convs, project })
    }
}

impl Module for Aspp {
    fn forward(&self, x: &Var) -> Result<Var> {
        let branches = self
            .convs
            .iter()
            .map(|c| c.forward(x))
            .collect::<Result<Vec<_>>>()?;
        self.project.forward(&Var::concat(&branches, 1)?)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        for (i, c) in self.convs.iter().enumerate() {
            c.visit(&join(prefix, &format!("convs.{i}")), f);
        }
        self.project.visit(&join(prefix, "project"), f);
    }

    fn set_training(&self, training: bool) {
        for c in &self.convs {
            c.set_training(training);
        }
        self.project.set_training(training);
    }
}

/// torchvision's DeepLabHead: ASPP, 3x3 conv + BN + ReLU, 1x1 conv to `out_channels`
/// (classes, or the embedding dimension of a contrastive head).
pub fn deeplab_head(
    b: &mut Builder,
    in_channels: usize,
    rates: &[usize],
    hidden: usize,
    out_channels: usize,
    dropout: f64,
) -> Result<Sequential> {
    let aspp = Aspp::new(b, in_channels, rates, hidden, dropout)?;
    let mid = conv_bn_relu(b, hidden, hidden, 3, 1)?;
    let last = Conv2d::new(b, hidden, out_channels, 1, ConvOpts::default())?;
    let mut layers: Vec<Box<dyn Module>> = vec![Box::new(aspp)];
    layers.extend(mid.layers);
    layers.push(Box::new(last));
    Ok(Sequential::new(layers))
}
