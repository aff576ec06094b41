//! CPU f64 references of every op, written as plainly as possible: they exist to be
//! obviously right, not fast. Used by `wgseg gradcheck` and the tests only.

use super::host::{unravel, HostTensor};
use crate::error::{Error, Result};
use crate::ops::attrs::Attrs;
use crate::ops::layout::infer_shape;
use crate::ops::reduce::reduction_axes;
use crate::shape::{self, broadcast};

fn broadcast_binary(
    op: &str,
    a: &HostTensor,
    b: &HostTensor,
    f: impl Fn(f64, f64) -> f64,
) -> Result<HostTensor> {
    let out = broadcast(op, &a.shape, &b.shape)?;
    let sa = shape::broadcast_strides(&a.shape, &out);
    let sb = shape::broadcast_strides(&b.shape, &out);
    let n = out.iter().product();
    let data = (0..n)
        .map(|i| {
            let idx = unravel(i, &out);
            let ia: usize = idx.iter().zip(&sa).map(|(x, s)| x * s).sum();
            let ib: usize = idx.iter().zip(&sb).map(|(x, s)| x * s).sum();
            f(a.data[ia], b.data[ib])
        })
        .collect();
    Ok(HostTensor::new(&out, data))
}

fn reduce(x: &HostTensor, attrs: &Attrs, mean: bool) -> Result<HostTensor> {
    let dims = attrs.opt_ints("dim")?;
    let axes = reduction_axes("sum", dims.as_deref(), x.shape.len())?;
    let keepdim = attrs.bool("keepdim")?;
    let kept: Vec<usize> = x
        .shape
        .iter()
        .enumerate()
        .map(|(d, &s)| if axes.contains(&d) { 1 } else { s })
        .collect();
    let mut out = HostTensor::zeros(&kept);
    let ks = out.strides();
    for (i, &v) in x.data.iter().enumerate() {
        let idx = unravel(i, &x.shape);
        let o: usize = idx
            .iter()
            .enumerate()
            .map(|(d, &k)| if axes.contains(&d) { 0 } else { k * ks[d] })
            .sum();
        out.data[o] += v;
    }
    if mean {
        let count: usize = axes.iter().map(|&a| x.shape[a]).product();
        out = out.map(|v| v / count as f64);
    }
    let shape: Vec<usize> = if keepdim {
        kept
    } else {
        x.shape
            .iter()
            .enumerate()
            .filter(|(d, _)| !axes.contains(d))
            .map(|(_, &s)| s)
            .collect()
    };
    Ok(HostTensor::new(&shape, out.data))
}

fn matmul(a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    let pa: usize = a.shape[..ra - 2].iter().product();
    let pb: usize = b.shape[..rb - 2].iter().product();
    let batch = pa.max(pb);
    let batch_shape = if pa >= pb {
        &a.shape[..ra - 2]
    } else {
        &b.shape[..rb - 2]
    };
    let mut out = vec![0.0; batch * m * n];
    for t in 0..batch {
        let (ta, tb) = (if pa == 1 { 0 } else { t }, if pb == 1 { 0 } else { t });
        for i in 0..m {
            for j in 0..n {
                out[(t * m + i) * n + j] = (0..k)
                    .map(|l| a.data[(ta * m + i) * k + l] * b.data[(tb * k + l) * n + j])
                    .sum();
            }
        }
    }
    let mut shape = batch_shape.to_vec();
    shape.extend([m, n]);
    Ok(HostTensor::new(&shape, out))
}

fn permute(x: &HostTensor, perm: &[usize]) -> HostTensor {
    let out_shape: Vec<usize> = perm.iter().map(|&d| x.shape[d]).collect();
    let st = x.strides();
    let data = (0..x.numel())
        .map(|i| {
            let idx = unravel(i, &out_shape);
            let src: usize = idx.iter().zip(perm).map(|(&k, &d)| k * st[d]).sum();
            x.data[src]
        })
        .collect();
    HostTensor::new(&out_shape, data)
}

fn softmax(x: &HostTensor, dim: i64, log: bool) -> Result<HostTensor> {
    let d = shape::axis("softmax", dim, x.shape.len())?;
    let st = x.strides();
    let mut out = x.clone();
    for i in 0..x.numel() {
        let idx = unravel(i, &x.shape);
        if idx[d] != 0 {
            continue;
        }
        let lane: Vec<usize> = (0..x.shape[d]).map(|j| i + j * st[d]).collect();
        let m = lane
            .iter()
            .map(|&p| x.data[p])
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = lane.iter().map(|&p| (x.data[p] - m).exp()).sum();
        for &p in &lane {
            out.data[p] = if log {
                x.data[p] - m - s.ln()
            } else {
                (x.data[p] - m).exp() / s
            };
        }
    }
    Ok(out)
}

fn slice(x: &HostTensor, attrs: &Attrs) -> Result<HostTensor> {
    let d = shape::axis("slice", attrs.int("dim")?, x.shape.len())?;
    let size = x.shape[d] as i64;
    let clamp = |v: i64| {
        if v < 0 {
            (v + size).max(0)
        } else {
            v.min(size)
        }
    };
    let (start, end, step) = (
        clamp(attrs.int("start")?),
        clamp(attrs.int("end")?),
        attrs.int("step")?,
    );
    let picked: Vec<usize> = (start..end)
        .step_by(step as usize)
        .map(|v| v as usize)
        .collect();
    let mut shape = x.shape.clone();
    shape[d] = picked.len();
    let st = x.strides();
    let n = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            let mut idx = unravel(i, &shape);
            idx[d] = picked[idx[d]];
            x.data[idx.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()]
        })
        .collect();
    Ok(HostTensor::new(&shape, data))
}

fn cat(xs: &[&HostTensor], dim: i64) -> Result<HostTensor> {
    let d = shape::axis("cat", dim, xs[0].shape.len())?;
    let mut shape = xs[0].shape.clone();
    shape[d] = xs.iter().map(|x| x.shape[d]).sum();
    let n = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            let mut idx = unravel(i, &shape);
            let mut which = 0;
            while idx[d] >= xs[which].shape[d] {
                idx[d] -= xs[which].shape[d];
                which += 1;
            }
            let st = xs[which].strides();
            xs[which].data[idx.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()]
        })
        .collect();
    Ok(HostTensor::new(&shape, data))
}

/// The reference forward of `op` on named inputs.
pub fn forward(op: &str, inputs: &[(String, HostTensor)], attrs: &Attrs) -> Result<HostTensor> {
    let get = |name: &str| {
        inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::op(op, format!("reference: missing input {name}")))
    };
    let unary = |f: &dyn Fn(f64) -> f64| -> Result<HostTensor> { Ok(get("input")?.map(f)) };
    match op {
        "add" => broadcast_binary(op, get("input")?, get("other")?, |a, b| a + b),
        "sub" => broadcast_binary(op, get("input")?, get("other")?, |a, b| a - b),
        "mul" => broadcast_binary(op, get("input")?, get("other")?, |a, b| a * b),
        "div" => broadcast_binary(op, get("input")?, get("other")?, |a, b| a / b),
        "add_scalar" => {
            let s = attrs.float("other")?;
            unary(&|v| v + s)
        }
        "mul_scalar" => {
            let s = attrs.float("other")?;
            unary(&|v| v * s)
        }
        "neg" => unary(&|v| -v),
        "relu" => unary(&|v| v.max(0.0)),
        "relu6" => unary(&|v| v.clamp(0.0, 6.0)),
        "leaky_relu" => {
            let s = attrs.float("negative_slope")?;
            unary(&|v| if v > 0.0 { v } else { s * v })
        }
        "sigmoid" => unary(&|v| 1.0 / (1.0 + (-v).exp())),
        "tanh" => unary(&f64::tanh),
        "exp" => unary(&f64::exp),
        "log" => unary(&f64::ln),
        "sqrt" => unary(&f64::sqrt),
        "pow" => {
            let e = attrs.float("exponent")?;
            unary(&|v| v.powf(e))
        }
        "sum" => reduce(get("input")?, attrs, false),
        "mean" => reduce(get("input")?, attrs, true),
        "matmul" => matmul(get("input")?, get("other")?),
        "reshape" => {
            let x = get("input")?;
            Ok(HostTensor::new(
                &infer_shape(&x.shape, &attrs.ints("shape")?)?,
                x.data.clone(),
            ))
        }
        "permute" => {
            let x = get("input")?;
            let perm = attrs
                .ints("dims")?
                .iter()
                .map(|&d| shape::axis(op, d, x.shape.len()))
                .collect::<Result<Vec<_>>>()?;
            Ok(permute(x, &perm))
        }
        "transpose" => {
            let x = get("input")?;
            let r = x.shape.len();
            let (a, b) = (
                shape::axis(op, attrs.int("dim0")?, r)?,
                shape::axis(op, attrs.int("dim1")?, r)?,
            );
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(a, b);
            Ok(permute(x, &perm))
        }
        "cat" => {
            let xs: Vec<&HostTensor> = inputs.iter().map(|(_, t)| t).collect();
            cat(&xs, attrs.int("dim")?)
        }
        "slice" => slice(get("input")?, attrs),
        "softmax" => softmax(get("input")?, attrs.int("dim")?, false),
        "log_softmax" => softmax(get("input")?, attrs.int("dim")?, true),
        _ => Err(Error::op(op, "no CPU reference")),
    }
}
