//! References and cases of reshape, permute, transpose, cat and slice.

use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, dims, input, uniform, Check, Inputs};
use crate::gradcheck::host::{unravel, HostTensor};
use crate::ops::attrs::Attrs;
use crate::ops::layout::infer_shape;
use crate::tensor::shape::axis;

fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(a, b)| a * b).sum()
}

fn permute(x: &HostTensor, perm: &[usize]) -> HostTensor {
    let out_shape: Vec<usize> = perm.iter().map(|&d| x.shape[d]).collect();
    let st = x.strides();
    let data = (0..x.numel())
        .map(|i| {
            let idx = unravel(i, &out_shape);
            x.data[idx
                .iter()
                .zip(perm)
                .map(|(&k, &d)| k * st[d])
                .sum::<usize>()]
        })
        .collect();
    HostTensor::new(&out_shape, data)
}

fn slice(x: &Inputs, attrs: &Attrs) -> Result<HostTensor> {
    let x = input(x, "input")?;
    let d = axis("slice", attrs.int("dim")?, x.shape.len())?;
    let size = x.shape[d] as i64;
    let clamp = |v: i64| {
        if v < 0 {
            (v + size).max(0)
        } else {
            v.min(size)
        }
    };
    let (start, end) = (clamp(attrs.int("start")?), clamp(attrs.int("end")?));
    let picked: Vec<usize> = (start..end)
        .step_by(attrs.int("step")? as usize)
        .map(|v| v as usize)
        .collect();
    let mut shape = x.shape.clone();
    shape[d] = picked.len();
    let st = x.strides();
    let data = (0..shape.iter().product())
        .map(|i| {
            let mut idx = unravel(i, &shape);
            idx[d] = picked[idx[d]];
            x.data[flat(&idx, &st)]
        })
        .collect();
    Ok(HostTensor::new(&shape, data))
}

fn cat(xs: &Inputs, dim: i64) -> Result<HostTensor> {
    let xs: Vec<&HostTensor> = xs.iter().map(|(_, t)| t).collect();
    let d = axis("cat", dim, xs[0].shape.len())?;
    let mut shape = xs[0].shape.clone();
    shape[d] = xs.iter().map(|x| x.shape[d]).sum();
    let data = (0..shape.iter().product())
        .map(|i| {
            let mut idx = unravel(i, &shape);
            let mut which = 0;
            while idx[d] >= xs[which].shape[d] {
                idx[d] -= xs[which].shape[d];
                which += 1;
            }
            xs[which].data[flat(&idx, &xs[which].strides())]
        })
        .collect();
    Ok(HostTensor::new(&shape, data))
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "reshape",
        reference: |x, a| {
            let x = input(x, "input")?;
            Ok(HostTensor::new(
                &infer_shape(&x.shape, &a.ints("shape")?)?,
                x.data.clone(),
            ))
        },
        cases: |r| {
            vec![case(
                vec![("input", uniform(r, &[2, 3, 4]))],
                &[("shape", "4,-1")],
            )]
        },
    },
    Check {
        op: "permute",
        reference: |x, a| {
            let x = input(x, "input")?;
            let perm = a
                .ints("dims")?
                .iter()
                .map(|&d| axis("permute", d, x.shape.len()))
                .collect::<Result<Vec<_>>>()?;
            Ok(permute(x, &perm))
        },
        cases: |r| {
            let s = dims(r, 4, 2, 4);
            vec![case(
                vec![("input", uniform(r, &s))],
                &[("dims", "2,0,3,1")],
            )]
        },
    },
    Check {
        op: "transpose",
        reference: |x, a| {
            let x = input(x, "input")?;
            let rank = x.shape.len();
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.swap(
                axis("transpose", a.int("dim0")?, rank)?,
                axis("transpose", a.int("dim1")?, rank)?,
            );
            Ok(permute(x, &perm))
        },
        cases: |r| {
            let s = dims(r, 3, 2, 5);
            vec![case(
                vec![("input", uniform(r, &s))],
                &[("dim0", "0"), ("dim1", "-1")],
            )]
        },
    },
    Check {
        op: "expand",
        reference: |x, a| {
            let x = input(x, "input")?;
            let size: Vec<usize> = a.ints("size")?.iter().map(|&d| d as usize).collect();
            let st = crate::tensor::shape::broadcast_strides(&x.shape, &size);
            let data = (0..size.iter().product())
                .map(|i| x.data[flat(&unravel(i, &size), &st)])
                .collect();
            Ok(HostTensor::new(&size, data))
        },
        cases: |r| {
            vec![
                case(vec![("input", uniform(r, &[3, 1]))], &[("size", "2,3,4")]),
                case(
                    vec![("input", uniform(r, &[1, 4, 1, 1]))],
                    &[("size", "2,4,3,5")],
                ),
            ]
        },
    },
    Check {
        op: "cat",
        reference: |x, a| cat(x, a.int("dim")?),
        cases: |r| {
            let (a, b) = (r.random_range(1..4), r.random_range(1..4));
            vec![case(
                vec![
                    ("tensors.0", uniform(r, &[2, a, 3])),
                    ("tensors.1", uniform(r, &[2, b, 3])),
                    ("tensors.2", uniform(r, &[2, 1, 3])),
                ],
                &[("dim", "1")],
            )]
        },
    },
    Check {
        op: "slice",
        reference: slice,
        cases: |r| {
            vec![
                case(
                    vec![("input", uniform(r, &[3, 7, 2]))],
                    &[("dim", "1"), ("start", "1"), ("end", "-1"), ("step", "2")],
                ),
                case(
                    vec![("input", uniform(r, &[5, 3]))],
                    &[("dim", "0"), ("start", "-3")],
                ),
            ]
        },
    },
];
