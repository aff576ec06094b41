//! Sum and mean over chosen axes (shaders/reduce.wgsl), and the broadcast-undoing
//! sum that every broadcasting op's backward needs.

use super::attrs::{AttrKind, AttrSpec};
use super::layout::expand;
use super::spec::{attr, OpSpec, INPUT};
use crate::autograd::Var;
use crate::error::Result;
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::tensor::elementwise::{expect_f32, scale};
use crate::tensor::shape::{self, strides};
use crate::tensor::{DType, Tensor};

/// Reductions at least this long get a whole workgroup per output.
const GROUP_REDUCE_MIN: usize = 256;

/// `scale * sum(x)` over `axes` (sorted, unique, in range); the output keeps the
/// reduced dims as size 1 when `keepdim`.
pub fn reduce_sum(
    op: &str,
    x: &Tensor,
    axes: &[usize],
    keepdim: bool,
    factor: f32,
) -> Result<Tensor> {
    expect_f32(op, "input", x)?;
    let st = strides(x.shape());
    let (mut kept_shape, mut kept_strides, mut red_shape, mut red_strides) =
        (vec![], vec![], vec![], vec![]);
    let mut out_shape = vec![];
    for (d, &size) in x.shape().iter().enumerate() {
        if axes.contains(&d) {
            red_shape.push(size);
            red_strides.push(st[d]);
            if keepdim {
                out_shape.push(1);
            }
        } else {
            kept_shape.push(size);
            kept_strides.push(st[d]);
            out_shape.push(size);
        }
    }
    let (kept_shape, ks) = shape::fold(&kept_shape, &[kept_strides]);
    let (red_shape, rs) = shape::fold(&red_shape, &[red_strides]);
    shape::check_rank(op, &kept_shape)?;
    shape::check_rank(op, &red_shape)?;
    let n_out: usize = kept_shape.iter().product();
    let red_count: usize = red_shape.iter().product();
    let out = Tensor::empty(x.gpu(), &out_shape, DType::F32)?;
    let p = Params::new(op)
        .idx("n_out", n_out)?
        .u32("out_rank", kept_shape.len() as u32)
        .u32("red_rank", red_shape.len() as u32)
        .idx("red_count", red_count)?
        .f32("scale", factor)
        .align16()
        .dims("out_shape", &kept_shape)?
        .dims("out_strides", &ks[0])?
        .dims("red_shape", &red_shape)?
        .dims("red_strides", &rs[0])?;
    let gpu = x.gpu();
    let (entry, grid) = if red_count >= GROUP_REDUCE_MIN {
        ("per_group", gpu.grid(n_out as u64, 1))
    } else {
        ("per_thread", gpu.grid(n_out as u64, WORKGROUP))
    };
    gpu.dispatch(
        &Kernel::new("reduce", entry),
        &[x.buffer(), out.buffer()],
        &p,
        grid,
    )?;
    Ok(out)
}

/// Sums a broadcast result back to `shape` (the gradient of broadcasting).
pub fn sum_to_shape(g: &Tensor, target: &[usize]) -> Result<Tensor> {
    if g.shape() == target {
        return Ok(g.clone());
    }
    let lead = g.rank() - target.len();
    let axes: Vec<usize> = (0..g.rank())
        .filter(|&d| d < lead || (target[d - lead] == 1 && g.shape()[d] != 1))
        .collect();
    reduce_sum("sum_to_shape", g, &axes, false, 1.0)?.reshape(target)
}

/// Normalises a `dim` attribute: `None` means every axis.
pub fn reduction_axes(op: &str, dims: Option<&[i64]>, rank: usize) -> Result<Vec<usize>> {
    let mut axes = match dims {
        None => (0..rank).collect(),
        Some(ds) => ds
            .iter()
            .map(|&d| shape::axis(op, d, rank))
            .collect::<Result<Vec<_>>>()?,
    };
    axes.sort_unstable();
    axes.dedup();
    Ok(axes)
}

impl Var {
    fn reduce(
        &self,
        op: &'static str,
        dims: Option<&[i64]>,
        keepdim: bool,
        mean: bool,
    ) -> Result<Var> {
        let x = self.value();
        let axes = reduction_axes(op, dims, x.rank())?;
        let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let factor = if mean { 1.0 / count as f32 } else { 1.0 };
        let out = reduce_sum(op, &x, &axes, keepdim, factor)?;
        let in_shape = x.shape().to_vec();
        let kept: Vec<usize> = in_shape
            .iter()
            .enumerate()
            .map(|(d, &s)| if axes.contains(&d) { 1 } else { s })
            .collect();
        Ok(Var::from_op(out, &[self], move |g| {
            let spread = expand(&g.reshape(&kept)?, &in_shape)?;
            Ok(vec![Some(if mean {
                scale(&spread, factor)?
            } else {
                spread
            })])
        }))
    }

    /// Sum over `dims` (all when `None`), as torch.sum(input, dim, keepdim).
    pub fn sum(&self, dims: Option<&[i64]>, keepdim: bool) -> Result<Var> {
        self.reduce("sum", dims, keepdim, false)
    }

    /// Mean over `dims` (all when `None`), as torch.mean(input, dim, keepdim).
    pub fn mean(&self, dims: Option<&[i64]>, keepdim: bool) -> Result<Var> {
        self.reduce("mean", dims, keepdim, true)
    }
}

const REDUCE: &[AttrSpec] = &[
    attr("dim", AttrKind::OptInts, Some("none")),
    attr("keepdim", AttrKind::Bool, Some("false")),
];

pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "sum",
        summary: "sum over dim (all when none)",
        inputs: INPUT,
        attrs: REDUCE,
        run: |c| {
            let dims = c.attrs.opt_ints("dim")?;
            c.input("input")?
                .sum(dims.as_deref(), c.attrs.bool("keepdim")?)
        },
    },
    OpSpec {
        name: "mean",
        summary: "mean over dim (all when none)",
        inputs: INPUT,
        attrs: REDUCE,
        run: |c| {
            let dims = c.attrs.opt_ints("dim")?;
            c.input("input")?
                .mean(dims.as_deref(), c.attrs.bool("keepdim")?)
        },
    },
];
