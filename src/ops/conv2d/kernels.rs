//! The conv2d kernels: the forward with its fused bias, and the input, weight and
//! bias gradients, each a launch of blocks of channels and pixels per invocation.

use super::geometry::Conv2dGeometry;
use super::{depthwise, pointwise};
use super::{Conv2dParams, OP};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::ops::reduce::reduce_sum;
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

/// Invocations per workgroup of every conv kernel (weight_grad's are 8 x 8).
const GROUP: usize = 64;
/// Adjacent output (forward) or input (input gradient) pixels per invocation.
const PIXELS: usize = 4;

fn expect_shape(name: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    if t.shape() != want {
        return Err(Error::op(
            OP,
            format!(
                "{name} must have shape {}, got {}",
                shape_str(want),
                shape_str(t.shape())
            ),
        ));
    }
    Ok(())
}

/// How one kernel spreads over invocations: `units` along x (in workgroups of
/// [`GROUP`]), groups x `cblocks` channel blocks along y and `batch` along z.
pub(super) struct Launch<'a> {
    pub kernel: Kernel<'a>,
    pub units: usize,
    pub cblocks: usize,
    pub wblocks: usize,
    pub batch: usize,
}

fn launch(gpu: &Gpu, g: &Conv2dGeometry, l: Launch, buffers: &[&wgpu::Buffer]) -> Result<()> {
    let uniforms = g.uniforms(&l)?;
    let sizes = [
        l.units.div_ceil(GROUP),
        g.params.groups * l.cblocks,
        l.batch,
    ];
    let mut groups = [0u32; 3];
    for (dst, v) in groups.iter_mut().zip(sizes) {
        *dst = u32::try_from(v).map_err(|_| {
            Error::op(
                OP,
                format!(
                    "input {} is too large to launch",
                    shape_str(&g.input_shape())
                ),
            )
        })?;
    }
    gpu.dispatch(&l.kernel, buffers, &uniforms, groups)
}

/// Channels one invocation sums over a group of `channels`: a whole block of 4 unless
/// the group has a single channel (depthwise), where 3 of 4 would be wasted.
fn channel_block(channels: usize) -> usize {
    if channels == 1 {
        1
    } else {
        4
    }
}

/// Whether weight_grad should give each invocation whole maps: when an output map has
/// at most one pixel per invocation of an 8x8 split, and the (tap, channel block)
/// units alone, `units` per group, still fill a thousand invocations.
fn serial_weight_grad(g: &Conv2dGeometry, units: usize) -> bool {
    g.hout * g.wout <= 64 && units * g.params.groups >= 1024
}

/// torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups).
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    p: Conv2dParams,
) -> Result<Tensor> {
    expect_f32(OP, "input", input)?;
    expect_f32(OP, "weight", weight)?;
    let g = Conv2dGeometry::new(input.shape(), weight.shape(), p)?;
    if let Some(b) = bias {
        expect_f32(OP, "bias", b)?;
        expect_shape("bias", b, &[g.cout])?;
    }
    if bias.is_none() && pointwise::applies(&g) {
        return pointwise::forward(input, weight, &g);
    }
    if let Some(pix) = depthwise::pixels(&g) {
        return depthwise::forward(input, weight, bias, &g, pix);
    }
    let (_, coutg) = g.group_channels();
    let cb = channel_block(coutg);
    let wblocks = g.wout.div_ceil(PIXELS);
    let out = Tensor::empty(input.gpu(), &g.output_shape(), DType::F32)?;
    // Without a bias the kernel never reads its bias binding; the weight fills it.
    let bias_buf = bias.unwrap_or(weight).buffer();
    let constants = [
        ("CB", cb as f64),
        ("HAS_BIAS", if bias.is_some() { 1.0 } else { 0.0 }),
    ];
    let l = Launch {
        kernel: Kernel::new("conv2d", "forward").with(&constants),
        units: g.hout * wblocks,
        cblocks: coutg.div_ceil(cb),
        wblocks,
        batch: g.n,
    };
    let buffers = [input.buffer(), weight.buffer(), bias_buf, out.buffer()];
    launch(input.gpu(), &g, l, &buffers)?;
    Ok(out)
}

/// Gradient of conv2d with respect to its input, from the output gradient.
pub fn conv2d_backward_input(
    grad_out: &Tensor,
    weight: &Tensor,
    g: &Conv2dGeometry,
) -> Result<Tensor> {
    expect_shape("grad_output", grad_out, &g.output_shape())?;
    expect_shape("weight", weight, &g.weight_shape())?;
    if pointwise::applies(g) {
        return pointwise::input_grad(grad_out, weight, g);
    }
    if let Some(pix) = depthwise::pixels(g) {
        return depthwise::input_grad(grad_out, weight, g, pix);
    }
    let (cg, _) = g.group_channels();
    let cb = channel_block(cg);
    let sw = g.params.stride[1];
    // Columns are grouped by residue mod the stride, PIXELS per block.
    let wblocks = sw * g.w.div_ceil(sw).div_ceil(PIXELS);
    let out = Tensor::empty(grad_out.gpu(), &g.input_shape(), DType::F32)?;
    let constants = [("CB", cb as f64)];
    let l = Launch {
        kernel: Kernel::new("conv2d_backward", "input_grad").with(&constants),
        units: g.h * wblocks,
        cblocks: cg.div_ceil(cb),
        wblocks,
        batch: g.n,
    };
    let buffers = [grad_out.buffer(), weight.buffer(), out.buffer()];
    launch(grad_out.gpu(), g, l, &buffers)?;
    Ok(out)
}

/// Gradient of conv2d with respect to its weight, from the output gradient and input.
pub fn conv2d_backward_weight(
    grad_out: &Tensor,
    input: &Tensor,
    g: &Conv2dGeometry,
) -> Result<Tensor> {
    expect_shape("grad_output", grad_out, &g.output_shape())?;
    expect_shape("input", input, &g.input_shape())?;
    if pointwise::applies(g) {
        return pointwise::weight_grad(grad_out, input, g);
    }
    if let Some(pix) = depthwise::pixels(g) {
        return depthwise::weight_grad(grad_out, input, g, pix);
    }
    let (cg, coutg) = g.group_channels();
    // Each step loads CO + CI values for CO * CI products; 8 x 4 still fits the
    // registers, 8 x 8 would not.
    let co = if coutg >= 8 { 8 } else { channel_block(coutg) };
    let ci = channel_block(cg);
    let out = Tensor::empty(grad_out.gpu(), &g.weight_shape(), DType::F32)?;
    let blocks = cg.div_ceil(ci) * g.kh * g.kw;
    let cblocks = coutg.div_ceil(co);
    let serial = serial_weight_grad(g, blocks * cblocks);
    let constants = [
        ("CO", co as f64),
        ("CI", ci as f64),
        ("SERIAL", if serial { 1.0 } else { 0.0 }),
    ];
    let l = Launch {
        kernel: Kernel::new("conv2d_backward", "weight_grad").with(&constants),
        // One workgroup per (tap, input-channel block), or one invocation (serial).
        units: if serial { blocks } else { blocks * GROUP },
        cblocks,
        wblocks: 1,
        batch: 1,
    };
    let buffers = [grad_out.buffer(), input.buffer(), out.buffer()];
    launch(grad_out.gpu(), g, l, &buffers)?;
    Ok(out)
}

/// Gradient of conv2d with respect to its bias: the output gradient summed over
/// batch and pixels.
pub fn conv2d_backward_bias(grad_out: &Tensor) -> Result<Tensor> {
    reduce_sum(OP, grad_out, &[0, 2, 3], false, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_filter_with_padding_and_bias() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[1.0; 9], &[1, 1, 3, 3]).unwrap();
        let w = Tensor::from_slice(&gpu, &[1.0; 9], &[1, 1, 3, 3]).unwrap();
        let b = Tensor::from_slice(&gpu, &[0.5], &[1]).unwrap();
        let p = Conv2dParams {
            padding: [1, 1],
            ..Conv2dParams::default()
        };
        let y = conv2d(&x, &w, Some(&b), p).unwrap().to_vec().unwrap();
        assert_eq!(y, [4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);
        let wrong_bias = Tensor::from_slice(&gpu, &[0.0; 2], &[2]).unwrap();
        let e = conv2d(&x, &w, Some(&wrong_bias), p).unwrap_err();
        assert!(e.to_string().contains("bias must have shape [1]"), "{e}");
    }
}
