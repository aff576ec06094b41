//! Reference and cases of interpolate (nearest and bilinear), following PyTorch's
//! CPU upsample kernels.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::Result;
use crate::gradcheck::check::{case, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

/// PyTorch's nearest_idx. Its index arithmetic is f32, and the index is discrete,
/// so the reference repeats it in f32 rather than f64.
fn nearest_source(o: usize, n_in: usize, n_out: usize, factor: Option<f64>) -> usize {
    if n_out == n_in {
        return o;
    }
    if n_out == 2 * n_in {
        return o >> 1;
    }
    let scale = match factor {
        Some(f) => (1.0 / f) as f32,
        None => n_in as f32 / n_out as f32,
    };
    ((o as f32 * scale).floor() as usize).min(n_in - 1)
}

/// (index, weight) taps of output `o` along one axis: PyTorch's
/// compute_source_index_and_lambda, in f64.
fn linear_taps(
    o: usize,
    n_in: usize,
    n_out: usize,
    factor: Option<f64>,
    align: bool,
) -> [(usize, f64); 2] {
    if n_out == n_in {
        return [(o, 1.0), (o, 0.0)];
    }
    let src = if align {
        let scale = if n_out > 1 {
            (n_in - 1) as f64 / (n_out - 1) as f64
        } else {
            0.0
        };
        scale * o as f64
    } else {
        let scale = match factor {
            Some(f) => 1.0 / f,
            None => n_in as f64 / n_out as f64,
        };
        (scale * (o as f64 + 0.5) - 0.5).max(0.0)
    };
    let i0 = (src.floor() as usize).min(n_in - 1);
    let l1 = (src - i0 as f64).clamp(0.0, 1.0);
    let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
    [(i0, 1.0 - l1), (i1, l1)]
}

fn interpolate(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let [n, c, h, w] = [t.shape[0], t.shape[1], t.shape[2], t.shape[3]];
    let factor = Some(a.float("scale_factor")?).filter(|&f| f != 0.0);
    let [oh, ow] = match a.opt_ints("size")? {
        Some(s) => [s[0] as usize, *s.last().unwrap_or(&s[0]) as usize],
        None => {
            let f = factor.unwrap_or(0.0);
            [h, w].map(|v| (v as f64 * f).floor() as usize)
        }
    };
    let bilinear = a.str("mode")? == "bilinear";
    let align = a.bool("align_corners")?;
    let taps = |o: usize, n_in: usize, n_out: usize| {
        if bilinear {
            linear_taps(o, n_in, n_out, factor, align)
        } else {
            [(nearest_source(o, n_in, n_out, factor), 1.0), (0, 0.0)]
        }
    };
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let mut v = 0.0;
                for (r, wr) in taps(i, h, oh) {
                    for (q, wq) in taps(j, w, ow) {
                        v += wr * wq * t.data[plane * h * w + r * w + q];
                    }
                }
                out.push(v);
            }
        }
    }
    Ok(HostTensor::new(&[n, c, oh, ow], out))
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let nc = |r: &mut StdRng| [r.random_range(1..=2), r.random_range(1..=2)];
    let mut out = Vec::new();
    let mut add = |r: &mut StdRng, hw: [usize; 2], attrs: &[(&str, &str)]| {
        let [n, c] = nc(r);
        out.push(case(
            vec![("input", uniform(r, &[n, c, hw[0], hw[1]]))],
            attrs,
        ));
    };
    let bil = ("mode", "bilinear");
    let near = ("mode", "nearest");
    let aligned = ("align_corners", "true");
    add(r, [3, 5], &[bil, ("size", "7,8")]);
    add(r, [7, 9], &[bil, aligned, ("size", "4,5")]);
    add(r, [4, 5], &[bil, aligned, ("size", "1,3")]);
    add(r, [9, 8], &[bil, ("size", "4,3")]);
    add(r, [4, 5], &[bil, ("scale_factor", "1.7")]);
    add(r, [8, 7], &[bil, aligned, ("scale_factor", "0.6")]);
    add(r, [3, 5], &[bil, ("scale_factor", "1.2")]);
    add(r, [3, 4], &[near, ("size", "7,9")]);
    add(r, [8, 7], &[near, ("size", "3,5")]);
    add(r, [3, 4], &[near, ("scale_factor", "2")]);
    add(r, [4, 5], &[near, ("scale_factor", "1.5")]);
    out
}

pub static CHECKS: &[Check] = &[Check {
    op: "interpolate",
    reference: interpolate,
    cases,
}];
