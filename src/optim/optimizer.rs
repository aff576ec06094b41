//! SGD (momentum, nesterov, weight decay), Adam and AdamW over parameter groups, each
//! step one dispatch per parameter tensor with no host round trip.

use super::finite::{FiniteFlags, Nonfinite, OnNonfinite};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::kernels::zeros;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Sgd {
        momentum: f32,
        dampening: f32,
        nesterov: bool,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
    AdamW {
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

/// Parameters sharing a learning-rate multiplier and weight decay (e.g. a head at lr x10).
pub struct ParamGroup {
    /// (name, parameter): the name is how a non-finite gradient is reported.
    pub params: Vec<(String, Var)>,
    pub lr_scale: f32,
    pub weight_decay: f32,
}

struct Slot {
    name: String,
    param: Var,
    state0: Tensor,
    /// Adam's second moment; SGD keeps only `state0`.
    state1: Option<Tensor>,
    lr_scale: f32,
    weight_decay: f32,
}

pub struct Optimizer {
    kind: Kind,
    slots: Vec<Slot>,
    step: u32,
    /// The rate a schedule's factor multiplies.
    base_lr: f64,
    /// The rate of the last step.
    lr: f64,
    finite: FiniteFlags,
}

impl Optimizer {
    pub fn new(kind: Kind, groups: Vec<ParamGroup>, base_lr: f64) -> Result<Optimizer> {
        if let Kind::Sgd {
            nesterov: true,
            momentum,
            dampening,
        } = kind
        {
            if momentum <= 0.0 || dampening != 0.0 {
                return Err(Error::Usage(
                    "nesterov momentum needs momentum > 0 and dampening 0".into(),
                ));
            }
        }
        let mut slots = Vec::new();
        for g in groups {
            for (name, p) in g.params {
                if !p.is_leaf() || !p.requires_grad() {
                    return Err(Error::Autograd(
                        "optimiser parameters must be leaves that require grad".into(),
                    ));
                }
                let v = p.value();
                slots.push(Slot {
                    state0: zeros(v.gpu(), v.shape())?,
                    state1: match kind {
                        Kind::Sgd { .. } => None,
                        _ => Some(zeros(v.gpu(), v.shape())?),
                    },
                    name,
                    param: p,
                    lr_scale: g.lr_scale,
                    weight_decay: g.weight_decay,
                });
            }
        }
        let names = slots.iter().map(|s| s.name.clone()).collect();
        Ok(Optimizer {
            kind,
            slots,
            step: 0,
            base_lr,
            lr: base_lr,
            finite: FiniteFlags::new(names),
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// The learning rate of the last step (the base rate before the first).
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Applies one update at the base learning rate times `lr_factor` (the schedule's)
    /// to every parameter with a gradient (parameters without one, e.g. unused this
    /// step, are left alone).
    pub fn step(&mut self, lr_factor: f64) -> Result<()> {
        self.step += 1;
        self.lr = self.base_lr * lr_factor;
        let lr = self.lr as f32;
        let mark = self.finite.mark();
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(grad) = s.param.grad() else { continue };
            let w = s.param.value();
            let gpu = w.gpu();
            let flags = self.finite.buffer(gpu)?;
            let n = w.numel();
            let lr = lr * s.lr_scale;
            let (entry, c, decoupled) = match self.kind {
                Kind::Sgd {
                    momentum,
                    dampening,
                    nesterov,
                } => (
                    "sgd",
                    [momentum, dampening, f32::from(u8::from(nesterov))],
                    0,
                ),
                Kind::Adam { beta1, beta2, eps } => ("adam", [beta1, beta2, eps], 0),
                Kind::AdamW { beta1, beta2, eps } => ("adam", [beta1, beta2, eps], 1),
            };
            let p = Params::new("optimizer")
                .idx("n", n)?
                .u32("step", self.step)
                .f32("lr", lr)
                .f32("weight_decay", s.weight_decay)
                .f32("c0", c[0])
                .f32("c1", c[1])
                .f32("c2", c[2])
                .u32("decoupled", decoupled)
                .idx("flag_slot", slot)?
                .u32("mark", mark);
            let mut buffers = vec![w.buffer(), grad.buffer(), s.state0.buffer()];
            buffers.extend(s.state1.as_ref().map(|t| t.buffer()));
            buffers.push(flags.buffer());
            gpu.dispatch(
                &Kernel::new("optim", entry),
                &buffers,
                &p,
                gpu.grid(n as u64, WORKGROUP),
            )?;
        }
        Ok(())
    }

    /// Records step `step`'s `terms` (the loss "loss" and its parts) in the
    /// finiteness flags, on the GPU; the gradients are flagged by the update that
    /// reads them. With `Skip` the gradients are flagged now too, the flags are read
    /// and a step that is not finite is refused before anything is updated; with
    /// `Stop` nothing is read: [`Optimizer::first_nonfinite`] tells later.
    pub fn check_finite(
        &mut self,
        terms: &[(&str, Tensor)],
        step: usize,
        mode: OnNonfinite,
    ) -> Result<()> {
        let Some(first) = self.slots.first() else {
            return Ok(());
        };
        let flags = self.finite.buffer(first.param.value().gpu())?;
        let gradients: Vec<(usize, Tensor)> = match mode {
            OnNonfinite::Stop => Vec::new(),
            OnNonfinite::Skip => (self.slots.iter().enumerate())
                .filter_map(|(i, s)| Some((i, s.param.grad()?)))
                .collect(),
        };
        self.finite.record(&flags, step, terms, &gradients)?;
        if mode == OnNonfinite::Skip {
            if let Some(bad) = self.finite.first()? {
                self.finite.clear();
                return Err(bad.into());
            }
        }
        Ok(())
    }

    /// The earliest step whose loss terms or gradients were not finite (one read-back).
    pub fn first_nonfinite(&self) -> Result<Option<Nonfinite>> {
        self.finite.first()
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&self) {
        for s in &self.slots {
            s.param.zero_grad();
        }
    }

    /// Optimiser state (momentum buffer / moments) by parameter index, for checkpoints.
    pub fn state(&self) -> Vec<(Tensor, Option<Tensor>)> {
        self.slots
            .iter()
            .map(|s| (s.state0.clone(), s.state1.clone()))
            .collect()
    }

    /// Restores the step counter after loading state from a checkpoint.
    pub fn set_steps(&mut self, steps: u32) {
        self.step = steps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    /// torch.optim's formulas in f64, for `steps` steps with the given gradients.
    fn reference(kind: Kind, wd: f64, lr: f64, w0: &[f64], grads: &[Vec<f64>]) -> Vec<f64> {
        let mut w = w0.to_vec();
        let (mut s0, mut s1) = (vec![0.0; w.len()], vec![0.0; w.len()]);
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            for i in 0..w.len() {
                match kind {
                    Kind::Sgd {
                        momentum,
                        dampening,
                        nesterov,
                    } => {
                        let (m, d) = (momentum as f64, dampening as f64);
                        let mut gi = g[i] + wd * w[i];
                        if m != 0.0 {
                            s0[i] = if t == 1 {
                                gi
                            } else {
                                m * s0[i] + (1.0 - d) * gi
                            };
                            gi = if nesterov { gi + m * s0[i] } else { s0[i] };
                        }
                        w[i] -= lr * gi;
                    }
                    Kind::Adam { beta1, beta2, eps } | Kind::AdamW { beta1, beta2, eps } => {
                        let (b1, b2, e) = (beta1 as f64, beta2 as f64, eps as f64);
                        let mut gi = g[i];
                        if matches!(kind, Kind::AdamW { .. }) {
                            w[i] *= 1.0 - lr * wd;
                        } else {
                            gi += wd * w[i];
                        }
                        s0[i] = b1 * s0[i] + (1.0 - b1) * gi;
                        s1[i] = b2 * s1[i] + (1.0 - b2) * gi * gi;
                        let (mh, vh) = (s0[i] / (1.0 - b1.powi(t)), s1[i] / (1.0 - b2.powi(t)));
                        w[i] -= lr * mh / (vh.sqrt() + e);
                    }
                }
            }
        }
        w
    }

    #[test]
    fn updates_match_torch_optim_formulas() {
        let gpu = Gpu::shared().unwrap();
        let w0: Vec<f64> = (0..37)
            .map(|i| ((i * 17 % 23) as f64 / 11.0) - 1.0)
            .collect();
        let grads: Vec<Vec<f64>> = (0..4)
            .map(|s| {
                (0..37)
                    .map(|i| (((i + 5 * s) * 13 % 19) as f64 / 9.0) - 1.0)
                    .collect()
            })
            .collect();
        let kinds = [
            Kind::Sgd {
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
            },
            Kind::Sgd {
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
            },
            Kind::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
            },
            Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            Kind::AdamW {
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
            },
        ];
        for kind in kinds {
            let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let p = Var::leaf(Tensor::from_slice(&gpu, &f32s(&w0), &[37]).unwrap());
            let mut opt = Optimizer::new(
                kind,
                vec![ParamGroup {
                    params: vec![("w".into(), p.clone())],
                    lr_scale: 2.0,
                    weight_decay: 0.01,
                }],
                0.05,
            )
            .unwrap();
            for g in &grads {
                let gt = Tensor::from_slice(&gpu, &f32s(g), &[37]).unwrap();
                p.zero_grad();
                p.mul(&Var::constant(gt))
                    .unwrap()
                    .sum(None, false)
                    .unwrap()
                    .backward()
                    .unwrap();
                opt.step(1.0).unwrap();
            }
            let got = p.value().to_vec().unwrap();
            let want = reference(kind, 0.01, 0.1, &w0, &grads);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()),
                    "{kind:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn check_finite_names_the_earliest_bad_step_and_skip_refuses_it_before_the_update() {
        let gpu = Gpu::shared().unwrap();
        let w0 = [0.3f32, -1.2, 0.7, 2.0, -0.4];
        let p = Var::leaf(Tensor::from_slice(&gpu, &w0, &[5]).unwrap());
        let q = Var::leaf(Tensor::from_slice(&gpu, &[1.5f32], &[1]).unwrap());
        let kind = Kind::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        };
        let group = vec![
            ("a.weight".to_string(), p.clone()),
            ("b.bias".into(), q.clone()),
        ];
        let new = || {
            Optimizer::new(
                kind,
                vec![ParamGroup {
                    params: group.clone(),
                    lr_scale: 1.0,
                    weight_decay: 0.0,
                }],
                0.1,
            )
            .unwrap()
        };
        let scalar = |v: f32| Tensor::from_slice(&gpu, &[v], &[]).unwrap();
        let grads = |opt: &Optimizer, g: &[f32]| {
            opt.zero_grad();
            let c = Var::constant(Tensor::from_slice(&gpu, g, &[5]).unwrap());
            let loss = p.mul(&c).unwrap().sum(None, false).unwrap();
            loss.add(&q.sum(None, false).unwrap())
                .unwrap()
                .backward()
                .unwrap();
        };
        let terms = |part: f32, total: f32| vec![("loss", scalar(total)), ("loss_a", scalar(part))];
        let good = [0.1, -0.2, 0.3, 0.4, 0.5];
        // Stop: recorded on the GPU; the earliest bad step is what is named. The
        // first check sees one gradient, the later ones both.
        let mut opt = new();
        opt.zero_grad();
        q.sum(None, false).unwrap().backward().unwrap();
        opt.check_finite(&terms(1.0, 2.0), 1, OnNonfinite::Stop)
            .unwrap();
        grads(&opt, &good);
        opt.check_finite(&terms(1.0, 2.0), 1, OnNonfinite::Stop)
            .unwrap();
        assert!(opt.first_nonfinite().unwrap().is_none());
        opt.check_finite(&terms(1.0, f32::INFINITY), 2, OnNonfinite::Stop)
            .unwrap();
        opt.check_finite(&terms(f32::NAN, f32::NAN), 3, OnNonfinite::Stop)
            .unwrap();
        let bad = opt.first_nonfinite().unwrap().unwrap();
        assert_eq!(
            (bad.step, bad.what.as_str()),
            (2, "loss is NaN or infinite")
        );
        // A part is named before the total it makes.
        let mut opt = new();
        opt.check_finite(&terms(f32::NAN, f32::NAN), 4, OnNonfinite::Stop)
            .unwrap();
        let bad = opt.first_nonfinite().unwrap().unwrap();
        assert_eq!(
            (bad.step, bad.what.as_str()),
            (4, "loss_a is NaN or infinite")
        );
        // Stop: a gradient that is not finite is flagged by the update that reads it.
        let mut opt = new();
        grads(&opt, &[0.1, f32::NAN, 0.3, 0.4, 0.5]);
        opt.check_finite(&terms(1.0, 2.0), 5, OnNonfinite::Stop)
            .unwrap();
        assert!(opt.first_nonfinite().unwrap().is_none());
        opt.step(1.0).unwrap();
        let bad = opt.first_nonfinite().unwrap().unwrap();
        assert_eq!(
            (bad.step, bad.what.as_str()),
            (5, "the gradient of a.weight is not finite (the loss is)")
        );
        p.value().write(&w0).unwrap();
        // Skip: refused at once, then the next finite step passes.
        let mut opt = new();
        for (step, bad) in [(1, f32::NAN), (2, f32::NEG_INFINITY)] {
            grads(&opt, &[0.1, -0.2, 0.3, bad, 0.5]);
            let e = opt
                .check_finite(&terms(1.0, 2.0), step, OnNonfinite::Skip)
                .unwrap_err();
            assert!(matches!(e, Error::NonFinite { .. }), "{e}");
            assert_eq!(
                e.to_string(),
                format!("step {step}: the gradient of a.weight is not finite (the loss is)")
            );
        }
        grads(&opt, &good);
        opt.check_finite(&terms(1.0, 2.0), 3, OnNonfinite::Skip)
            .unwrap();
        assert_eq!(p.value().to_vec().unwrap(), w0, "checking updates nothing");
    }
}
