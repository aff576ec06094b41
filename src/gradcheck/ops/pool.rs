//! References and cases of max_pool2d, avg_pool2d and adaptive_avg_pool2d.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gradcheck::check::{case, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;
use crate::ops::pool::pooled_size;

/// Per-axis (kernel, stride, padding, dilation) from a call's attributes.
struct Geom {
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    ceil: bool,
}

fn two(v: Vec<i64>) -> [usize; 2] {
    match v[..] {
        [a] => [a as usize; 2],
        _ => [v[0] as usize, v[1] as usize],
    }
}

fn geom(a: &Attrs, dilation: bool) -> Result<Geom> {
    let k = two(a.ints("kernel_size")?);
    Ok(Geom {
        k,
        s: a.opt_ints("stride")?.map(two).unwrap_or(k),
        p: two(a.ints("padding")?),
        d: if dilation {
            two(a.ints("dilation")?)
        } else {
            [1, 1]
        },
        ceil: a.bool("ceil_mode")?,
    })
}

/// (planes, H, W) of a [N, C, H, W] or [C, H, W] input.
fn planes(x: &HostTensor) -> (usize, usize, usize) {
    let r = x.shape.len();
    let (h, w) = (x.shape[r - 2], x.shape[r - 1]);
    (x.numel() / (h * w), h, w)
}

fn out_shape(x: &HostTensor, oh: usize, ow: usize) -> Vec<usize> {
    let mut s = x.shape.clone();
    let r = s.len();
    s[r - 2] = oh;
    s[r - 1] = ow;
    s
}

/// Pools every window of `g` over `x`, calling `f(plane, in-bounds taps, output
/// (oh, ow))` for the value of each output.
fn pool(x: &HostTensor, g: &Geom, f: impl Fn(&[f64], [i64; 2]) -> f64) -> Result<HostTensor> {
    let (planes, h, w) = planes(x);
    let size = |a: usize, n: usize| pooled_size(n, g.k[a], g.s[a], g.p[a], g.d[a], g.ceil);
    let (oh, ow) = (size(0, h), size(1, w));
    if oh < 1 || ow < 1 {
        return Err(Error::op("reference", "pooled size below 1"));
    }
    let (oh, ow) = (oh as usize, ow as usize);
    let mut out = Vec::with_capacity(planes * oh * ow);
    for pl in 0..planes {
        for i in 0..oh {
            for j in 0..ow {
                let start = [
                    (i * g.s[0]) as i64 - g.p[0] as i64,
                    (j * g.s[1]) as i64 - g.p[1] as i64,
                ];
                let mut taps = Vec::new();
                for a in 0..g.k[0] {
                    for b in 0..g.k[1] {
                        let r = start[0] + (a * g.d[0]) as i64;
                        let c = start[1] + (b * g.d[1]) as i64;
                        if (0..h as i64).contains(&r) && (0..w as i64).contains(&c) {
                            taps.push(x.data[pl * h * w + r as usize * w + c as usize]);
                        }
                    }
                }
                out.push(f(&taps, start));
            }
        }
    }
    Ok(HostTensor::new(&out_shape(x, oh, ow), out))
}

fn max_pool2d(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    pool(input(x, "input")?, &geom(a, true)?, |taps, _| {
        taps.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    })
}

fn avg_pool2d(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let g = geom(a, false)?;
    let include_pad = a.bool("count_include_pad")?;
    let (_, h, w) = planes(t);
    pool(t, &g, |taps, start| {
        let divisor = if include_pad {
            // Window positions inside the padded input [-p, n + p).
            let inside = |axis: usize, n: usize| {
                (0..g.k[axis] as i64)
                    .filter(|&o| start[axis] + o < (n + g.p[axis]) as i64)
                    .count()
            };
            inside(0, h) * inside(1, w)
        } else {
            taps.len()
        };
        taps.iter().sum::<f64>() / divisor as f64
    })
}

fn adaptive_avg_pool2d(x: &Inputs, a: &Attrs) -> Result<HostTensor> {
    let t = input(x, "input")?;
    let [oh, ow] = two(a.ints("output_size")?);
    let (planes, h, w) = planes(t);
    let bin = |i: usize, n: usize, m: usize| {
        let lo = (i as f64 * n as f64 / m as f64).floor() as usize;
        let hi = ((i + 1) as f64 * n as f64 / m as f64).ceil() as usize;
        lo..hi
    };
    let mut out = Vec::new();
    for pl in 0..planes {
        for i in 0..oh {
            for j in 0..ow {
                let (mut sum, mut count) = (0.0, 0);
                for r in bin(i, h, oh) {
                    for c in bin(j, w, ow) {
                        sum += t.data[pl * h * w + r * w + c];
                        count += 1;
                    }
                }
                out.push(sum / count as f64);
            }
        }
    }
    Ok(HostTensor::new(&out_shape(t, oh, ow), out))
}

/// Distinct values spread over [-1, 1), so max pooling has no ties and finite
/// differences never cross a kink.
fn distinct(rng: &mut StdRng, shape: &[usize]) -> HostTensor {
    let n: usize = shape.iter().product();
    let mut ranks: Vec<usize> = (0..n).collect();
    ranks.shuffle(rng);
    let data = ranks
        .into_iter()
        .map(|r| 2.0 * r as f64 / n as f64 - 1.0)
        .collect();
    HostTensor::new(shape, data)
}

fn size_in(rng: &mut StdRng, lo: usize, hi: usize) -> usize {
    rng.random_range(lo..=hi)
}

fn max_cases(r: &mut StdRng) -> Vec<Case> {
    let shape = |r: &mut StdRng, lo, hi| {
        vec![
            size_in(r, 1, 2),
            size_in(r, 1, 3),
            size_in(r, lo, hi),
            size_in(r, lo, hi),
        ]
    };
    let s1 = shape(r, 5, 9);
    let s2 = shape(r, 6, 9);
    let s3 = vec![1, 2, 2 * size_in(r, 2, 3) + 1, 2 * size_in(r, 3, 4) + 1];
    let s4 = vec![size_in(r, 1, 3), size_in(r, 4, 7), size_in(r, 4, 7)];
    vec![
        case(
            vec![("input", distinct(r, &s1))],
            &[("kernel_size", "3"), ("stride", "2"), ("padding", "1")],
        ),
        case(
            vec![("input", distinct(r, &s2))],
            &[
                ("kernel_size", "3"),
                ("stride", "2"),
                ("padding", "1"),
                ("dilation", "2"),
                ("ceil_mode", "true"),
            ],
        ),
        case(
            vec![("input", distinct(r, &s3))],
            &[
                ("kernel_size", "2,3"),
                ("padding", "1"),
                ("ceil_mode", "true"),
            ],
        ),
        case(
            vec![("input", distinct(r, &s4))],
            &[
                ("kernel_size", "2"),
                ("stride", "1"),
                ("padding", "1"),
                ("dilation", "2"),
            ],
        ),
    ]
}

fn avg_cases(r: &mut StdRng) -> Vec<Case> {
    let even = vec![
        size_in(r, 1, 2),
        2,
        2 * size_in(r, 3, 4),
        2 * size_in(r, 3, 4),
    ];
    let odd = vec![
        1,
        size_in(r, 1, 3),
        2 * size_in(r, 2, 3) + 1,
        2 * size_in(r, 2, 4) + 1,
    ];
    let small = vec![size_in(r, 1, 3), 5, 7];
    vec![
        case(
            vec![("input", uniform(r, &even))],
            &[
                ("kernel_size", "3"),
                ("stride", "2"),
                ("padding", "1"),
                ("ceil_mode", "true"),
            ],
        ),
        case(
            vec![("input", uniform(r, &even))],
            &[
                ("kernel_size", "3"),
                ("stride", "2"),
                ("padding", "1"),
                ("ceil_mode", "true"),
                ("count_include_pad", "false"),
            ],
        ),
        case(
            vec![("input", uniform(r, &odd))],
            &[
                ("kernel_size", "3,2"),
                ("stride", "2,1"),
                ("padding", "1,0"),
                ("count_include_pad", "false"),
            ],
        ),
        case(
            vec![("input", uniform(r, &small))],
            &[("kernel_size", "2"), ("ceil_mode", "true")],
        ),
    ]
}

fn adaptive_cases(r: &mut StdRng) -> Vec<Case> {
    let global = vec![
        size_in(r, 1, 2),
        size_in(r, 1, 3),
        size_in(r, 3, 6),
        size_in(r, 3, 6),
    ];
    vec![
        case(
            vec![("input", uniform(r, &global))],
            &[("output_size", "1")],
        ),
        case(
            vec![("input", uniform(r, &[1, 2, 7, 7]))],
            &[("output_size", "3")],
        ),
        case(
            vec![("input", uniform(r, &[2, 1, 5, 4]))],
            &[("output_size", "3,7")],
        ),
    ]
}

pub static CHECKS: &[Check] = &[
    Check {
        op: "max_pool2d",
        reference: max_pool2d,
        cases: max_cases,
    },
    Check {
        op: "avg_pool2d",
        reference: avg_pool2d,
        cases: avg_cases,
    },
    Check {
        op: "adaptive_avg_pool2d",
        reference: adaptive_avg_pool2d,
        cases: adaptive_cases,
    },
];
