//! Supervised cross-image pixel contrast (Wang et al., ICCV 2021;
//! docs/methods/pixel_contrast.md), fused in shaders/pixel_contrast.wgsl.
//!
//! Rows of `features` [N, D] are anchors, taken as already L2-normalised, with u32
//! class labels. Each anchor a contrasts with the other anchors and with an optional
//! memory [M, D] (detached, as in the paper): with s = z.z'/T, P(a) the candidates of
//! a's label other than a itself and N(a) the rest,
//!   L_a = -(1/|P(a)|) sum_{p in P(a)} [ s_ap - log( exp(s_ap) + sum_{n in N(a)} exp(s_an) ) ] * (T / base_T)
//! and the loss is the mean of L_a over anchors with at least one positive (anchors
//! without are left out, where the authors' code would give NaN). The kernels
//! evaluate it as softplus(logsumexp_n s_an - s_ap), stable for any scale, and
//! recompute similarities instead of storing N x (N + M) of them.

use super::ratio_of_sums;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::Kernel;
use crate::ops::attrs::AttrKind;
use crate::ops::spec::fixed_in;
use crate::ops::spec::{attr, f32_in, OpSpec};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "pixel_contrast";
/// Workgroup size of both kernels.
const GROUP: u32 = 64;
/// Feature dims per backward invocation (CHUNK in the shader).
const CHUNK: usize = 256;

/// A memory bank: detached features [M, D] and their u32 labels [M].
#[derive(Clone)]
pub struct Memory {
    pub features: Tensor,
    pub labels: Tensor,
}

/// One pixel-contrast evaluation: anchors, labels, optional memory and temperatures.
/// Clones are cheap (tensors share storage).
#[derive(Clone)]
pub struct PixelContrast {
    pub features: Tensor,
    pub labels: Tensor,
    pub memory: Option<Memory>,
    pub temperature: f32,
    pub base_temperature: f32,
}

/// The forward's result and what the backward needs.
pub struct ContrastForward {
    /// The scalar loss.
    pub loss: Tensor,
    /// Per anchor: (negatives' log-sum-exp, 1/|P| or 0, sum_p sigmoid(nl - s_ap), 0).
    stats: Tensor,
    /// The number of anchors with a positive (a scalar).
    counted: Tensor,
}

fn check_rows(name: &str, labels_name: &str, x: &Tensor, labels: &Tensor) -> Result<()> {
    expect_f32(OP, name, x)?;
    if x.rank() != 2 {
        return Err(Error::op(
            OP,
            format!(
                "{name} must be [rows, dim], got shape {}",
                shape_str(x.shape())
            ),
        ));
    }
    if labels.dtype() != DType::U32 || labels.shape() != [x.shape()[0]] {
        return Err(Error::op(
            OP,
            format!(
                "{labels_name} must be u32 of shape [{}], got {} {}",
                x.shape()[0],
                labels.dtype(),
                shape_str(labels.shape())
            ),
        ));
    }
    Ok(())
}

/// Errors unless some anchor has a positive: an anchor label that occurs again among
/// the anchors or in `memory_labels`.
pub fn check_positives(labels: &[u32], memory_labels: &[u32]) -> Result<()> {
    let mut counts = std::collections::HashMap::new();
    for &l in labels.iter().chain(memory_labels) {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    if labels.iter().any(|l| counts[l] > 1) {
        Ok(())
    } else {
        Err(Error::op(
            OP,
            "no anchor has a positive: every anchor's label occurs only once among anchors and memory",
        ))
    }
}

impl PixelContrast {
    /// Checks shapes and dtypes: features [N, D] f32, labels [N] u32, memory [M, D]
    /// f32 with labels [M] u32, positive temperatures.
    pub fn new(
        features: Tensor,
        labels: Tensor,
        memory: Option<Memory>,
        temperature: f32,
        base_temperature: f32,
    ) -> Result<PixelContrast> {
        check_rows("features", "labels", &features, &labels)?;
        if let Some(m) = &memory {
            check_rows("memory_features", "memory_labels", &m.features, &m.labels)?;
            if m.features.shape()[1] != features.shape()[1] {
                return Err(Error::op(
                    OP,
                    format!(
                        "memory_features dim {} must equal features dim {}",
                        m.features.shape()[1],
                        features.shape()[1]
                    ),
                ));
            }
        }
        if !(temperature > 0.0 && base_temperature > 0.0) {
            return Err(Error::op(
                OP,
                format!(
                    "temperature ({temperature}) and base_temperature ({base_temperature}) must be positive"
                ),
            ));
        }
        Ok(PixelContrast {
            features,
            labels,
            memory,
            temperature,
            base_temperature,
        })
    }

    fn anchors(&self) -> usize {
        self.features.shape()[0]
    }

    fn dim(&self) -> usize {
        self.features.shape()[1]
    }

    /// Memory features and labels to bind: the anchors' own buffers stand in for an
    /// absent memory (M = 0, never read).
    fn memory_bindings(&self) -> (&Tensor, &Tensor, usize) {
        match &self.memory {
            Some(m) => (&m.features, &m.labels, m.features.shape()[0]),
            None => (&self.features, &self.labels, 0),
        }
    }

    fn params(&self) -> Result<Params> {
        let (_, _, m) = self.memory_bindings();
        Params::new(OP)
            .idx("anchors", self.anchors())?
            .idx("memory", m)?
            .idx("dim", self.dim())?
            .f32("inv_temp", 1.0 / self.temperature)
            .f32("k", self.temperature / self.base_temperature)
            .idx("chunks", self.dim().div_ceil(CHUNK))
    }

    /// The loss, without checking that some anchor has a positive (else it is NaN;
    /// see [`check_positives`]).
    pub fn forward(&self) -> Result<ContrastForward> {
        let gpu = self.features.gpu();
        let n = self.anchors();
        let (mem, mem_labels, _) = self.memory_bindings();
        let stats = Tensor::empty(gpu, &[n, 4], DType::F32)?;
        let row_loss = Tensor::empty(gpu, &[n], DType::F32)?;
        let has_pos = Tensor::empty(gpu, &[n], DType::F32)?;
        gpu.dispatch(
            &Kernel::new("pixel_contrast", "forward"),
            &[
                self.features.buffer(),
                self.labels.buffer(),
                mem.buffer(),
                mem_labels.buffer(),
                stats.buffer(),
                row_loss.buffer(),
                has_pos.buffer(),
            ],
            &self.params()?,
            gpu.grid(n as u64, GROUP),
        )?;
        let (loss, counted) = ratio_of_sums(OP, &row_loss, &has_pos)?;
        Ok(ContrastForward {
            loss,
            stats,
            counted,
        })
    }

    /// Gradient with respect to `features`, given the loss's output gradient `g`.
    pub fn backward(&self, fwd: &ContrastForward, g: &Tensor) -> Result<Tensor> {
        let gpu = self.features.gpu();
        let (mem, mem_labels, _) = self.memory_bindings();
        let dz = Tensor::empty(gpu, self.features.shape(), DType::F32)?;
        let invocations = self.anchors() * self.dim().div_ceil(CHUNK);
        gpu.dispatch(
            &Kernel::new("pixel_contrast", "backward"),
            &[
                self.features.buffer(),
                self.labels.buffer(),
                mem.buffer(),
                mem_labels.buffer(),
                fwd.stats.buffer(),
                fwd.counted.buffer(),
                g.buffer(),
                dz.buffer(),
            ],
            &self.params()?,
            gpu.grid(invocations as u64, GROUP),
        )?;
        Ok(dz)
    }
}

impl Var {
    /// Supervised pixel contrast of anchor rows `self` [N, D] with u32 `labels` [N]
    /// and an optional detached memory (features [M, D], labels [M]); see the module
    /// docs. Labels are read back to check that some anchor has a positive (they
    /// come from the host-side sampler, so this costs a sync only).
    pub fn pixel_contrast(
        &self,
        labels: &Var,
        memory: Option<(&Var, &Var)>,
        temperature: f32,
        base_temperature: f32,
    ) -> Result<Var> {
        let pc = PixelContrast::new(
            self.value(),
            labels.value(),
            memory.map(|(f, l)| Memory {
                features: f.value(),
                labels: l.value(),
            }),
            temperature,
            base_temperature,
        )?;
        let memory_labels = match &pc.memory {
            Some(m) => m.labels.to_vec_u32()?,
            None => Vec::new(),
        };
        check_positives(&pc.labels.to_vec_u32()?, &memory_labels)?;
        let fwd = pc.forward()?;
        let loss = fwd.loss.clone();
        Ok(Var::from_op(loss, &[self], move |g| {
            Ok(vec![Some(pc.backward(&fwd, g)?)])
        }))
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "pixel_contrast",
    summary:
        "supervised pixel contrast of L2-normalised rows (negatives summed apart), optional memory",
    inputs: &[
        f32_in("features"),
        fixed_in("labels", DType::U32, false),
        fixed_in("memory_features", DType::F32, true),
        fixed_in("memory_labels", DType::U32, true),
    ],
    attrs: &[
        attr("temperature", AttrKind::Float, Some("0.1")),
        attr("base_temperature", AttrKind::Float, Some("0.07")),
    ],
    run: |c| {
        let memory = match (c.opt_input("memory_features"), c.opt_input("memory_labels")) {
            (Some(f), Some(l)) => Some((f, l)),
            (None, None) => None,
            _ => {
                return Err(Error::op(
                    OP,
                    "memory_features and memory_labels must be given together",
                ))
            }
        };
        c.input("features")?.pixel_contrast(
            c.input("labels")?,
            memory,
            c.attrs.float("temperature")? as f32,
            c.attrs.float("base_temperature")? as f32,
        )
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    fn unit_rows(n: usize, d: usize, seed: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n * d)
            .map(|i| (((i + seed) * 7919 % 211) as f32 / 105.0) - 1.0)
            .collect();
        for row in v.chunks_mut(d) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    #[test]
    fn needs_some_positive() {
        let gpu = Gpu::shared().unwrap();
        let z = Var::leaf(Tensor::from_slice(&gpu, &unit_rows(3, 4, 0), &[3, 4]).unwrap());
        let l = Var::constant(Tensor::from_u32(&gpu, &[0, 1, 2], &[3]).unwrap());
        let e = z.pixel_contrast(&l, None, 0.1, 0.07).unwrap_err();
        assert!(e.to_string().contains("no anchor has a positive"), "{e}");
        let mem = Var::constant(Tensor::from_slice(&gpu, &unit_rows(1, 4, 5), &[1, 4]).unwrap());
        let mem_l = Var::constant(Tensor::from_u32(&gpu, &[2], &[1]).unwrap());
        assert!(z
            .pixel_contrast(&l, Some((&mem, &mem_l)), 0.1, 0.07)
            .is_ok());
        let wrong = Var::constant(Tensor::from_slice(&gpu, &unit_rows(1, 3, 5), &[1, 3]).unwrap());
        let e = z
            .pixel_contrast(&l, Some((&wrong, &mem_l)), 0.1, 0.07)
            .unwrap_err();
        assert!(e.to_string().contains("memory_features dim 3"), "{e}");
    }
}
