//! 2-D pooling with torch.nn.functional's semantics: max_pool2d, avg_pool2d and
//! adaptive_avg_pool2d over [N, C, H, W] or [C, H, W] inputs (shaders/pool.wgsl).
//! max_pool2d saves its argmax (plane-local `h * W + w`, like PyTorch's
//! return_indices) as a u32 tensor for backward.

use super::attrs::{AttrKind, AttrSpec};
use super::spec::{attr, OpCall, OpSpec, INPUT};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

/// Window geometry of max_pool2d / avg_pool2d, as (height, width) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel_size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

impl Pool2d {
    /// PyTorch's defaults: stride = kernel_size, no padding, no dilation, floor mode.
    pub fn new(kernel_size: [usize; 2]) -> Self {
        Pool2d {
            kernel_size,
            stride: kernel_size,
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
        }
    }
}

/// PyTorch's pooling_output_shape along one axis (may be < 1: callers refuse that).
/// With ceil_mode the last window must still start inside the input or the left
/// padding, else it is dropped.
pub fn pooled_size(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    ceil_mode: bool,
) -> i64 {
    let (i, k, s, p, d) = (
        input as i64,
        kernel as i64,
        stride as i64,
        padding as i64,
        dilation as i64,
    );
    let span = i + 2 * p - d * (k - 1) - 1 + if ceil_mode { s - 1 } else { 0 };
    let mut out = span.div_euclid(s) + 1;
    if ceil_mode && (out - 1) * s >= i + p {
        out -= 1;
    }
    out
}

/// [planes, H, W] of a [N, C, H, W] or [C, H, W] input.
fn planes(op: &str, x: &Tensor) -> Result<[usize; 3]> {
    expect_f32(op, "input", x)?;
    match *x.shape() {
        [n, c, h, w] => Ok([n * c, h, w]),
        [c, h, w] => Ok([c, h, w]),
        _ => Err(Error::op(
            op,
            format!(
                "input must be [N, C, H, W] or [C, H, W], got {}",
                shape_str(x.shape())
            ),
        )),
    }
}

/// `shape` with its last two dims replaced by `hw`.
fn with_hw(shape: &[usize], hw: [usize; 2]) -> Vec<usize> {
    let mut s = shape.to_vec();
    let r = s.len();
    s[r - 2..].copy_from_slice(&hw);
    s
}

/// The output [H, W] of `pool` on an `in_h` x `in_w` input, after PyTorch's checks.
fn pooled_hw(op: &str, in_hw: [usize; 2], pool: &Pool2d) -> Result<[usize; 2]> {
    let Pool2d {
        kernel_size: k,
        stride: s,
        padding: p,
        dilation: d,
        ceil_mode,
    } = *pool;
    for (name, v) in [("kernel_size", k), ("stride", s), ("dilation", d)] {
        if v.contains(&0) {
            return Err(Error::op(op, format!("{name} must be positive, got {v:?}")));
        }
    }
    if p[0] > k[0] / 2 || p[1] > k[1] / 2 {
        return Err(Error::op(
            op,
            format!("padding {p:?} must be at most half of kernel_size {k:?}"),
        ));
    }
    let oh = pooled_size(in_hw[0], k[0], s[0], p[0], d[0], ceil_mode);
    let ow = pooled_size(in_hw[1], k[1], s[1], p[1], d[1], ceil_mode);
    if oh < 1 || ow < 1 {
        return Err(Error::op(
            op,
            format!(
                "input {}x{} is too small for kernel_size {k:?} with padding {p:?} and dilation {d:?}: output would be {oh}x{ow}",
                in_hw[0], in_hw[1]
            ),
        ));
    }
    Ok([oh as usize, ow as usize])
}

/// The uniform block of shaders/pool.wgsl.
fn params(
    op: &str,
    threads: usize,
    in_hw: [usize; 2],
    out_hw: [usize; 2],
    pool: &Pool2d,
    count_include_pad: bool,
) -> Result<Params> {
    let mut p = Params::new(op).idx("n", threads)?;
    for (name, v) in [
        ("in_h", in_hw[0]),
        ("in_w", in_hw[1]),
        ("out_h", out_hw[0]),
        ("out_w", out_hw[1]),
        ("k_h", pool.kernel_size[0]),
        ("k_w", pool.kernel_size[1]),
        ("s_h", pool.stride[0]),
        ("s_w", pool.stride[1]),
        ("p_h", pool.padding[0]),
        ("p_w", pool.padding[1]),
        ("d_h", pool.dilation[0]),
        ("d_w", pool.dilation[1]),
    ] {
        p = p.idx(name, v)?;
    }
    Ok(p.u32("count_include_pad", count_include_pad as u32))
}

/// max_pool2d: (output, argmax), the argmax a u32 tensor of the output's shape.
pub fn max_pool2d(x: &Tensor, pool: &Pool2d) -> Result<(Tensor, Tensor)> {
    let op = "max_pool2d";
    let [planes, h, w] = planes(op, x)?;
    let out_hw = pooled_hw(op, [h, w], pool)?;
    let shape = with_hw(x.shape(), out_hw);
    let out = Tensor::empty(x.gpu(), &shape, DType::F32)?;
    let argmax = Tensor::empty(x.gpu(), &shape, DType::U32)?;
    let n = planes * out_hw[0] * out_hw[1];
    let p = params(op, n, [h, w], out_hw, pool, false)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("pool", "max_pool2d"),
        &[x.buffer(), out.buffer(), argmax.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok((out, argmax))
}

/// Gradient of max_pool2d: each output gradient goes to its argmax.
pub fn max_pool2d_backward(
    g: &Tensor,
    argmax: &Tensor,
    input_shape: &[usize],
    pool: &Pool2d,
) -> Result<Tensor> {
    let op = "max_pool2d_backward";
    let dx = Tensor::empty(g.gpu(), input_shape, DType::F32)?;
    let [planes, h, w] = planes(op, &dx)?;
    let out_hw = pooled_hw(op, [h, w], pool)?;
    if g.shape() != with_hw(input_shape, out_hw) || argmax.shape() != g.shape() {
        return Err(Error::op(
            op,
            format!(
                "grad_output {} and indices {} do not match the pooled shape of {}",
                shape_str(g.shape()),
                shape_str(argmax.shape()),
                shape_str(input_shape)
            ),
        ));
    }
    let n = planes * h * w;
    let p = params(op, n, [h, w], out_hw, pool, false)?;
    let gpu = g.gpu();
    gpu.dispatch(
        &Kernel::new("pool", "max_pool2d_backward"),
        &[g.buffer(), argmax.buffer(), dx.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(dx)
}

fn no_dilation(op: &str, pool: &Pool2d) -> Result<()> {
    if pool.dilation != [1, 1] {
        return Err(Error::op(
            op,
            format!("takes no dilation, got {:?}", pool.dilation),
        ));
    }
    Ok(())
}

/// avg_pool2d; padding counts as zeros in the divisor when `count_include_pad`.
pub fn avg_pool2d(x: &Tensor, pool: &Pool2d, count_include_pad: bool) -> Result<Tensor> {
    let op = "avg_pool2d";
    no_dilation(op, pool)?;
    let [planes, h, w] = planes(op, x)?;
    let out_hw = pooled_hw(op, [h, w], pool)?;
    let out = Tensor::empty(x.gpu(), &with_hw(x.shape(), out_hw), DType::F32)?;
    let n = planes * out_hw[0] * out_hw[1];
    let p = params(op, n, [h, w], out_hw, pool, count_include_pad)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("pool", "avg_pool2d"),
        &[x.buffer(), out.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// Gradient of avg_pool2d with respect to an input of `input_shape`.
pub fn avg_pool2d_backward(
    g: &Tensor,
    input_shape: &[usize],
    pool: &Pool2d,
    count_include_pad: bool,
) -> Result<Tensor> {
    let op = "avg_pool2d_backward";
    no_dilation(op, pool)?;
    let dx = Tensor::empty(g.gpu(), input_shape, DType::F32)?;
    let [planes, h, w] = planes(op, &dx)?;
    let out_hw = pooled_hw(op, [h, w], pool)?;
    expect_grad_shape(op, g, input_shape, out_hw)?;
    let n = planes * h * w;
    let p = params(op, n, [h, w], out_hw, pool, count_include_pad)?;
    let gpu = g.gpu();
    gpu.dispatch(
        &Kernel::new("pool", "avg_pool2d_backward"),
        &[g.buffer(), dx.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(dx)
}

fn expect_grad_shape(
    op: &str,
    g: &Tensor,
    input_shape: &[usize],
    out_hw: [usize; 2],
) -> Result<()> {
    let want = with_hw(input_shape, out_hw);
    if g.shape() != want.as_slice() {
        return Err(Error::op(
            op,
            format!(
                "grad_output is {}, expected {}",
                shape_str(g.shape()),
                shape_str(&want)
            ),
        ));
    }
    Ok(())
}

/// Checks output_size and that the kernels' bin arithmetic (index * size) fits 32 bits.
fn adaptive_hw(op: &str, in_hw: [usize; 2], output_size: [usize; 2]) -> Result<()> {
    if output_size.contains(&0) {
        return Err(Error::op(
            op,
            format!("output_size must be positive, got {output_size:?}"),
        ));
    }
    for (i, o) in in_hw.into_iter().zip(output_size) {
        if (i as u64 + 1) * (o as u64 + 1) > u32::MAX as u64 {
            return Err(Error::op(
                op,
                format!("input size {i} with output size {o} exceeds 32-bit bin arithmetic"),
            ));
        }
    }
    Ok(())
}

/// adaptive_avg_pool2d to `output_size` [H, W]: output (i, j) averages rows
/// [floor(i*H/oh), ceil((i+1)*H/oh)) and likewise columns.
pub fn adaptive_avg_pool2d(x: &Tensor, output_size: [usize; 2]) -> Result<Tensor> {
    let op = "adaptive_avg_pool2d";
    let [planes, h, w] = planes(op, x)?;
    adaptive_hw(op, [h, w], output_size)?;
    let out = Tensor::empty(x.gpu(), &with_hw(x.shape(), output_size), DType::F32)?;
    let n = planes * output_size[0] * output_size[1];
    let p = params(op, n, [h, w], output_size, &Pool2d::new([1, 1]), false)?;
    let gpu = x.gpu();
    gpu.dispatch(
        &Kernel::new("pool", "adaptive_avg_pool2d"),
        &[x.buffer(), out.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(out)
}

/// Gradient of adaptive_avg_pool2d with respect to an input of `input_shape`.
pub fn adaptive_avg_pool2d_backward(g: &Tensor, input_shape: &[usize]) -> Result<Tensor> {
    let op = "adaptive_avg_pool2d_backward";
    let dx = Tensor::empty(g.gpu(), input_shape, DType::F32)?;
    let [planes, h, w] = planes(op, &dx)?;
    let out_hw = match *g.shape() {
        [.., oh, ow] => [oh, ow],
        _ => [0, 0],
    };
    expect_grad_shape(op, g, input_shape, out_hw)?;
    adaptive_hw(op, [h, w], out_hw)?;
    let n = planes * h * w;
    let p = params(op, n, [h, w], out_hw, &Pool2d::new([1, 1]), false)?;
    let gpu = g.gpu();
    gpu.dispatch(
        &Kernel::new("pool", "adaptive_avg_pool2d_backward"),
        &[g.buffer(), dx.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )?;
    Ok(dx)
}

impl Var {
    /// F.max_pool2d; the gradient flows to each window's first maximum.
    pub fn max_pool2d(&self, pool: &Pool2d) -> Result<Var> {
        let x = self.value();
        let (out, argmax) = max_pool2d(&x, pool)?;
        let (shape, pool) = (x.shape().to_vec(), *pool);
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(max_pool2d_backward(g, &argmax, &shape, &pool)?)])
        }))
    }

    /// F.avg_pool2d (pool.dilation must be 1).
    pub fn avg_pool2d(&self, pool: &Pool2d, count_include_pad: bool) -> Result<Var> {
        let x = self.value();
        let out = avg_pool2d(&x, pool, count_include_pad)?;
        let (shape, pool) = (x.shape().to_vec(), *pool);
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(avg_pool2d_backward(
                g,
                &shape,
                &pool,
                count_include_pad,
            )?)])
        }))
    }

    /// F.adaptive_avg_pool2d to `output_size` [H, W] ([1, 1] is global average pooling).
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> Result<Var> {
        let x = self.value();
        let out = adaptive_avg_pool2d(&x, output_size)?;
        let shape = x.shape().to_vec();
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(adaptive_avg_pool2d_backward(g, &shape)?)])
        }))
    }
}

/// A (height, width) attribute with no negative entries.
fn pair(op: &str, name: &str, v: &[i64]) -> Result<[usize; 2]> {
    let bad = || Error::op(op, format!("{name} must be non-negative ints, got {v:?}"));
    match *v {
        [a] => {
            let a = usize::try_from(a).map_err(|_| bad())?;
            Ok([a, a])
        }
        [a, b] => Ok([
            usize::try_from(a).map_err(|_| bad())?,
            usize::try_from(b).map_err(|_| bad())?,
        ]),
        _ => Err(Error::op(
            op,
            format!("{name} must be one int or an (h, w) pair, got {v:?}"),
        )),
    }
}

/// The Pool2d of a call; `stride` none (PyTorch's None) means kernel_size.
fn pool_attrs(c: &OpCall, dilation: bool) -> Result<Pool2d> {
    let a = &c.attrs;
    let kernel_size = pair(c.op, "kernel_size", &a.ints("kernel_size")?)?;
    let stride = match a.opt_ints("stride")? {
        Some(s) => pair(c.op, "stride", &s)?,
        None => kernel_size,
    };
    Ok(Pool2d {
        kernel_size,
        stride,
        padding: pair(c.op, "padding", &a.ints("padding")?)?,
        dilation: if dilation {
            pair(c.op, "dilation", &a.ints("dilation")?)?
        } else {
            [1, 1]
        },
        ceil_mode: a.bool("ceil_mode")?,
    })
}

const KERNEL: AttrSpec = attr("kernel_size", AttrKind::Pair, None);
const STRIDE: AttrSpec = attr("stride", AttrKind::OptInts, Some("none"));
const PADDING: AttrSpec = attr("padding", AttrKind::Pair, Some("0"));
const CEIL_MODE: AttrSpec = attr("ceil_mode", AttrKind::Bool, Some("false"));

pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "max_pool2d",
        summary: "max over kernel_size windows (stride none = kernel_size; padding is -inf)",
        inputs: INPUT,
        attrs: &[
            KERNEL,
            STRIDE,
            PADDING,
            attr("dilation", AttrKind::Pair, Some("1")),
            CEIL_MODE,
        ],
        run: |c| c.input("input")?.max_pool2d(&pool_attrs(c, true)?),
    },
    OpSpec {
        name: "avg_pool2d",
        summary: "mean over kernel_size windows (stride none = kernel_size)",
        inputs: INPUT,
        attrs: &[
            KERNEL,
            STRIDE,
            PADDING,
            CEIL_MODE,
            attr("count_include_pad", AttrKind::Bool, Some("true")),
        ],
        run: |c| {
            c.input("input")?
                .avg_pool2d(&pool_attrs(c, false)?, c.attrs.bool("count_include_pad")?)
        },
    },
    OpSpec {
        name: "adaptive_avg_pool2d",
        summary: "mean over output_size bins covering the input (1 = global pooling)",
        inputs: INPUT,
        attrs: &[attr("output_size", AttrKind::Pair, None)],
        run: |c| {
            let size = pair(c.op, "output_size", &c.attrs.ints("output_size")?)?;
            c.input("input")?.adaptive_avg_pool2d(size)
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn output_sizes_follow_pytorch() {
        // (input, kernel, stride, padding, dilation, ceil_mode) -> torch's output size
        let cases = [
            ((7, 3, 2, 1, 1, false), 4),
            ((7, 3, 2, 1, 2, false), 3),
            ((6, 3, 2, 1, 1, true), 4),
            ((5, 2, 2, 0, 1, false), 2),
            ((5, 2, 2, 0, 1, true), 3),
            // The ceil_mode window starting in the right padding is dropped.
            ((5, 2, 2, 1, 1, true), 3),
            ((2, 3, 3, 1, 1, true), 1),
            ((2, 4, 1, 0, 1, false), -1),
        ];
        for ((i, k, s, p, d, c), want) in cases {
            assert_eq!(
                pooled_size(i, k, s, p, d, c),
                want,
                "{:?}",
                (i, k, s, p, d, c)
            );
        }
    }

    #[test]
    fn max_pool_ties_pick_the_first_and_bad_geometry_is_refused() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[1.0; 16], &[1, 4, 4]).unwrap();
        let pool = Pool2d {
            padding: [1, 1],
            stride: [2, 2],
            ..Pool2d::new([3, 3])
        };
        let (out, idx) = max_pool2d(&x, &pool).unwrap();
        assert_eq!(out.shape(), &[1, 2, 2]);
        assert_eq!(idx.to_vec_u32().unwrap(), vec![0, 1, 4, 5]);
        let e = max_pool2d(&x, &Pool2d::new([2, 5])).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        let wide = Pool2d {
            padding: [2, 0],
            ..Pool2d::new([3, 3])
        };
        let e = max_pool2d(&x, &wide).unwrap_err();
        assert!(e.to_string().contains("at most half"), "{e}");
    }

    #[test]
    fn nan_wins_like_pytorch() {
        let gpu = Gpu::shared().unwrap();
        let x =
            Tensor::from_slice(&gpu, &[1.0, f32::NAN, 3.0, f32::NEG_INFINITY], &[1, 2, 2]).unwrap();
        let (out, idx) = max_pool2d(&x, &Pool2d::new([2, 2])).unwrap();
        assert!(out.to_vec().unwrap()[0].is_nan());
        assert_eq!(idx.to_vec_u32().unwrap(), vec![1]);
    }

    #[test]
    fn a_window_entirely_in_the_padding_gives_minus_infinity() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0], &[1, 2, 2]).unwrap();
        // Taps at -1 and 2 along both axes: both outside a 2x2 input.
        let pool = Pool2d {
            stride: [1, 1],
            padding: [1, 1],
            dilation: [3, 3],
            ..Pool2d::new([2, 2])
        };
        let (out, idx) = max_pool2d(&x, &pool).unwrap();
        assert_eq!(out.to_vec().unwrap(), vec![f32::NEG_INFINITY]);
        assert_eq!(idx.to_vec_u32().unwrap(), vec![u32::MAX]);
    }
}
