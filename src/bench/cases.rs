//! The benchmark cases, per op family.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{BenchCase, Run, Work};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::loss::mask_infonce::MaskInfoNce;
use crate::loss::pixel_contrast::{Memory, PixelContrast};
use crate::loss::proto_contrast::{proto_contrast, proto_contrast_backward};
use crate::nn::init::uniform;
use crate::ops::conv2d::{
    conv2d, conv2d_backward_input, conv2d_backward_weight, conv2d_flops, Conv2dGeometry,
    Conv2dParams,
};
use crate::ops::kernels;
use crate::ops::l2_normalize::l2_normalize;
use crate::tensor::Tensor;

fn random(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
    uniform(gpu, &mut StdRng::seed_from_u64(7), shape, 1.0)
}

fn matmul_case(m: usize, k: usize, n: usize) -> BenchCase {
    BenchCase {
        name: "matmul",
        shape: format!("{m}x{k} @ {k}x{n}"),
        work: Work::Flops(2.0 * (m * k * n) as f64),
        prepare: Box::new(move |gpu| {
            let (a, b) = (random(gpu, &[m, k])?, random(gpu, &[k, n])?);
            let run: Run = Box::new(move || kernels::matmul(&a, &b).map(drop));
            Ok(run)
        }),
    }
}

fn add_case(n: usize) -> BenchCase {
    BenchCase {
        name: "add",
        shape: format!("{n} + {n}"),
        work: Work::Bytes(12.0 * n as f64),
        prepare: Box::new(move |gpu| {
            let (a, b) = (random(gpu, &[n])?, random(gpu, &[n])?);
            let run: Run = Box::new(move || kernels::add(&a, &b).map(drop));
            Ok(run)
        }),
    }
}

fn softmax_case(rows: usize, n: usize) -> BenchCase {
    BenchCase {
        name: "softmax",
        shape: format!("[{rows}, {n}] dim=1"),
        work: Work::Bytes(8.0 * (rows * n) as f64),
        prepare: Box::new(move |gpu| {
            let x = random(gpu, &[rows, n])?;
            let run: Run = Box::new(move || kernels::softmax(&x, 1, false).map(drop));
            Ok(run)
        }),
    }
}

fn sum_case(rows: usize, n: usize) -> BenchCase {
    BenchCase {
        name: "sum",
        shape: format!("[{rows}, {n}] dim=1"),
        work: Work::Bytes(4.0 * (rows * n) as f64),
        prepare: Box::new(move |gpu| {
            let x = random(gpu, &[rows, n])?;
            let run: Run =
                Box::new(move || kernels::reduce_sum("sum", &x, &[1], false, 1.0).map(drop));
            Ok(run)
        }),
    }
}

/// Which pass of a convolution a case times.
#[derive(Clone, Copy)]
enum ConvPass {
    Forward,
    BackwardInput,
    BackwardWeight,
    /// The three passes of a training step, FLOPs counted as 3x the forward (as the
    /// issue's peer figures are).
    ForwardBackward,
}

/// One convolution layer of the benchmarks: input [n, cin, size, size], a k x k
/// kernel, padding = dilation for 3x3 (same-size output at stride 1).
#[derive(Clone, Copy)]
struct ConvLayer {
    n: usize,
    cin: usize,
    cout: usize,
    size: usize,
    k: usize,
    dilation: usize,
    stride: usize,
    groups: usize,
}

impl ConvLayer {
    const fn dense(n: usize, cin: usize, cout: usize, size: usize, k: usize, d: usize) -> Self {
        ConvLayer {
            n,
            cin,
            cout,
            size,
            k,
            dilation: d,
            stride: 1,
            groups: 1,
        }
    }

    /// A 3x3 depthwise layer of MobileNetV2 (one channel per group).
    const fn depthwise(n: usize, channels: usize, size: usize, stride: usize) -> Self {
        ConvLayer {
            n,
            cin: channels,
            cout: channels,
            size,
            k: 3,
            dilation: 1,
            stride,
            groups: channels,
        }
    }

    /// "N4 32->32 64x64 3x3 d1", with " s2" and " g96" where they are not 1.
    fn label(&self) -> String {
        let ConvLayer {
            n,
            cin,
            cout,
            size,
            k,
            dilation,
            stride,
            groups,
        } = *self;
        let mut s = format!("N{n} {cin}->{cout} {size}x{size} {k}x{k} d{dilation}");
        if stride > 1 {
            s += &format!(" s{stride}");
        }
        if groups > 1 {
            s += &format!(" g{groups}");
        }
        s
    }
}

/// One pass of `layer`, FLOPs counted as 2 * MACs of the forward.
fn conv_case(pass: ConvPass, layer: ConvLayer) -> BenchCase {
    let padding = if layer.k == 3 { layer.dilation } else { 0 };
    let p = Conv2dParams {
        stride: [layer.stride; 2],
        padding: [padding; 2],
        dilation: [layer.dilation; 2],
        groups: layer.groups,
    };
    let input = [layer.n, layer.cin, layer.size, layer.size];
    let weight = [layer.cout, layer.cin / layer.groups, layer.k, layer.k];
    let geometry = Conv2dGeometry::new(&input, &weight, p).expect("valid benchmark geometry");
    let depthwise = layer.groups > 1 && layer.groups == layer.cin;
    let name = match (pass, depthwise) {
        (ConvPass::Forward, false) => "conv2d forward",
        (ConvPass::BackwardInput, false) => "conv2d backward-data",
        (ConvPass::BackwardWeight, false) => "conv2d backward-weight",
        (ConvPass::ForwardBackward, false) => "conv2d forward+backward",
        (ConvPass::Forward, true) => "depthwise forward",
        (ConvPass::BackwardInput, true) => "depthwise backward-data",
        (ConvPass::BackwardWeight, true) => "depthwise backward-weight",
        (ConvPass::ForwardBackward, true) => "depthwise forward+backward",
    };
    let passes = if matches!(pass, ConvPass::ForwardBackward) {
        3.0
    } else {
        1.0
    };
    BenchCase {
        name,
        shape: layer.label(),
        work: Work::Flops(passes * conv2d_flops(&geometry)),
        prepare: Box::new(move |gpu| {
            let (x, w) = (random(gpu, &input)?, random(gpu, &weight)?);
            let g = random(gpu, &geometry.output_shape())?;
            let run: Run = match pass {
                ConvPass::Forward => Box::new(move || conv2d(&x, &w, None, p).map(drop)),
                ConvPass::BackwardInput => {
                    Box::new(move || conv2d_backward_input(&g, &w, &geometry).map(drop))
                }
                ConvPass::BackwardWeight => {
                    Box::new(move || conv2d_backward_weight(&g, &x, &geometry).map(drop))
                }
                ConvPass::ForwardBackward => Box::new(move || {
                    conv2d(&x, &w, None, p)?;
                    conv2d_backward_input(&g, &w, &geometry)?;
                    conv2d_backward_weight(&g, &x, &geometry).map(drop)
                }),
            };
            Ok(run)
        }),
    }
}

/// The convolution layers of the vision-ops benchmarks, then MobileNetV2's depthwise
/// layers at the quickstart's batch and 64-px images, each pass.
fn conv_cases() -> Vec<BenchCase> {
    let layers = [
        ConvLayer::dense(4, 32, 32, 64, 3, 1),
        ConvLayer::dense(4, 32, 32, 64, 3, 2),
        ConvLayer::dense(2, 64, 64, 32, 3, 6),
        ConvLayer::dense(4, 256, 32, 32, 1, 1),
        ConvLayer::depthwise(8, 96, 32, 2),
        ConvLayer::depthwise(8, 144, 16, 1),
        ConvLayer::depthwise(8, 384, 4, 1),
    ];
    let mut out = Vec::new();
    for layer in layers {
        for pass in [
            ConvPass::Forward,
            ConvPass::BackwardInput,
            ConvPass::BackwardWeight,
            ConvPass::ForwardBackward,
        ] {
            out.push(conv_case(pass, layer));
        }
    }
    out
}

/// MaskContrast's fused loss on B images of D-dim embeddings at size x size with a
/// K-entry queue; every pixel salient. FLOPs: 2*P*(B+K)*D for the logits of the
/// forward; the backward recomputes them and forms both gradients (3x).
fn infonce_case(backward: bool, b: usize, d: usize, size: usize, k: usize) -> BenchCase {
    let pixels = b * size * size;
    let logits = 2.0 * (pixels * (b + k) * d) as f64;
    BenchCase {
        name: if backward {
            "mask_infonce backward"
        } else {
            "mask_infonce forward"
        },
        shape: format!("B{b} D{d} {size}x{size} K{k}"),
        work: Work::Flops(if backward { 3.0 * logits } else { logits }),
        prepare: Box::new(move |gpu| {
            let q = l2_normalize(&random(gpu, &[b, d, size, size])?, 1, 1e-12)?;
            let keys = l2_normalize(&random(gpu, &[b, d])?, 1, 1e-12)?;
            let queue = l2_normalize(&random(gpu, &[k, d])?, 1, 1e-12)?;
            let mask = kernels::full(gpu, &[b, size, size], 1.0)?;
            let loss = MaskInfoNce::new(&q, &mask, &keys, Some(&queue), 0.5)?;
            let one = kernels::full(gpu, &[], 1.0)?;
            let run: Run = if backward {
                let saved = loss.forward()?;
                Box::new(move || {
                    loss.query_grad(&saved, &one)?;
                    loss.key_grad(&saved, &one).map(drop)
                })
            } else {
                Box::new(move || loss.forward().map(drop))
            };
            Ok(run)
        }),
    }
}

/// Labels 0..classes, cycling, on the GPU.
fn labels(gpu: &Gpu, n: usize, classes: usize) -> Result<Tensor> {
    let v: Vec<u32> = (0..n).map(|i| ((i * 7919) % classes) as u32).collect();
    Tensor::from_u32(gpu, &v, &[n])
}

/// Pixel-prototype contrast on B x D x size^2 features and C prototypes. FLOPs: the
/// cosine logits, 2*P*C*D; the backward forms both gradients from them (2x).
fn proto_case(backward: bool, b: usize, d: usize, size: usize, c: usize) -> BenchCase {
    let logits = 2.0 * (b * size * size * c * d) as f64;
    BenchCase {
        name: if backward {
            "proto_contrast backward"
        } else {
            "proto_contrast forward"
        },
        shape: format!("B{b} D{d} {size}x{size} C{c}"),
        work: Work::Flops(if backward { 2.0 * logits } else { logits }),
        prepare: Box::new(move |gpu| {
            let f = random(gpu, &[b, d, size, size])?;
            let p = random(gpu, &[c, d])?;
            let t = labels(gpu, b * size * size, c)?.reshape(&[b, size, size])?;
            let one = kernels::full(gpu, &[], 1.0)?;
            let run: Run = if backward {
                let (_, saved) = proto_contrast(&f, &p, &t, 10.0, 255)?;
                Box::new(move || proto_contrast_backward(&saved, &one, true).map(drop))
            } else {
                Box::new(move || proto_contrast(&f, &p, &t, 10.0, 255).map(drop))
            };
            Ok(run)
        }),
    }
}

/// Supervised pixel contrast of N anchors against themselves and M memory entries.
/// FLOPs: 2*N*(N+M)*D similarities, computed twice in the forward (two passes) and
/// about three times in the backward.
fn pixel_contrast_case(backward: bool, n: usize, d: usize, m: usize) -> BenchCase {
    let sims = 2.0 * (n * (n + m) * d) as f64;
    BenchCase {
        name: if backward {
            "pixel_contrast backward"
        } else {
            "pixel_contrast forward"
        },
        shape: format!("N{n} D{d} M{m}"),
        work: Work::Flops(if backward { 3.0 * sims } else { 2.0 * sims }),
        prepare: Box::new(move |gpu| {
            let f = l2_normalize(&random(gpu, &[n, d])?, 1, 1e-12)?;
            let memory = Memory {
                features: l2_normalize(&random(gpu, &[m, d])?, 1, 1e-12)?,
                labels: labels(gpu, m, 19)?,
            };
            let loss = PixelContrast::new(f, labels(gpu, n, 19)?, Some(memory), 0.1, 0.07)?;
            let one = kernels::full(gpu, &[], 1.0)?;
            let run: Run = if backward {
                let fwd = loss.forward()?;
                Box::new(move || loss.backward(&fwd, &one).map(drop))
            } else {
                Box::new(move || loss.forward().map(drop))
            };
            Ok(run)
        }),
    }
}

/// Every case, in table order.
pub fn all() -> Vec<BenchCase> {
    let mut cases = conv_cases();
    for k in [128, 1024] {
        cases.push(infonce_case(false, 8, 32, 64, k));
        cases.push(infonce_case(true, 8, 32, 64, k));
    }
    for backward in [false, true] {
        cases.push(proto_case(backward, 4, 64, 64, 19));
    }
    for backward in [false, true] {
        cases.push(pixel_contrast_case(backward, 1024, 256, 5000));
    }
    cases.extend([
        matmul_case(512, 512, 512),
        matmul_case(1024, 256, 1024),
        add_case(1 << 22),
        softmax_case(4096, 1000),
        sum_case(256, 16384),
    ]);
    cases
}
