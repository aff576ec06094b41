//! ResNet-18/34/50 as torchvision builds them (same parameter names), with
//! `replace_stride_with_dilation`: layer3/layer4 trade their stride for dilation so
//! the output stride is 8 or 16, as DeepLab backbones use. Unlike torchvision's
//! BasicBlock, dilation is allowed in BasicBlock too (dilated ResNet-18/34).

use super::builder::Builder;
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, WeightInit};
use super::module::{join, Module, State};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::ops::norm::NormActivation;
use crate::ops::pool::Pool2d;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    R18,
    R34,
    R50,
}

impl Depth {
    pub fn parse(depth: usize) -> Result<Depth> {
        match depth {
            18 => Ok(Depth::R18),
            34 => Ok(Depth::R34),
            50 => Ok(Depth::R50),
            other => Err(Error::Usage(format!(
                "resnet depth {other} is not one of 18, 34, 50"
            ))),
        }
    }

    fn blocks(self) -> [usize; 4] {
        match self {
            Depth::R18 => [2, 2, 2, 2],
            Depth::R34 | Depth::R50 => [3, 4, 6, 3],
        }
    }

    fn expansion(self) -> usize {
        if self == Depth::R50 {
            4
        } else {
            1
        }
    }
}

/// Which of layer2..layer4 replace their stride with dilation, from an output stride.
pub fn dilation_for_output_stride(output_stride: usize) -> Result<[bool; 3]> {
    match output_stride {
        8 => Ok([false, true, true]),
        16 => Ok([false, false, true]),
        32 => Ok([false, false, false]),
        other => Err(Error::Usage(format!(
            "output_stride {other} is not one of 8, 16, 32"
        ))),
    }
}

fn conv(
    b: &mut Builder,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    dilation: usize,
) -> Result<Conv2d> {
    let padding = if k == 3 { dilation } else { 0 };
    Conv2d::new(
        b,
        cin,
        cout,
        k,
        ConvOpts {
            stride,
            padding,
            dilation,
            bias: false,
            init: WeightInit::KaimingFanOut,
            ..Default::default()
        },
    )
}

/// The projection shortcut of a block whose shape changes.
struct Downsample {
    conv: Conv2d,
    bn: BatchNorm2d,
}

/// BasicBlock (two 3x3 convs) or Bottleneck (1x1, 3x3, 1x1) with a residual.
struct Block {
    convs: Vec<(Conv2d, BatchNorm2d)>,
    downsample: Option<Downsample>,
}

impl Block {
    #[allow(clippy::too_many_arguments)]
    fn new(
        b: &mut Builder,
        depth: Depth,
        inplanes: usize,
        planes: usize,
        stride: usize,
        dilation: usize,
        downsample: Option<Downsample>,
    ) -> Result<Block> {
        // Every norm but the last is followed by a ReLU, fused into it.
        let bn_relu = |b: &Builder, c| BatchNorm2d::with_activation(b, c, NormActivation::Relu);
        let mut convs = Vec::new();
        if depth.expansion() == 1 {
            convs.push((
                conv(b, inplanes, planes, 3, stride, dilation)?,
                bn_relu(b, planes)?,
            ));
            convs.push((
                conv(b, planes, planes, 3, 1, dilation)?,
                BatchNorm2d::new(b, planes)?,
            ));
        } else {
            let out = planes * depth.expansion();
            convs.push((conv(b, inplanes, planes, 1, 1, 1)?, bn_relu(b, planes)?));
            convs.push((
                conv(b, planes, planes, 3, stride, dilation)?,
                bn_relu(b, planes)?,
            ));
            convs.push((conv(b, planes, out, 1, 1, 1)?, BatchNorm2d::new(b, out)?));
        }
        Ok(Block { convs, downsample })
    }
}

impl Module for Block {
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for (c, bn) in &self.convs {
            h = bn.forward(&c.forward(&h)?)?;
        }
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(&d.conv.forward(x)?)?,
            None => x.clone(),
        };
        h.add(&identity)?.relu()
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        for (i, (c, bn)) in self.convs.iter().enumerate() {
            c.visit(&join(prefix, &format!("conv{}", i + 1)), f);
            bn.visit(&join(prefix, &format!("bn{}", i + 1)), f);
        }
        if let Some(d) = &self.downsample {
            d.conv.visit(&join(prefix, "downsample.0"), f);
            d.bn.visit(&join(prefix, "downsample.1"), f);
        }
    }

    fn set_training(&self, training: bool) {
        for (_, bn) in &self.convs {
            bn.set_training(training);
        }
        if let Some(d) = &self.downsample {
            d.bn.set_training(training);
        }
    }
}

/// A ResNet backbone without its classifier: `forward` returns layer4's features.
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<Block>>,
    out_channels: usize,
    output_stride: usize,
}

impl ResNet {
    /// `width` scales every channel count (1.0 is torchvision's network).
    pub fn new(b: &mut Builder, depth: Depth, output_stride: usize, width: f64) -> Result<ResNet> {
        if width.is_nan() || width <= 0.0 {
            return Err(Error::Usage(format!("resnet width {width} must be > 0")));
        }
        let dilate = dilation_for_output_stride(output_stride)?;
        let ch = |c: usize| ((c as f64 * width).round() as usize).max(1);
        let mut inplanes = ch(64);
        let conv1 = Conv2d::new(
            b,
            3,
            inplanes,
            7,
            ConvOpts {
                stride: 2,
                padding: 3,
                bias: false,
                init: WeightInit::KaimingFanOut,
                ..Default::default()
            },
        )?;
        let bn1 = BatchNorm2d::with_activation(b, inplanes, NormActivation::Relu)?;
        let mut dilation = 1;
        let mut layers = Vec::new();
        for (i, (&n, planes)) in depth.blocks().iter().zip([64, 128, 256, 512]).enumerate() {
            let planes = ch(planes);
            let mut stride = if i == 0 { 1 } else { 2 };
            let previous_dilation = dilation;
            if i > 0 && dilate[i - 1] {
                dilation *= stride;
                stride = 1;
            }
            let out = planes * depth.expansion();
            let downsample = if stride != 1 || inplanes != out {
                Some(Downsample {
                    conv: conv(b, inplanes, out, 1, stride, 1)?,
                    bn: BatchNorm2d::new(b, out)?,
                })
            } else {
                None
            };
            let mut blocks = vec![Block::new(
                b,
                depth,
                inplanes,
                planes,
                stride,
                previous_dilation,
                downsample,
            )?];
            inplanes = out;
            for _ in 1..n {
                blocks.push(Block::new(b, depth, inplanes, planes, 1, dilation, None)?);
            }
            layers.push(blocks);
        }
        Ok(ResNet {
            conv1,
            bn1,
            layers,
            out_channels: inplanes,
            output_stride,
        })
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    pub fn output_stride(&self) -> usize {
        self.output_stride
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?;
        let pool = Pool2d {
            stride: [2, 2],
            padding: [1, 1],
            ..Pool2d::new([3, 3])
        };
        let mut h = h.max_pool2d(&pool)?;
        for layer in &self.layers {
            for block in layer {
                h = block.forward(&h)?;
            }
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        for (i, layer) in self.layers.iter().enumerate() {
            for (j, block) in layer.iter().enumerate() {
                block.visit(&join(prefix, &format!("layer{}.{j}", i + 1)), f);
            }
        }
    }

    fn set_training(&self, training: bool) {
        self.bn1.set_training(training);
        for layer in &self.layers {
            for block in layer {
                block.set_training(training);
            }
        }
    }
}
