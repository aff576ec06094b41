//! batch_norm, instance_norm, group_norm and layer_norm (shaders/norm.wgsl). All four
//! normalise groups of rows by the group's mean and biased variance and then apply a
//! per-channel (or, for layer_norm, per-element) affine; they differ only in how rows
//! form groups, which a `Layout` (layout.rs) describes. batch.rs, group.rs (instance
//! and group norm) and layer.rs build each one's layout; this file records them on the
//! tape and in the op table.

mod batch;
mod group;
mod layer;
mod layout;

pub use batch::{batch_norm, BatchNormOpts};
pub use group::{group_norm, instance_norm};
pub use layer::layer_norm;
pub use layout::{NormActivation, NormGrads, NormNeeds, NormSaved, Normalized};

use super::attrs::{AttrKind, AttrSpec};
use super::spec::{attr, f32_in, optional_in, InputSpec, OpCall, OpSpec};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

impl Var {
    /// Records a normalisation of `self` with optional affine parameters.
    fn record_norm(&self, n: Normalized, weight: Option<&Var>, bias: Option<&Var>) -> Var {
        let mut parents = vec![self];
        parents.extend(weight);
        parents.extend(bias);
        let needs = NormNeeds {
            input: self.requires_grad(),
            weight: weight.is_some_and(Var::requires_grad),
            bias: bias.is_some_and(Var::requires_grad),
        };
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        let x = self.value();
        let w = weight.map(Var::value);
        let saved = n.saved;
        Var::from_op(n.output, &parents, move |g| {
            let grads = saved.backward(&x, g, w.as_ref(), needs)?;
            let mut out = vec![grads.input];
            if has_w {
                out.push(grads.weight);
            }
            if has_b {
                out.push(grads.bias);
            }
            Ok(out)
        })
    }

    /// torch.nn.functional.batch_norm. `running_mean`/`running_var` are plain tensors
    /// (a module's buffers): in training mode they are updated IN PLACE, see
    /// [`batch_norm`]. Gradients flow to input, weight and bias in both modes.
    pub fn batch_norm(
        &self,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        weight: Option<&Var>,
        bias: Option<&Var>,
        opts: BatchNormOpts,
    ) -> Result<Var> {
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = batch_norm(
            &self.value(),
            running_mean,
            running_var,
            w.as_ref(),
            b.as_ref(),
            opts,
        )?;
        Ok(self.record_norm(n, weight, bias))
    }

    /// torch.nn.functional.instance_norm with the input's statistics.
    pub fn instance_norm(&self, weight: Option<&Var>, bias: Option<&Var>, eps: f32) -> Result<Var> {
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = instance_norm(&self.value(), w.as_ref(), b.as_ref(), eps)?;
        Ok(self.record_norm(n, weight, bias))
    }

    /// torch.nn.functional.group_norm.
    pub fn group_norm(
        &self,
        num_groups: i64,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> Result<Var> {
        let groups = usize::try_from(num_groups).map_err(|_| {
            Error::op(
                "group_norm",
                format!("num_groups={num_groups} must be positive"),
            )
        })?;
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = group_norm(&self.value(), groups, w.as_ref(), b.as_ref(), eps)?;
        Ok(self.record_norm(n, weight, bias))
    }

    /// torch.nn.functional.layer_norm over the trailing `normalized_shape` dims.
    pub fn layer_norm(
        &self,
        normalized_shape: &[i64],
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f32,
    ) -> Result<Var> {
        let shape = normalized_shape
            .iter()
            .map(|&d| {
                usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
                    Error::op(
                        "layer_norm",
                        format!("normalized_shape has a non-positive size {d}"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let n = layer_norm(&self.value(), &shape, w.as_ref(), b.as_ref(), eps)?;
        Ok(self.record_norm(n, weight, bias))
    }
}

const AFFINE_INPUTS: &[InputSpec] = &[
    f32_in("input"),
    optional_in("weight", true),
    optional_in("bias", true),
];

const EPS: AttrSpec = attr("eps", AttrKind::Float, Some("1e-5"));

fn affine(c: &OpCall) -> (Option<&Var>, Option<&Var>) {
    (c.opt_input("weight"), c.opt_input("bias"))
}

pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "batch_norm",
        summary: "normalise each channel by batch statistics (training, updating running_mean/var in place) or running statistics (eval), then an optional relu or relu6",
        inputs: &[
            f32_in("input"),
            optional_in("running_mean", false),
            optional_in("running_var", false),
            optional_in("weight", true),
            optional_in("bias", true),
        ],
        attrs: &[
            attr("training", AttrKind::Bool, Some("false")),
            attr("momentum", AttrKind::Float, Some("0.1")),
            EPS,
            attr("activation", AttrKind::Str, Some("none")),
        ],
        run: |c| {
            let (w, b) = affine(c);
            let (rm, rv) = (
                c.opt_input("running_mean").map(Var::value),
                c.opt_input("running_var").map(Var::value),
            );
            let opts = BatchNormOpts {
                training: c.attrs.bool("training")?,
                momentum: c.attrs.float("momentum")? as f32,
                eps: c.attrs.float("eps")? as f32,
                activation: match c.attrs.str("activation")? {
                    "none" => NormActivation::None,
                    "relu" => NormActivation::Relu,
                    "relu6" => NormActivation::Relu6,
                    other => {
                        return Err(Error::op(
                            "batch_norm",
                            format!("activation {other:?} is not none, relu or relu6"),
                        ))
                    }
                },
            };
            c.input("input")?
                .batch_norm(rm.as_ref(), rv.as_ref(), w, b, opts)
        },
    },
    OpSpec {
        name: "instance_norm",
        summary: "normalise each (sample, channel) plane by its own statistics",
        inputs: AFFINE_INPUTS,
        attrs: &[EPS],
        run: |c| {
            let (w, b) = affine(c);
            c.input("input")?
                .instance_norm(w, b, c.attrs.float("eps")? as f32)
        },
    },
    OpSpec {
        name: "layer_norm",
        summary: "normalise over the trailing normalized_shape dims, elementwise affine",
        inputs: AFFINE_INPUTS,
        attrs: &[attr("normalized_shape", AttrKind::Ints, None), EPS],
        run: |c| {
            let (w, b) = affine(c);
            c.input("input")?.layer_norm(
                &c.attrs.ints("normalized_shape")?,
                w,
                b,
                c.attrs.float("eps")? as f32,
            )
        },
    },
    OpSpec {
        name: "group_norm",
        summary: "normalise each sample's num_groups channel groups by their statistics",
        inputs: AFFINE_INPUTS,
        attrs: &[attr("num_groups", AttrKind::Int, None), EPS],
        run: |c| {
            let (w, b) = affine(c);
            c.input("input")?.group_norm(
                c.attrs.int("num_groups")?,
                w,
                b,
                c.attrs.float("eps")? as f32,
            )
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;
    use crate::tensor::elementwise::full;

    const N: usize = 3;
    const C: usize = 2;
    const S: usize = 4;

    fn input() -> Vec<f32> {
        (0..N * C * S)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3 + (i / S % C) as f32)
            .collect()
    }

    fn channel_values(x: &[f32], c: usize) -> Vec<f64> {
        (0..x.len())
            .filter(|i| i / S % C == c)
            .map(|i| x[i] as f64)
            .collect()
    }

    fn close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= tol, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn training_updates_running_stats_in_place() {
        let gpu = Gpu::shared().unwrap();
        let data = input();
        let x = Tensor::from_slice(&gpu, &data, &[N, C, 2, 2]).unwrap();
        let mut rm = vec![0.5f64, -0.25];
        let mut rv = vec![2.0f64, 0.75];
        let rm_t = Tensor::from_slice(&gpu, &[0.5, -0.25], &[C]).unwrap();
        let rv_t = Tensor::from_slice(&gpu, &[2.0, 0.75], &[C]).unwrap();
        let opts = BatchNormOpts {
            training: true,
            ..Default::default()
        };
        // Twice, so the second update starts from the first one's result.
        for _ in 0..2 {
            let out = batch_norm(&x, Some(&rm_t), Some(&rv_t), None, None, opts).unwrap();
            let mut want_y = vec![0.0; data.len()];
            for c in 0..C {
                let v = channel_values(&data, c);
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n;
                rm[c] = 0.9 * rm[c] + 0.1 * mean;
                rv[c] = 0.9 * rv[c] + 0.1 * var * n / (n - 1.0);
                for (i, y) in want_y.iter_mut().enumerate() {
                    if i / S % C == c {
                        *y = (data[i] as f64 - mean) / (var + 1e-5).sqrt();
                    }
                }
            }
            close(&out.output.to_vec().unwrap(), &want_y, 1e-5);
        }
        close(&rm_t.to_vec().unwrap(), &rm, 1e-6);
        close(&rv_t.to_vec().unwrap(), &rv, 1e-6);
    }

    #[test]
    fn a_channel_whose_batch_statistics_are_not_finite_keeps_its_running_stats() {
        let gpu = Gpu::shared().unwrap();
        let mut data = input();
        for bad in [f32::NAN, f32::INFINITY] {
            // Channel 0 of the second image; channel 1 stays finite.
            data[C * S + 1] = bad;
            let x = Tensor::from_slice(&gpu, &data, &[N, C, 2, 2]).unwrap();
            let rm_t = Tensor::from_slice(&gpu, &[0.5, -0.25], &[C]).unwrap();
            let rv_t = Tensor::from_slice(&gpu, &[2.0, 0.75], &[C]).unwrap();
            let opts = BatchNormOpts {
                training: true,
                ..Default::default()
            };
            batch_norm(&x, Some(&rm_t), Some(&rv_t), None, None, opts).unwrap();
            let v = channel_values(&data, 1);
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / (n - 1.0);
            close(
                &rm_t.to_vec().unwrap(),
                &[0.5, 0.9 * -0.25 + 0.1 * mean],
                1e-6,
            );
            close(
                &rv_t.to_vec().unwrap(),
                &[2.0, 0.9 * 0.75 + 0.1 * var],
                1e-6,
            );
        }
    }

    #[test]
    fn eval_uses_running_stats_and_leaves_them() {
        let gpu = Gpu::shared().unwrap();
        let data = input();
        let (rm, rv, w, b) = (
            [0.5f32, -0.25],
            [2.0f32, 0.75],
            [1.5f32, -0.5],
            [0.1f32, 0.2],
        );
        let x = Var::leaf(Tensor::from_slice(&gpu, &data, &[N, C, 2, 2]).unwrap());
        let rm_t = Tensor::from_slice(&gpu, &rm, &[C]).unwrap();
        let rv_t = Tensor::from_slice(&gpu, &rv, &[C]).unwrap();
        let wv = Var::leaf(Tensor::from_slice(&gpu, &w, &[C]).unwrap());
        let bv = Var::leaf(Tensor::from_slice(&gpu, &b, &[C]).unwrap());
        let y = x
            .batch_norm(
                Some(&rm_t),
                Some(&rv_t),
                Some(&wv),
                Some(&bv),
                Default::default(),
            )
            .unwrap();
        let scale = |c: usize| w[c] as f64 / (rv[c] as f64 + 1e-5).sqrt();
        let want: Vec<f64> = (0..data.len())
            .map(|i| {
                let c = i / S % C;
                (data[i] as f64 - rm[c] as f64) * scale(c) + b[c] as f64
            })
            .collect();
        close(&y.value().to_vec().unwrap(), &want, 1e-5);
        let ones = full(&gpu, &y.shape(), 1.0).unwrap();
        let grads = y.backward_with(ones).unwrap();
        let dx: Vec<f64> = (0..data.len()).map(|i| scale(i / S % C)).collect();
        close(&grads.get(&x).unwrap().to_vec().unwrap(), &dx, 1e-5);
        let db = vec![(N * S) as f64; C];
        close(&grads.get(&bv).unwrap().to_vec().unwrap(), &db, 1e-4);
        close(&rm_t.to_vec().unwrap(), &[0.5, -0.25], 0.0);
        close(&rv_t.to_vec().unwrap(), &[2.0, 0.75], 0.0);
    }

    #[test]
    fn refuses_bad_inputs() {
        let gpu = Gpu::shared().unwrap();
        let x = Tensor::from_slice(&gpu, &input(), &[N, C, 2, 2]).unwrap();
        let three = full(&gpu, &[3], 1.0).unwrap();
        let two = full(&gpu, &[C], 1.0).unwrap();
        let err = |r: Result<Normalized>| match r {
            Ok(_) => panic!("accepted a bad call"),
            Err(e) => e.to_string(),
        };
        let train = BatchNormOpts {
            training: true,
            ..Default::default()
        };
        let e = err(batch_norm(&x, None, None, Some(&three), None, train));
        assert!(e.contains("weight must have shape [2], got [3]"), "{e}");
        let e = err(batch_norm(&x, Some(&three), Some(&two), None, None, train));
        assert!(e.contains("running_mean must have shape [2]"), "{e}");
        let e = err(batch_norm(&x, None, None, None, None, Default::default()));
        assert!(e.contains("eval mode"), "{e}");
        let e = err(batch_norm(&x, Some(&two), None, None, None, train));
        assert!(e.contains("given together"), "{e}");
        let single = x.reshape(&[1, N * C * S, 1]).unwrap();
        let e = err(batch_norm(&single, None, None, None, None, train));
        assert!(e.contains("more than 1 value per channel"), "{e}");
        let e = err(group_norm(&x, 3, None, None, 1e-5));
        assert!(e.contains("num_groups=3 must divide the 2 channels"), "{e}");
        let e = err(layer_norm(&x, &[2, 3], None, None, 1e-5));
        assert!(e.contains("normalized_shape [2, 3]"), "{e}");
        let e = err(layer_norm(&x, &[2, 2], Some(&two), None, 1e-5));
        assert!(e.contains("weight must have shape [2, 2]"), "{e}");
        let e = err(instance_norm(
            &x.reshape(&[N, C * S]).unwrap(),
            None,
            None,
            1e-5,
        ));
        assert!(e.contains("more than 1 spatial element"), "{e}");
    }
}
