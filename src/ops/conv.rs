//! conv2d as torch.nn.functional.conv2d (shaders/conv2d.wgsl) with its input, weight
//! and bias gradients (shaders/conv2d_backward.wgsl, the bias one a plain sum).

use super::attrs::AttrKind;
use super::reduce::reduce_sum;
use super::spec::{attr, f32_in, InputSpec, OpCall, OpSpec};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::params::Params;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "conv2d";
/// Invocations per workgroup of every conv kernel (weight_grad's are 8 x 8).
const GROUP: usize = 64;
/// Adjacent output (forward) or input (input gradient) pixels per invocation.
const PIXELS: usize = 4;

/// conv2d's attributes, per (height, width) axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Every size of one convolution: input [n, cin, h, w], weight
/// [cout, cin / groups, kh, kw], output [n, cout, hout, wout].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub hout: usize,
    pub wout: usize,
    pub params: Conv2dParams,
}

/// Extent of a dilated kernel (saturating: absurd attributes fail the fit test).
fn span(k: usize, dil: usize) -> usize {
    dil.saturating_mul(k - 1).saturating_add(1)
}

/// Extent of a padded input.
fn padded(size: usize, pad: usize) -> usize {
    size.saturating_add(pad.saturating_mul(2))
}

/// Output size along one axis, or None when the dilated kernel does not fit.
fn out_size(size: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    padded(size, pad)
        .checked_sub(span(k, dil))
        .map(|v| v / stride + 1)
}

impl Conv2dGeometry {
    /// Checks the shapes and attributes of a convolution as PyTorch does.
    pub fn new(input: &[usize], weight: &[usize], p: Conv2dParams) -> Result<Self> {
        let &[n, cin, h, w] = input else {
            return Err(Error::op(
                OP,
                format!(
                    "input must be 4-D [N, C_in, H, W], got {}",
                    shape_str(input)
                ),
            ));
        };
        let &[cout, cg, kh, kw] = weight else {
            return Err(Error::op(
                OP,
                format!(
                    "weight must be 4-D [C_out, C_in/groups, kH, kW], got {}",
                    shape_str(weight)
                ),
            ));
        };
        for (name, shape) in [("input", input), ("weight", weight)] {
            if shape.contains(&0) {
                return Err(Error::op(
                    OP,
                    format!("{name} {} has a zero-sized dim", shape_str(shape)),
                ));
            }
        }
        let g = p.groups;
        if g == 0 {
            return Err(Error::op(OP, "groups must be at least 1, got 0"));
        }
        for (name, v) in [("stride", p.stride), ("dilation", p.dilation)] {
            if v.contains(&0) {
                return Err(Error::op(
                    OP,
                    format!("{name} must be at least 1, got ({}, {})", v[0], v[1]),
                ));
            }
        }
        if !cin.is_multiple_of(g) {
            return Err(Error::op(
                OP,
                format!("input channels {cin} are not divisible by groups={g}"),
            ));
        }
        if !cout.is_multiple_of(g) {
            return Err(Error::op(
                OP,
                format!(
                    "weight {} has {cout} output channels, not divisible by groups={g}",
                    shape_str(weight)
                ),
            ));
        }
        if cg != cin / g {
            return Err(Error::op(
                OP,
                format!(
                    "weight {} takes {cg} input channels per group, but input {} with groups={g} has {}",
                    shape_str(weight),
                    shape_str(input),
                    cin / g
                ),
            ));
        }
        let (s, pd, d) = (p.stride, p.padding, p.dilation);
        let (Some(hout), Some(wout)) = (
            out_size(h, kh, s[0], pd[0], d[0]),
            out_size(w, kw, s[1], pd[1], d[1]),
        ) else {
            return Err(Error::op(
                OP,
                format!(
                    "kernel {kh}x{kw} with dilation ({}, {}) spans {}x{}, larger than the padded input {}x{}",
                    d[0],
                    d[1],
                    span(kh, d[0]),
                    span(kw, d[1]),
                    padded(h, pd[0]),
                    padded(w, pd[1])
                ),
            ));
        };
        Ok(Conv2dGeometry {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            hout,
            wout,
            params: p,
        })
    }

    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }

    pub fn weight_shape(&self) -> [usize; 4] {
        [self.cout, self.cin / self.params.groups, self.kh, self.kw]
    }

    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.cout, self.hout, self.wout]
    }

    /// Input and output channels per group.
    fn group_channels(&self) -> (usize, usize) {
        let g = self.params.groups;
        (self.cin / g, self.cout / g)
    }

    /// The kernels' uniform block: the geometry, then the launch layout of one kernel.
    fn uniforms(&self, l: &Launch) -> Result<Params> {
        let (cg, coutg) = self.group_channels();
        let p = &self.params;
        let mut b = Params::new();
        for v in [
            self.n,
            self.cin,
            self.h,
            self.w,
            self.cout,
            self.hout,
            self.wout,
            self.kh,
            self.kw,
            p.stride[0],
            p.stride[1],
            p.padding[0],
            p.padding[1],
            p.dilation[0],
            p.dilation[1],
            cg,
            coutg,
            l.cblocks,
            l.wblocks,
            l.units,
        ] {
            b = b.idx(OP, v)?;
        }
        Ok(b)
    }
}

/// Floating-point operations of the forward pass (2 per multiply-add); each backward
/// kernel does the same number.
pub fn conv2d_flops(g: &Conv2dGeometry) -> f64 {
    let (cg, _) = g.group_channels();
    [g.n, g.cout, g.hout, g.wout, cg, g.kh, g.kw]
        .iter()
        .fold(2.0, |acc, &v| acc * v as f64)
}

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
struct Launch<'a> {
    kernel: Kernel<'a>,
    units: usize,
    cblocks: usize,
    wblocks: usize,
    batch: usize,
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
    gpu.dispatch(&l.kernel, buffers, uniforms.bytes(), groups)
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
    let (cg, coutg) = g.group_channels();
    // Each step loads CO + CI values for CO * CI products; 8 x 4 still fits the
    // registers, 8 x 8 would not.
    let co = if coutg >= 8 { 8 } else { channel_block(coutg) };
    let ci = channel_block(cg);
    let out = Tensor::empty(grad_out.gpu(), &g.weight_shape(), DType::F32)?;
    let constants = [("CO", co as f64), ("CI", ci as f64)];
    let l = Launch {
        kernel: Kernel::new("conv2d_backward", "weight_grad").with(&constants),
        // One workgroup per (tap, input-channel block).
        units: cg.div_ceil(ci) * g.kh * g.kw * GROUP,
        cblocks: coutg.div_ceil(co),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(input: &[usize], weight: &[usize], p: Conv2dParams) -> String {
        match Conv2dGeometry::new(input, weight, p) {
            Ok(g) => format!("{:?}", g.output_shape()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        let p = Conv2dParams {
            stride: [2, 1],
            padding: [6, 1],
            dilation: [6, 2],
            groups: 2,
        };
        // H: (9 + 12 - 13) / 2 + 1 = 5; W: (8 + 2 - 3) / 1 + 1 = 8.
        assert_eq!(geometry(&[1, 4, 9, 8], &[6, 2, 3, 2], p), "[1, 6, 5, 8]");
    }

    #[test]
    fn bad_shapes_are_named() {
        let d = Conv2dParams::default();
        let g2 = Conv2dParams { groups: 2, ..d };
        let cases = [
            (geometry(&[3, 8, 8], &[4, 3, 3, 3], d), "input must be 4-D"),
            (geometry(&[1, 3, 8, 8], &[4, 3, 3], d), "weight must be 4-D"),
            (
                geometry(&[1, 3, 8, 8], &[4, 1, 3, 3], g2),
                "not divisible by groups=2",
            ),
            (
                geometry(&[1, 4, 8, 8], &[3, 2, 3, 3], g2),
                "3 output channels, not divisible",
            ),
            (
                geometry(&[1, 4, 8, 8], &[4, 4, 3, 3], g2),
                "takes 4 input channels per group",
            ),
            (
                geometry(&[1, 3, 2, 8], &[4, 3, 3, 3], d),
                "larger than the padded input 2x8",
            ),
            (
                geometry(
                    &[1, 3, 8, 8],
                    &[4, 3, 3, 3],
                    Conv2dParams {
                        stride: [0, 1],
                        ..d
                    },
                ),
                "stride must be at least 1",
            ),
        ];
        for (got, want) in cases {
            assert!(got.contains(want), "{got:?} should mention {want:?}");
        }
    }

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

    /// Forward, input gradient and weight gradient by the direct loops, in f64.
    fn direct(g: &Conv2dGeometry, x: &[f32], w: &[f32], gy: &[f32]) -> [Vec<f64>; 3] {
        let p = g.params;
        let (cg, coutg) = g.group_channels();
        let mut y = vec![0.0; gy.len()];
        let mut gx = vec![0.0; x.len()];
        let mut gw = vec![0.0; w.len()];
        for n in 0..g.n {
            for co in 0..g.cout {
                for oh in 0..g.hout {
                    for ow in 0..g.wout {
                        let yi = ((n * g.cout + co) * g.hout + oh) * g.wout + ow;
                        for c in 0..cg {
                            let ci = co / coutg * cg + c;
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let ih = (oh * p.stride[0] + ky * p.dilation[0])
                                        .checked_sub(p.padding[0])
                                        .filter(|&v| v < g.h);
                                    let iw = (ow * p.stride[1] + kx * p.dilation[1])
                                        .checked_sub(p.padding[1])
                                        .filter(|&v| v < g.w);
                                    let (Some(ih), Some(iw)) = (ih, iw) else {
                                        continue;
                                    };
                                    let xi = ((n * g.cin + ci) * g.h + ih) * g.w + iw;
                                    let wi = ((co * cg + c) * g.kh + ky) * g.kw + kx;
                                    y[yi] += x[xi] as f64 * w[wi] as f64;
                                    gx[xi] += gy[yi] as f64 * w[wi] as f64;
                                    gw[wi] += gy[yi] as f64 * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, gx, gw]
    }

    fn assert_close(what: &str, got: &[f32], want: &[f64]) {
        let err: f64 = got
            .iter()
            .zip(want)
            .map(|(&a, b)| (a as f64 - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!(err <= 1e-5 * norm, "{what}: error {err} vs norm {norm}");
    }

    /// Shapes that span several workgroups and channel blocks, which the gradient
    /// checks' small cases do not.
    #[test]
    fn kernels_match_direct_loops_across_workgroups() {
        let gpu = Gpu::shared().unwrap();
        let cases = [
            (
                [2, 8, 21, 35],
                [20, 4, 3, 2],
                Conv2dParams {
                    stride: [1, 2],
                    padding: [2, 1],
                    dilation: [2, 3],
                    groups: 2,
                },
            ),
            (
                [1, 6, 23, 22],
                [6, 1, 3, 3],
                Conv2dParams {
                    stride: [2, 2],
                    padding: [6, 6],
                    dilation: [6, 6],
                    groups: 6,
                },
            ),
        ];
        for (input, weight, p) in cases {
            let g = Conv2dGeometry::new(&input, &weight, p).unwrap();
            let values = |len: usize, k: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * k + 3) % 17) as f32 / 8.0 - 1.0)
                    .collect()
            };
            let x = values(input.iter().product(), 7);
            let w = values(weight.iter().product(), 5);
            let gy = values(g.output_shape().iter().product(), 11);
            let [y, gx, gw] = direct(&g, &x, &w, &gy);
            let xt = Tensor::from_slice(&gpu, &x, &input).unwrap();
            let wt = Tensor::from_slice(&gpu, &w, &weight).unwrap();
            let gyt = Tensor::from_slice(&gpu, &gy, &g.output_shape()).unwrap();
            let got = |t: Result<Tensor>| t.unwrap().to_vec().unwrap();
            assert_close("forward", &got(conv2d(&xt, &wt, None, p)), &y);
            assert_close(
                "input grad",
                &got(conv2d_backward_input(&gyt, &wt, &g)),
                &gx,
            );
            assert_close(
                "weight grad",
                &got(conv2d_backward_weight(&gyt, &xt, &g)),
                &gw,
            );
        }
    }
}
