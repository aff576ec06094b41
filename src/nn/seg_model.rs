//! The segmentation network an experiment trains, and its `model` section: a
//! backbone (dilated ResNet or MobileNetV2), a DeepLabV3 head, and bilinear
//! upsampling to the input size. State names are `backbone.<torchvision name>` and
//! `head.<name>`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::aspp::deeplab_head;
use super::builder::Builder;
use super::checkpoint;
use super::mobilenet::{MobileNetV2, FEATURE_LAYERS};
use super::module::{join, Module, Sequential, State};
use super::resnet::{Depth, ResNet};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::ops::interpolate::InterpolateMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneKind {
    Resnet,
    MobilenetV2,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCfg {
    pub backbone: BackboneKind,
    /// ResNet depth: 18, 34 or 50.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Channel multiplier (1.0 = the published network).
    #[serde(default = "full_width")]
    pub width: f64,
    /// 8, 16 or 32.
    #[serde(default = "default_output_stride")]
    pub output_stride: usize,
    /// ASPP dilation rates of the DeepLabV3 head.
    #[serde(default = "default_aspp_rates")]
    pub aspp_rates: Vec<usize>,
    /// Channels inside the head.
    #[serde(default = "default_hidden")]
    pub head_channels: usize,
    /// Output channels of the head (embedding dimension).
    #[serde(default = "default_embed")]
    pub embed_dim: usize,
    /// Dropout probability after the ASPP projection (torchvision's DeepLabV3: 0.5);
    /// 0 leaves it out.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// MobileNetV2 only: how many of torchvision's 19 `features` layers to keep
    /// (default all); 14 ends on the 96-channel blocks at stride 16.
    #[serde(default)]
    pub feature_layers: Option<usize>,
    /// A safetensors checkpoint with PyTorch state_dict names for the backbone.
    pub pretrained: Option<PathBuf>,
}

fn default_depth() -> usize {
    50
}
fn full_width() -> f64 {
    1.0
}
fn default_output_stride() -> usize {
    8
}
fn default_aspp_rates() -> Vec<usize> {
    vec![12, 24, 36]
}
fn default_hidden() -> usize {
    256
}
fn default_dropout() -> f64 {
    0.5
}
fn default_embed() -> usize {
    32
}

pub enum Backbone {
    ResNet(ResNet),
    MobileNet(MobileNetV2),
}

impl Backbone {
    fn module(&self) -> &dyn Module {
        match self {
            Backbone::ResNet(r) => r,
            Backbone::MobileNet(m) => m,
        }
    }

    fn out_channels(&self) -> usize {
        match self {
            Backbone::ResNet(r) => r.out_channels(),
            Backbone::MobileNet(m) => m.out_channels(),
        }
    }
}

pub struct SegModel {
    pub backbone: Backbone,
    pub head: Sequential,
    pub out_channels: usize,
}

impl SegModel {
    /// Builds the network of `cfg` with `out_channels` outputs, weights from `seed`,
    /// and the backbone loaded from `cfg.pretrained` when given.
    pub fn build(b: &mut Builder, cfg: &ModelCfg, out_channels: usize) -> Result<SegModel> {
        if !(0.0..1.0).contains(&cfg.dropout) {
            return Err(Error::Usage(format!(
                "model.dropout: {} must lie in [0, 1)",
                cfg.dropout
            )));
        }
        let backbone = match cfg.backbone {
            BackboneKind::Resnet if cfg.feature_layers.is_some() => {
                return Err(Error::Usage(
                    "model.feature_layers applies to backbone: mobilenet_v2 only".into(),
                ))
            }
            BackboneKind::Resnet => Backbone::ResNet(ResNet::new(
                b,
                Depth::parse(cfg.depth)?,
                cfg.output_stride,
                cfg.width,
            )?),
            BackboneKind::MobilenetV2 => Backbone::MobileNet(MobileNetV2::features_only(
                b,
                cfg.width,
                cfg.output_stride,
                cfg.feature_layers.unwrap_or(FEATURE_LAYERS),
            )?),
        };
        let head = deeplab_head(
            b,
            backbone.out_channels(),
            &cfg.aspp_rates,
            cfg.head_channels,
            out_channels,
            cfg.dropout,
        )?;
        let model = SegModel {
            backbone,
            head,
            out_channels,
        };
        if let Some(path) = &cfg.pretrained {
            model.load_backbone(path)?;
        }
        Ok(model)
    }

    /// Loads backbone weights with PyTorch state_dict names (extra tensors such as
    /// an ImageNet classifier are ignored; missing or mis-shaped ones are errors).
    pub fn load_backbone(&self, path: &Path) -> Result<()> {
        checkpoint::load(self.backbone.module(), path, false)
            .map(drop)
            .map_err(|e| Error::Usage(format!("model.pretrained: {e}")))
    }

    /// Channels of the backbone's output.
    pub fn feature_channels(&self) -> usize {
        self.backbone.out_channels()
    }

    /// The backbone's output [B, feature_channels, S / stride, S / stride].
    pub fn features(&self, x: &Var) -> Result<Var> {
        self.backbone.module().forward(x)
    }

    /// The head's output for the backbone `features` of images `x`, upsampled
    /// (bilinear) to their size: `forward(x)` with the features at hand.
    pub fn logits(&self, features: &Var, x: &Var) -> Result<Var> {
        let s = x.shape();
        self.head.forward(features)?.interpolate(
            Some([s[2], s[3]]),
            None,
            InterpolateMode::Bilinear,
            false,
        )
    }

    /// Head output at backbone resolution.
    pub fn forward_low(&self, x: &Var) -> Result<Var> {
        self.head.forward(&self.features(x)?)
    }
}

impl Module for SegModel {
    /// Head output upsampled (bilinear) to the input's size.
    fn forward(&self, x: &Var) -> Result<Var> {
        self.logits(&self.features(x)?, x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, State)) {
        self.backbone.module().visit(&join(prefix, "backbone"), f);
        self.head.visit(&join(prefix, "head"), f);
    }

    fn set_training(&self, training: bool) {
        self.backbone.module().set_training(training);
        self.head.set_training(training);
    }
}
