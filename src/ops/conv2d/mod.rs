//! conv2d as torch.nn.functional.conv2d (shaders/conv2d.wgsl) with its input, weight
//! and bias gradients (shaders/conv2d_backward.wgsl, the bias one a plain sum):
//! geometry.rs checks the shapes and lays out the launch, kernels.rs dispatches (1x1
//! convolutions as matmuls, pointwise.rs), and this file records them on the tape and
//! in the op table.

mod depthwise;
mod geometry;
mod kernels;
mod pointwise;

pub use geometry::{conv2d_flops, Conv2dGeometry, Conv2dParams};
pub use kernels::{conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight};

use super::attrs::AttrKind;
use super::spec::{attr, f32_in, InputSpec, OpCall, OpSpec};
use crate::autograd::Var;
use crate::error::{Error, Result};

const OP: &str = "conv2d";

impl Var {
    /// torch.nn.functional.conv2d(self, weight, bias, stride, padding, dilation, groups).
    pub fn conv2d(
        &self,
        weight: &Var,
        bias: Option<&Var>,
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<Var> {
        let p = Conv2dParams {
            stride,
            padding,
            dilation,
            groups,
        };
        let (x, w) = (self.value(), weight.value());
        let b = bias.map(|b| b.value());
        let out = conv2d(&x, &w, b.as_ref(), p)?;
        let geom = Conv2dGeometry::new(x.shape(), w.shape(), p)?;
        let mut parents = vec![self, weight];
        parents.extend(bias);
        // Gradients nobody asked for (an image input's, a frozen weight's) are not computed.
        let wants: Vec<bool> = parents.iter().map(|v| v.requires_grad()).collect();
        Ok(Var::from_op(out, &parents, move |gy| {
            let mut grads = vec![
                wants[0]
                    .then(|| conv2d_backward_input(gy, &w, &geom))
                    .transpose()?,
                wants[1]
                    .then(|| conv2d_backward_weight(gy, &x, &geom))
                    .transpose()?,
            ];
            if wants.len() == 3 {
                grads.push(wants[2].then(|| conv2d_backward_bias(gy)).transpose()?);
            }
            Ok(grads)
        }))
    }
}

fn pair(c: &OpCall, name: &str) -> Result<[usize; 2]> {
    let v = c.attrs.ints(name)?;
    let to = |x: i64| {
        usize::try_from(x)
            .map_err(|_| Error::op(OP, format!("{name} must be non-negative, got {x}")))
    };
    match v.as_slice() {
        &[a, b] => Ok([to(a)?, to(b)?]),
        _ => Err(Error::op(OP, format!("{name} must be an int pair"))),
    }
}

fn run(c: &OpCall) -> Result<Var> {
    let groups = c.attrs.int("groups")?;
    let groups = usize::try_from(groups)
        .map_err(|_| Error::op(OP, format!("groups must be at least 1, got {groups}")))?;
    c.input("input")?.conv2d(
        c.input("weight")?,
        c.opt_input("bias"),
        pair(c, "stride")?,
        pair(c, "padding")?,
        pair(c, "dilation")?,
        groups,
    )
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "conv2d",
    summary: "2-D convolution of [N, C_in, H, W] by [C_out, C_in/groups, kH, kW] (+ bias)",
    inputs: &[
        f32_in("input"),
        f32_in("weight"),
        InputSpec {
            optional: true,
            ..f32_in("bias")
        },
    ],
    attrs: &[
        attr("stride", AttrKind::Pair, Some("1")),
        attr("padding", AttrKind::Pair, Some("0")),
        attr("dilation", AttrKind::Pair, Some("1")),
        attr("groups", AttrKind::Int, Some("1")),
    ],
    run,
}];
