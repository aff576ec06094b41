//! The depthwise convolutions (groups = C_in = C_out, at most 9 taps) that make up
//! MobileNetV2's 3x3 layers, with kernels of their own (shaders/depthwise.wgsl) that
//! keep every lane busy where the direct kernels give a whole workgroup to one
//! channel of one image. The direct kernels stay the reference these are tested
//! against.

use super::geometry::Conv2dGeometry;
use super::kernels::Launch;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::tensor::{shape_str, DType, Tensor};

/// Invocations per workgroup of the depthwise kernels.
const GROUP: usize = 64;
/// The most taps the kernels keep in registers (shaders/depthwise.wgsl).
const MAX_TAPS: usize = 9;
/// The most input values of a row one invocation keeps in registers.
const MAX_WINDOW: usize = 24;

/// Pixels of a row per invocation where these kernels compute `g`: 8 where maps are
/// wider than 4 pixels, else 4, so long as a row's window of inputs fits the
/// registers; None for the direct kernels (not depthwise, more than 9 taps, or a
/// window too wide).
pub(super) fn pixels(g: &Conv2dGeometry) -> Option<usize> {
    let groups = g.params.groups;
    if groups == 1 || groups != g.cin || groups != g.cout || g.kh * g.kw > MAX_TAPS {
        return None;
    }
    let [_, sw] = g.params.stride;
    let [_, dw] = g.params.dilation;
    let widest = g.wout.max(g.w.div_ceil(sw));
    [8, 4]
        .into_iter()
        .filter(|&pix| pix == 4 || widest > 4)
        .find(|&pix| (pix - 1) * sw + (g.kw - 1) * dw < MAX_WINDOW)
}

/// One dispatch of a depthwise entry point: `units` invocations over `grid`, walking
/// maps of `rows` rows of `blocks` units, `pix` pixels each.
struct Dispatch {
    entry: &'static str,
    pix: usize,
    rows: usize,
    blocks: usize,
    units: usize,
    has_bias: bool,
    grid: [u32; 3],
}

/// A flat grid of `units` invocations (2-D past one dimension's limit).
fn flat_grid(gpu: &Gpu, g: &Conv2dGeometry, units: usize) -> Result<[u32; 3]> {
    let units = u64::try_from(units).map_err(|_| {
        Error::op(
            super::OP,
            format!(
                "input {} is too large to launch",
                shape_str(&g.input_shape())
            ),
        )
    })?;
    Ok(gpu.grid(units, GROUP as u32))
}

fn launch(gpu: &Gpu, g: &Conv2dGeometry, d: Dispatch, buffers: &[&wgpu::Buffer]) -> Result<()> {
    let [sh, sw] = g.params.stride;
    let [dh, dw] = g.params.dilation;
    let constants = [
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("SH", sh as f64),
        ("SW", sw as f64),
        ("DH", dh as f64),
        ("DW", dw as f64),
        ("PIX", d.pix as f64),
        ("ROWS", d.rows as f64),
        ("BLOCKS", d.blocks as f64),
        ("HAS_BIAS", if d.has_bias { 1.0 } else { 0.0 }),
    ];
    let l = Launch {
        kernel: Kernel::new("depthwise", d.entry).with(&constants),
        units: d.units,
        cblocks: 1,
        wblocks: d.blocks,
        batch: g.n,
    };
    gpu.dispatch(&l.kernel, buffers, &g.uniforms(&l)?, d.grid)
}

/// y = conv2d(x, w, bias) for a depthwise `g` at `pix` pixels per invocation.
pub(super) fn forward(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &Conv2dGeometry,
    pix: usize,
) -> Result<Tensor> {
    let out = Tensor::empty(input.gpu(), &g.output_shape(), DType::F32)?;
    let blocks = g.wout.div_ceil(pix);
    let units = g.n * g.cout * g.hout * blocks;
    // Without a bias the kernel never reads its bias binding; the weight fills it.
    let bias_buf = bias.unwrap_or(weight).buffer();
    let buffers = [input.buffer(), weight.buffer(), bias_buf, out.buffer()];
    let d = Dispatch {
        entry: "forward",
        pix,
        rows: g.hout,
        blocks,
        units,
        has_bias: bias.is_some(),
        grid: flat_grid(input.gpu(), g, units)?,
    };
    launch(input.gpu(), g, d, &buffers)?;
    Ok(out)
}

/// The input gradient of a depthwise `g` from the output gradient.
pub(super) fn input_grad(
    grad_out: &Tensor,
    weight: &Tensor,
    g: &Conv2dGeometry,
    pix: usize,
) -> Result<Tensor> {
    let out = Tensor::empty(grad_out.gpu(), &g.input_shape(), DType::F32)?;
    let sw = g.params.stride[1];
    // Blocks of columns of one residue mod the stride, for each residue.
    let blocks = sw * g.w.div_ceil(sw).div_ceil(pix);
    let units = g.n * g.cin * g.h * blocks;
    let buffers = [grad_out.buffer(), weight.buffer(), out.buffer()];
    let d = Dispatch {
        entry: "input_grad",
        pix,
        rows: g.h,
        blocks,
        units,
        has_bias: false,
        grid: flat_grid(grad_out.gpu(), g, units)?,
    };
    launch(grad_out.gpu(), g, d, &buffers)?;
    Ok(out)
}

/// The weight gradient of a depthwise `g` from the output gradient and the input.
pub(super) fn weight_grad(
    grad_out: &Tensor,
    input: &Tensor,
    g: &Conv2dGeometry,
    pix: usize,
) -> Result<Tensor> {
    let out = Tensor::empty(grad_out.gpu(), &g.weight_shape(), DType::F32)?;
    let buffers = [input.buffer(), grad_out.buffer(), out.buffer()];
    let channels = u32::try_from(g.cout).map_err(|_| {
        Error::op(
            super::OP,
            format!("{} channels are too many to launch", g.cout),
        )
    })?;
    let d = Dispatch {
        entry: "weight_grad",
        pix,
        rows: g.hout,
        blocks: g.wout.div_ceil(pix),
        units: g.cout,
        has_bias: false,
        grid: [channels, 1, 1],
    };
    launch(grad_out.gpu(), g, d, &buffers)?;
    Ok(out)
}
