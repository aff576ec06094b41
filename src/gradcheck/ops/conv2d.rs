//! Reference and cases of conv2d.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gradcheck::check::{case, input, uniform, Case, Check, Inputs};
use crate::gradcheck::host::HostTensor;
use crate::ops::attrs::Attrs;

/// The direct definition: every output is a sum over its group's input channels and
/// the kernel taps that land inside the (zero-padded) input.
fn conv2d(x: &Inputs, attrs: &Attrs) -> Result<HostTensor> {
    let (inp, w) = (input(x, "input")?, input(x, "weight")?);
    let bias = x.iter().find(|(n, _)| n == "bias").map(|(_, t)| t);
    let (s, p, d) = (
        attrs.ints("stride")?,
        attrs.ints("padding")?,
        attrs.ints("dilation")?,
    );
    let groups = attrs.int("groups")? as usize;
    let [n, cin, h, wd] = inp.shape[..] else {
        return Err(Error::op("reference", "conv2d input must be 4-D"));
    };
    let [cout, cg, kh, kw] = w.shape[..] else {
        return Err(Error::op("reference", "conv2d weight must be 4-D"));
    };
    let span = |size: usize, k: usize, a: usize| {
        (size as i64 + 2 * p[a] - d[a] * (k as i64 - 1) - 1) / s[a] + 1
    };
    let (hout, wout) = (span(h, kh, 0), span(wd, kw, 1));
    if hout < 1 || wout < 1 || cin != cg * groups {
        return Err(Error::op("reference", "conv2d shapes do not fit"));
    }
    let (hout, wout) = (hout as usize, wout as usize);
    let coutg = cout / groups;
    let mut out = HostTensor::zeros(&[n, cout, hout, wout]);
    for b in 0..n {
        for co in 0..cout {
            let g = co / coutg;
            for oh in 0..hout {
                for ow in 0..wout {
                    let mut acc = bias.map_or(0.0, |t| t.data[co]);
                    for ci in 0..cg {
                        for ky in 0..kh {
                            let ih = (oh as i64) * s[0] - p[0] + (ky as i64) * d[0];
                            if ih < 0 || ih >= h as i64 {
                                continue;
                            }
                            for kx in 0..kw {
                                let iw = (ow as i64) * s[1] - p[1] + (kx as i64) * d[1];
                                if iw < 0 || iw >= wd as i64 {
                                    continue;
                                }
                                let xi =
                                    ((b * cin + g * cg + ci) * h + ih as usize) * wd + iw as usize;
                                let wi = ((co * cg + ci) * kh + ky) * kw + kx;
                                acc += inp.data[xi] * w.data[wi];
                            }
                        }
                    }
                    out.data[((b * cout + co) * hout + oh) * wout + ow] = acc;
                }
            }
        }
    }
    Ok(out)
}

/// One geometry of a case: shapes, attributes and whether it has a bias.
struct Setup {
    n: usize,
    cin: usize,
    hw: [usize; 2],
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

const BASE: Setup = Setup {
    n: 2,
    cin: 3,
    hw: [7, 6],
    cout: 5,
    k: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
    dilation: [1, 1],
    groups: 1,
    bias: true,
};

fn pair_text(v: [usize; 2]) -> String {
    format!("{},{}", v[0], v[1])
}

fn build(r: &mut StdRng, s: Setup) -> Case {
    let mut inputs = vec![
        ("input", uniform(r, &[s.n, s.cin, s.hw[0], s.hw[1]])),
        (
            "weight",
            uniform(r, &[s.cout, s.cin / s.groups, s.k[0], s.k[1]]),
        ),
    ];
    if s.bias {
        inputs.push(("bias", uniform(r, &[s.cout])));
    }
    let (st, pd, dl, g) = (
        pair_text(s.stride),
        pair_text(s.padding),
        pair_text(s.dilation),
        s.groups.to_string(),
    );
    case(
        inputs,
        &[
            ("stride", &st),
            ("padding", &pd),
            ("dilation", &dl),
            ("groups", &g),
        ],
    )
}

fn cases(r: &mut StdRng) -> Vec<Case> {
    let mut odd = |lo: usize, hi: usize| r.random_range(lo..=hi) | 1;
    let (h, w) = (odd(5, 9), odd(5, 9));
    let (c, k) = (odd(3, 7), odd(5, 9));
    let setups = [
        Setup { hw: [h, w], ..BASE },
        // Stride 2 on odd sizes, no bias, more output channels than one block of 4.
        Setup {
            cin: 4,
            cout: 9,
            hw: [h, w],
            stride: [2, 2],
            bias: false,
            ..BASE
        },
        Setup {
            hw: [8, 7],
            padding: [2, 2],
            dilation: [2, 2],
            ..BASE
        },
        // Rate 6: most taps of border pixels fall wholly in the padding.
        Setup {
            n: 1,
            hw: [h, w],
            padding: [6, 6],
            dilation: [6, 6],
            ..BASE
        },
        // Atrous rates of DeepLab's ASPP: only the centre tap ever lands in the input.
        Setup {
            n: 1,
            cin: 2,
            cout: 3,
            hw: [h, w],
            padding: [12, 36],
            dilation: [12, 36],
            bias: false,
            ..BASE
        },
        Setup {
            cin: 4,
            cout: 6,
            groups: 2,
            hw: [6, 7],
            ..BASE
        },
        // Depthwise, strided.
        Setup {
            cin: c,
            cout: c,
            groups: c,
            hw: [h, w],
            stride: [2, 2],
            ..BASE
        },
        // Depthwise at stride 1 (shaders/depthwise.wgsl, 8 pixels an invocation):
        // rows of two blocks, the second partial.
        Setup {
            cin: 5,
            cout: 5,
            groups: 5,
            hw: [6, 13],
            ..BASE
        },
        // Depthwise, dilated, wide enough for 8-pixel blocks, no bias.
        Setup {
            cin: 3,
            cout: 3,
            groups: 3,
            hw: [9, 11],
            padding: [2, 2],
            dilation: [2, 2],
            bias: false,
            ..BASE
        },
        // Depthwise with a non-square kernel and unequal strides and dilations.
        Setup {
            cin: 4,
            cout: 4,
            groups: 4,
            hw: [8, 12],
            k: [2, 3],
            stride: [1, 2],
            padding: [0, 1],
            dilation: [2, 1],
            ..BASE
        },
        // Depthwise with a channel multiplier of 2, dilated, no bias.
        Setup {
            cin: 3,
            cout: 6,
            groups: 3,
            hw: [9, 8],
            padding: [2, 2],
            dilation: [2, 2],
            bias: false,
            ..BASE
        },
        // Asymmetric everything with a non-square kernel.
        Setup {
            hw: [9, 10],
            k: [3, 2],
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 3],
            ..BASE
        },
        Setup {
            hw: [k, 8],
            k: [2, 3],
            stride: [1, 3],
            padding: [0, 2],
            dilation: [3, 2],
            bias: false,
            ..BASE
        },
        // 1x1 with channel counts off the block of 4, both ways.
        Setup {
            cin: 9,
            cout: 6,
            hw: [5, 7],
            k: [1, 1],
            padding: [0, 0],
            ..BASE
        },
        Setup {
            cin: 6,
            cout: 3,
            hw: [w, h],
            k: [1, 1],
            padding: [0, 0],
            stride: [2, 2],
            bias: false,
            ..BASE
        },
        // 1x1, stride 1, no bias: computed as matmuls (pointwise.rs), for one image
        // (no sum over the batch) and for two.
        Setup {
            n: 1,
            cin: 4,
            cout: 6,
            hw: [3, 5],
            k: [1, 1],
            padding: [0, 0],
            bias: false,
            ..BASE
        },
        Setup {
            cin: 5,
            cout: 7,
            hw: [6, 5],
            k: [1, 1],
            padding: [0, 0],
            bias: false,
            ..BASE
        },
    ];
    setups.into_iter().map(|s| build(r, s)).collect()
}

pub static CHECKS: &[Check] = &[Check {
    op: "conv2d",
    reference: conv2d,
    cases,
}];

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::gpu::Gpu;
    use crate::op_table;
    use crate::ops::conv2d::{
        conv2d_backward_input, conv2d_backward_weight, Conv2dGeometry, Conv2dParams,
    };
    use crate::tensor::Tensor;

    fn dot(a: &[f32], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(&x, y)| x as f64 * y).sum()
    }

    fn norm(v: impl Iterator<Item = f64>) -> f64 {
        v.map(|x| x * x).sum::<f64>().sqrt()
    }

    /// Shapes that span several workgroups and channel blocks, which the gradient
    /// checks' small cases do not. The forward is compared with the reference; the
    /// gradients by adjointness with random probes v and u, <g_x, v> = <g_y,
    /// conv2d(v, w)> and <g_w, u> = <g_y, conv2d(x, u)>, which needs the reference
    /// only, and no finite differences over thousands of inputs.
    #[test]
    fn kernels_match_the_reference_across_workgroups() {
        let gpu = Gpu::shared().unwrap();
        let mut r = StdRng::seed_from_u64(11);
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
            // An ASPP branch on a 4x4 map: the weight gradient's serial form.
            (
                [2, 130, 4, 4],
                [33, 130, 3, 3],
                Conv2dParams {
                    stride: [1, 1],
                    padding: [2, 2],
                    dilation: [2, 2],
                    groups: 1,
                },
            ),
            // A pointwise convolution over several matmul tiles each way.
            (
                [3, 70, 9, 11],
                [66, 70, 1, 1],
                Conv2dParams {
                    stride: [1, 1],
                    padding: [0, 0],
                    dilation: [1, 1],
                    groups: 1,
                },
            ),
        ];
        let spec = op_table::find("conv2d").unwrap();
        for (input_shape, weight_shape, p) in cases {
            let g = Conv2dGeometry::new(&input_shape, &weight_shape, p).unwrap();
            let given: Vec<(String, String)> = [
                ("stride", pair_text(p.stride)),
                ("padding", pair_text(p.padding)),
                ("dilation", pair_text(p.dilation)),
                ("groups", p.groups.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let attrs = Attrs::resolve("conv2d", spec.attrs, &given).unwrap();
            let mut draw = |shape: &[usize]| -> (Vec<f32>, HostTensor) {
                let v = uniform(&mut r, shape).to_f32();
                let h = HostTensor::from_f32(shape, &v);
                (v, h)
            };
            let (x, xh) = draw(&input_shape);
            let (w, wh) = draw(&weight_shape);
            let (gy, _) = draw(&g.output_shape());
            let (_, probe_x) = draw(&input_shape);
            let (_, probe_w) = draw(&weight_shape);
            let reference = |x: &HostTensor, w: &HostTensor| {
                let inputs = [
                    ("input".to_string(), x.clone()),
                    ("weight".to_string(), w.clone()),
                ];
                conv2d(&inputs, &attrs).unwrap()
            };
            let xt = Tensor::from_slice(&gpu, &x, &input_shape).unwrap();
            let wt = Tensor::from_slice(&gpu, &w, &weight_shape).unwrap();
            let gyt = Tensor::from_slice(&gpu, &gy, &g.output_shape()).unwrap();
            let y = crate::ops::conv2d::conv2d(&xt, &wt, None, p)
                .unwrap()
                .to_vec()
                .unwrap();
            let want = reference(&xh, &wh);
            let err = norm(y.iter().zip(&want.data).map(|(&a, b)| a as f64 - b));
            assert!(
                err <= 1e-5 * norm(want.data.iter().copied()),
                "forward: error {err}"
            );
            let gx = conv2d_backward_input(&gyt, &wt, &g)
                .unwrap()
                .to_vec()
                .unwrap();
            let gw = conv2d_backward_weight(&gyt, &xt, &g)
                .unwrap()
                .to_vec()
                .unwrap();
            for (what, grad, probe, image) in [
                ("input grad", &gx, &probe_x, reference(&probe_x, &wh)),
                ("weight grad", &gw, &probe_w, reference(&xh, &probe_w)),
            ] {
                let (lhs, rhs) = (dot(grad, &probe.data), dot(&gy, &image.data));
                let scale = norm(grad.iter().map(|&v| v as f64)) * norm(probe.data.iter().copied());
                assert!(
                    (lhs - rhs).abs() <= 1e-5 * scale,
                    "{what}: <g, v> = {lhs} but <g_y, conv2d> = {rhs}"
                );
            }
        }
    }
}
