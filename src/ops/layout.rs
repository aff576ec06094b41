//! Layout ops: reshape (no copy), permute/transpose, expand, concat and slice, all
//! through the strided copy of shaders/layout.wgsl.

use super::attrs::AttrKind;
use super::reduce::sum_to_shape;
use super::spec::{attr, InputSpec, OpSpec, INPUT};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::tensor::elementwise::zeros;
use crate::tensor::shape::{self, strides};
use crate::tensor::DType;
use crate::tensor::{shape_str, Tensor};

/// Copies `src` viewed as `shape` with `in_strides` from `in_offset` into `dst` at
/// `out_strides` from `out_offset` (element units).
#[allow(clippy::too_many_arguments)]
pub fn strided_copy(
    op: &str,
    src: &Tensor,
    dst: &Tensor,
    shape: &[usize],
    in_strides: &[usize],
    in_offset: usize,
    out_strides: &[usize],
    out_offset: usize,
) -> Result<()> {
    let (mut folded, mut st) = shape::fold(shape, &[in_strides.to_vec(), out_strides.to_vec()]);
    if folded.is_empty() {
        // One element: a rank-1 copy of length 1.
        folded.push(1);
        st.iter_mut().for_each(|s| s.push(0));
    }
    shape::check_rank(op, &folded)?;
    let n: usize = folded.iter().product();
    let p = Params::new(op)
        .idx("n", n)?
        .idx("in_offset", in_offset)?
        .idx("out_offset", out_offset)?
        .align16()
        .dims("shape", &folded)?
        .dims("in_strides", &st[0])?
        .dims("out_strides", &st[1])?;
    let gpu = src.gpu();
    let rank = [("RANK", folded.len() as f64)];
    gpu.dispatch(
        &Kernel::new("layout", "main").with(&rank),
        &[src.buffer(), dst.buffer()],
        &p,
        gpu.grid(n as u64, WORKGROUP),
    )
}

/// A contiguous copy with dims reordered: output dim i is input dim `perm[i]`.
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let mut seen = perm.to_vec();
    seen.sort_unstable();
    if perm.len() != x.rank() || seen.iter().enumerate().any(|(i, &d)| i != d) {
        return Err(Error::op(
            "permute",
            format!(
                "dims {perm:?} are not a permutation of the {} dims of {}",
                x.rank(),
                shape_str(x.shape())
            ),
        ));
    }
    let st = strides(x.shape());
    let out_shape: Vec<usize> = perm.iter().map(|&d| x.shape()[d]).collect();
    let in_strides: Vec<usize> = perm.iter().map(|&d| st[d]).collect();
    let out = Tensor::empty(x.gpu(), &out_shape, x.dtype())?;
    strided_copy(
        "permute",
        x,
        &out,
        &out_shape,
        &in_strides,
        0,
        &strides(&out_shape),
        0,
    )?;
    Ok(out)
}

/// Broadcasts `x` to `shape` (NumPy rules), materialised.
pub fn expand(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let full = shape::broadcast("expand", x.shape(), shape)?;
    if full != shape {
        return Err(Error::op(
            "expand",
            format!(
                "cannot expand {} to {}",
                shape_str(x.shape()),
                shape_str(shape)
            ),
        ));
    }
    if x.shape() == shape {
        return Ok(x.clone());
    }
    let out = Tensor::empty(x.gpu(), shape, x.dtype())?;
    let in_strides = shape::broadcast_strides(x.shape(), shape);
    strided_copy("expand", x, &out, shape, &in_strides, 0, &strides(shape), 0)?;
    Ok(out)
}

/// The geometry of `x[.., start:end:step, ..]` along `dim`.
struct SliceSpec {
    dim: usize,
    start: usize,
    step: usize,
    len: usize,
}

fn slice_spec(shape: &[usize], dim: i64, start: i64, end: i64, step: i64) -> Result<SliceSpec> {
    let dim = shape::axis("slice", dim, shape.len())?;
    let size = shape[dim] as i64;
    if step < 1 {
        return Err(Error::op("slice", format!("step must be >= 1, got {step}")));
    }
    let clamp = |v: i64| {
        if v < 0 {
            (v + size).max(0)
        } else {
            v.min(size)
        }
    };
    let (s, e) = (clamp(start), clamp(end));
    if e <= s {
        return Err(Error::op(
            "slice",
            format!("start {start} end {end} select nothing of dim {dim} (size {size})"),
        ));
    }
    Ok(SliceSpec {
        dim,
        start: s as usize,
        step: step as usize,
        len: ((e - s - 1) / step + 1) as usize,
    })
}

fn sliced_view(shape: &[usize], spec: &SliceSpec) -> (Vec<usize>, Vec<usize>, usize) {
    let st = strides(shape);
    let mut out_shape = shape.to_vec();
    out_shape[spec.dim] = spec.len;
    let mut view_strides = st.clone();
    view_strides[spec.dim] *= spec.step;
    (out_shape, view_strides, spec.start * st[spec.dim])
}

/// `x[.., start:end:step, ..]` along `dim` (negative indices count from the end and
/// ends are clamped, as in Python).
pub fn slice(x: &Tensor, dim: i64, start: i64, end: i64, step: i64) -> Result<Tensor> {
    let spec = slice_spec(x.shape(), dim, start, end, step)?;
    let (out_shape, view_strides, offset) = sliced_view(x.shape(), &spec);
    let out = Tensor::empty(x.gpu(), &out_shape, x.dtype())?;
    strided_copy(
        "slice",
        x,
        &out,
        &out_shape,
        &view_strides,
        offset,
        &strides(&out_shape),
        0,
    )?;
    Ok(out)
}

/// Concatenates along `dim`; all other dims must agree.
pub fn concat(xs: &[Tensor], dim: i64) -> Result<Tensor> {
    let first = xs
        .first()
        .ok_or_else(|| Error::op("concat", "needs at least one tensor"))?;
    let d = shape::axis("concat", dim, first.rank())?;
    for (i, x) in xs.iter().enumerate() {
        let same = x.rank() == first.rank()
            && x.dtype() == first.dtype()
            && (0..x.rank()).all(|k| k == d || x.shape()[k] == first.shape()[k]);
        if !same {
            return Err(Error::op(
                "concat",
                format!(
                    "tensors.{i} has shape {} ({}), incompatible with {} ({}) along dim {d}",
                    shape_str(x.shape()),
                    x.dtype(),
                    shape_str(first.shape()),
                    first.dtype()
                ),
            ));
        }
    }
    let mut out_shape = first.shape().to_vec();
    out_shape[d] = xs.iter().map(|x| x.shape()[d]).sum();
    let out = Tensor::empty(first.gpu(), &out_shape, first.dtype())?;
    let out_strides = strides(&out_shape);
    let mut offset = 0;
    for x in xs {
        strided_copy(
            "concat",
            x,
            &out,
            x.shape(),
            &strides(x.shape()),
            0,
            &out_strides,
            offset * out_strides[d],
        )?;
        offset += x.shape()[d];
    }
    Ok(out)
}

impl Var {
    /// The same values under another shape; one dim may be -1.
    pub fn reshape(&self, shape: &[i64]) -> Result<Var> {
        let x = self.value();
        let target = infer_shape(x.shape(), shape)?;
        let out = x.reshape(&target)?;
        let in_shape = x.shape().to_vec();
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(g.reshape(&in_shape)?)])
        }))
    }

    /// torch.permute: output dim i is input dim `dims[i]` (negative dims allowed).
    pub fn permute(&self, dims: &[i64]) -> Result<Var> {
        let x = self.value();
        let perm = dims
            .iter()
            .map(|&d| shape::axis("permute", d, x.rank()))
            .collect::<Result<Vec<_>>>()?;
        let out = permute(&x, &perm)?;
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(permute(g, &inverse)?)])
        }))
    }

    /// torch.transpose: swaps two dims.
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Var> {
        let rank = self.shape().len();
        let (a, b) = (
            shape::axis("transpose", dim0, rank)?,
            shape::axis("transpose", dim1, rank)?,
        );
        let mut dims: Vec<i64> = (0..rank as i64).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// torch.Tensor.expand: broadcasts to `shape` (NumPy rules), materialised.
    pub fn expand(&self, shape: &[usize]) -> Result<Var> {
        let x = self.value();
        let out = expand(&x, shape)?;
        let in_shape = x.shape().to_vec();
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(sum_to_shape(g, &in_shape)?)])
        }))
    }

    /// torch.cat(tensors, dim).
    pub fn concat(xs: &[Var], dim: i64) -> Result<Var> {
        let values: Vec<Tensor> = xs.iter().map(|v| v.value()).collect();
        let out = concat(&values, dim)?;
        let d = shape::axis("concat", dim, out.rank())?;
        let sizes: Vec<usize> = values.iter().map(|v| v.shape()[d]).collect();
        let parents: Vec<&Var> = xs.iter().collect();
        Ok(Var::from_op(out, &parents, move |g| {
            let mut start = 0;
            let mut grads = Vec::with_capacity(sizes.len());
            for &s in &sizes {
                grads.push(Some(slice(
                    g,
                    d as i64,
                    start as i64,
                    (start + s) as i64,
                    1,
                )?));
                start += s;
            }
            Ok(grads)
        }))
    }

    /// aten::slice: `x[.., start:end:step, ..]` along `dim`.
    pub fn slice(&self, dim: i64, start: i64, end: i64, step: i64) -> Result<Var> {
        let x = self.value();
        let out = slice(&x, dim, start, end, step)?;
        let in_shape = x.shape().to_vec();
        let spec = slice_spec(&in_shape, dim, start, end, step)?;
        Ok(Var::from_op(out, &[self], move |g| {
            let grad = zeros(g.gpu(), &in_shape)?;
            let (view_shape, view_strides, offset) = sliced_view(&in_shape, &spec);
            strided_copy(
                "slice_backward",
                g,
                &grad,
                &view_shape,
                &strides(&view_shape),
                0,
                &view_strides,
                offset,
            )?;
            Ok(vec![Some(grad)])
        }))
    }
}

/// Resolves a shape with at most one -1 against `numel`.
pub fn infer_shape(from: &[usize], shape: &[i64]) -> Result<Vec<usize>> {
    let numel: usize = from.iter().product();
    let unknown = shape.iter().filter(|&&d| d == -1).count();
    let bad = || {
        Error::op(
            "reshape",
            format!("cannot view {} as {shape:?}", shape_str(from)),
        )
    };
    if unknown > 1 || shape.iter().any(|&d| d < -1 || d == 0) {
        return Err(bad());
    }
    let known: usize = shape
        .iter()
        .filter(|&&d| d > 0)
        .map(|&d| d as usize)
        .product();
    let out: Vec<usize> = shape
        .iter()
        .map(|&d| {
            if d == -1 {
                numel / known.max(1)
            } else {
                d as usize
            }
        })
        .collect();
    if out.iter().product::<usize>() != numel {
        return Err(bad());
    }
    Ok(out)
}

pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "reshape",
        summary: "same values, new shape (one dim may be -1)",
        inputs: INPUT,
        attrs: &[attr("shape", AttrKind::Ints, None)],
        run: |c| c.input("input")?.reshape(&c.attrs.ints("shape")?),
    },
    OpSpec {
        name: "permute",
        summary: "reorder dims: output dim i is input dim dims[i]",
        inputs: INPUT,
        attrs: &[attr("dims", AttrKind::Ints, None)],
        run: |c| c.input("input")?.permute(&c.attrs.ints("dims")?),
    },
    OpSpec {
        name: "transpose",
        summary: "swap dims dim0 and dim1",
        inputs: INPUT,
        attrs: &[
            attr("dim0", AttrKind::Int, None),
            attr("dim1", AttrKind::Int, None),
        ],
        run: |c| {
            c.input("input")?
                .transpose(c.attrs.int("dim0")?, c.attrs.int("dim1")?)
        },
    },
    OpSpec {
        name: "expand",
        summary: "broadcast input to size (NumPy rules), materialised",
        inputs: INPUT,
        attrs: &[attr("size", AttrKind::Ints, None)],
        run: |c| {
            let size = c.attrs.ints("size")?;
            let size = size
                .iter()
                .map(|&d| {
                    usize::try_from(d)
                        .map_err(|_| Error::op("expand", format!("size {d} must be >= 0")))
                })
                .collect::<Result<Vec<_>>>()?;
            c.input("input")?.expand(&size)
        },
    },
    OpSpec {
        name: "cat",
        summary: "concatenate tensors.0, tensors.1, ... along dim",
        inputs: &[InputSpec {
            name: "tensors",
            dtype: DType::F32,
            differentiable: true,
            variadic: true,
            optional: false,
        }],
        attrs: &[attr("dim", AttrKind::Int, Some("0"))],
        run: |c| Var::concat(c.inputs_of("tensors")?, c.attrs.int("dim")?),
    },
    OpSpec {
        name: "slice",
        summary: "input[..., start:end:step, ...] along dim (aten::slice)",
        inputs: INPUT,
        attrs: &[
            attr("dim", AttrKind::Int, Some("0")),
            attr("start", AttrKind::Int, Some("0")),
            attr("end", AttrKind::Int, Some("9223372036854775807")),
            attr("step", AttrKind::Int, Some("1")),
        ],
        run: |c| {
            let a = &c.attrs;
            c.input("input")?.slice(
                a.int("dim")?,
                a.int("start")?,
                a.int("end")?,
                a.int("step")?,
            )
        },
    },
];
