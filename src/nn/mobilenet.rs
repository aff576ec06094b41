//! MobileNetV2 as torchvision builds it (same parameter names: features.N.conv.M...,
//! classifier.1), with DeepLabV3-MobileNet's trick for output stride 8/16: once the
//! wanted stride is reached, later stages keep stride 1 and dilate their depthwise
//! convolutions instead.

use super::aspp::Dropout;
use super::builder::Builder;
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, Linear, WeightInit};
use super::module::{join, Module, Sequential, State};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::ops::norm::NormActivation;

/// (expansion t, channels c, repeats n, stride s) of torchvision's MobileNetV2.
const SETTING: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Layers of torchvision's `features`: the stem, 17 inverted residuals, the last 1x1 conv.
pub const FEATURE_LAYERS: usize = 19;

/// torchvision's _make_divisible: round to a multiple of 8, never below 90% of `v`.
fn make_divisible(v: f64) -> usize {
    let d = 8.0;
    let mut new_v = ((v + d / 2.0) / d).floor() * d;
    new_v = new_v.max(d);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as usize
}

/// Conv2dNormActivation: conv (no bias) + BN + ReLU6, named 0, 1.
fn conv_bn_relu6(
    b: &mut Builder,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    dilation: usize,
) -> Result<Sequential> {
    let conv = Conv2d::new(
        b,
        cin,
        cout,
        k,
        ConvOpts {
            stride,
            padding: (k - 1) / 2 * dilation,
            dilation,
            groups,
            bias: false,
            init: WeightInit::KaimingFanOut,
        },
    )?;
    // The ReLU6 runs inside the batch norm's kernels (torchvision's index 2 holds no
    // parameters, so the names stay theirs).
    Ok(Sequential::new(vec![
        Box::new(conv),
        Box::new(BatchNorm2d::with_activation(
            b,
            cout,
            NormActivation::Relu6,
        )?),
    ]))
}

/// Inverted residual: optional 1x1 expansion, 3x3 depthwise, linear 1x1 projection.
struct InvertedResidual {
    conv: Sequential,
    residual: bool,
}

impl InvertedResidual {
    fn new(
        b: &mut Builder,
        inp: usize,
        oup: usize,
        stride: usize,
        dilation: usize,
        expand: usize,
    ) -> Result<Self> {
        let hidden = inp * expand;
        let mut layers: Vec<Box<dyn Module>> = Vec::new();
        if expand != 1 {
            layers.push(Box::new(conv_bn_relu6(b, inp, hidden, 1, 1, 1, 1)?));
        }
        layers.push(Box::new(conv_bn_relu6(
            b, hidden, hidden, 3, stride, hidden, dilation,
        )?));
        let project = Conv2d::new(
            b,
            hidden,
            oup,
            1,
            ConvOpts {
                bias: false,
                init: WeightInit::KaimingFanOut,
                ..Default::default()
            },
        )?;
        layers.push(Box::new(project));
        layers.push(Box::new(BatchNorm2d::new(b, oup)?));
        Ok(InvertedResidual {
            conv: Sequential::new(layers),
            residual: stride == 1 && inp == oup,
        })
    }
}

impl Module for InvertedResidual {
    fn forward(&self, x: &Var) -> Result<Var> {
        let h = self.conv.forward(x)?;
        if self.residual {
            h.add(x)
        } else {
            Ok(h)
        }
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.conv.visit(&join(prefix, "conv"), f);
    }

    fn set_training(&self, training: bool) {
        self.conv.set_training(training);
    }
}

/// MobileNetV2: `features` (the backbone) and an optional ImageNet-style classifier.
pub struct MobileNetV2 {
    features: Sequential,
    classifier: Option<(Dropout, Linear)>,
    out_channels: usize,
}

impl MobileNetV2 {
    /// `output_stride` 8, 16 or 32; `num_classes` adds torchvision's classifier.
    pub fn new(
        b: &mut Builder,
        width: f64,
        output_stride: usize,
        num_classes: Option<usize>,
    ) -> Result<Self> {
        let mut net = Self::features_only(b, width, output_stride, FEATURE_LAYERS)?;
        net.classifier = match num_classes {
            Some(n) => Some((
                Dropout::new(b, 0.2),
                Linear::new(b, net.out_channels, n, true)?,
            )),
            None => None,
        };
        Ok(net)
    }

    /// The first `layers` (1..=19) of torchvision's `features` and no classifier: a
    /// shorter backbone ends on the mid-level features (e.g. 14: 96 channels at stride
    /// 16), which are cheaper and, on small images, tell object categories apart better
    /// than the last layer's.
    pub fn features_only(
        b: &mut Builder,
        width: f64,
        output_stride: usize,
        layers: usize,
    ) -> Result<Self> {
        if ![8, 16, 32].contains(&output_stride) {
            return Err(Error::Usage(format!(
                "mobilenet_v2 output_stride {output_stride} is not one of 8, 16, 32"
            )));
        }
        if width.is_nan() || width <= 0.0 {
            return Err(Error::Usage(format!(
                "mobilenet_v2 width {width} must be > 0"
            )));
        }
        if !(1..=FEATURE_LAYERS).contains(&layers) {
            return Err(Error::Usage(format!(
                "mobilenet_v2 feature_layers {layers} must lie in 1..={FEATURE_LAYERS}"
            )));
        }
        let mut input = make_divisible(32.0 * width);
        let mut features: Vec<Box<dyn Module>> =
            vec![Box::new(conv_bn_relu6(b, 3, input, 3, 2, 1, 1)?)];
        let (mut current_stride, mut dilation) = (2, 1);
        'stages: for (t, c, n, s) in SETTING {
            let output = make_divisible(c as f64 * width);
            let previous_dilation = dilation;
            let stride = if current_stride == output_stride {
                dilation *= s;
                1
            } else {
                current_stride *= s;
                s
            };
            for i in 0..n {
                if features.len() == layers {
                    break 'stages;
                }
                let (st, dil) = if i == 0 {
                    (stride, previous_dilation)
                } else {
                    (1, dilation)
                };
                features.push(Box::new(InvertedResidual::new(
                    b, input, output, st, dil, t,
                )?));
                input = output;
            }
        }
        if features.len() < layers {
            let last = make_divisible(1280.0 * width.max(1.0));
            features.push(Box::new(conv_bn_relu6(b, input, last, 1, 1, 1, 1)?));
            input = last;
        }
        Ok(MobileNetV2 {
            features: Sequential::new(features),
            classifier: None,
            out_channels: input,
        })
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// The backbone's feature map.
    pub fn features(&self, x: &Var) -> Result<Var> {
        self.features.forward(x)
    }
}

impl Module for MobileNetV2 {
    /// Class logits when built with a classifier, else the feature map.
    fn forward(&self, x: &Var) -> Result<Var> {
        let h = self.features.forward(x)?;
        match &self.classifier {
            Some((dropout, linear)) => {
                let pooled = h.adaptive_avg_pool2d([1, 1])?;
                let flat = pooled.reshape(&[h.shape()[0] as i64, -1])?;
                linear.forward(&dropout.forward(&flat)?)
            }
            None => Ok(h),
        }
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.features.visit(&join(prefix, "features"), f);
        if let Some((_, linear)) = &self.classifier {
            linear.visit(&join(prefix, "classifier.1"), f);
        }
    }

    fn set_training(&self, training: bool) {
        self.features.set_training(training);
        if let Some((dropout, _)) = &self.classifier {
            dropout.set_training(training);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn channel_rounding_matches_torchvision() {
        assert_eq!(make_divisible(32.0), 32);
        assert_eq!(make_divisible(32.0 * 0.5), 16);
        assert_eq!(make_divisible(24.0 * 0.35), 8);
        assert_eq!(make_divisible(1280.0), 1280);
        assert_eq!(make_divisible(96.0 * 0.75), 72);
    }
}
