//! mask_infonce (shaders/mask_infonce.wgsl): MaskContrast's loss (Van Gansbeke et al.,
//! ICCV 2021; docs/methods/maskcontrast.md). Every pixel i of image b whose mask is 1 is a
//! query q_i (a column of `query` [B,D,H,W]); its logits are
//!   l_ij = q_i . k_j / T   for j over the B key prototypes, then the K queue rows,
//! its own image's prototype k_b is the positive, and
//!   L = (1 / N) sum_{salient i} -log softmax(l_i)[b],   N = number of salient pixels.
//! Inputs are used as given (MaskContrast L2-normalises them first). Mask values act
//! as weights m_i (0/1 in MaskContrast): L = sum_i m_i loss_i / sum_i m_i.
//!
//! The kernels are fused: no [pixels x (B+K)] logit matrix is ever stored. The forward
//! keeps one log-sum-exp per pixel; backward recomputes p_ij = exp(l_ij - lse_i):
//!   dL/dq_i = g m_i / (T N) * (sum_j p_ij k_j - k_b)
//!   dL/dk_j = g / (T N) * sum_i m_i (p_ij - [j == b_i]) q_i      (j < B)
//! The queue is a memory bank: no gradient. With no salient pixel at all the checked
//! entry points refuse the batch; the unchecked ones give loss 0 and zero gradients.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::ops::attrs::AttrKind;
use crate::ops::spec::{attr, f32_in, fixed_in, OpSpec};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "mask_infonce";
/// Pixels of one image per key-gradient partial sum.
const CHUNK: usize = 128;
/// The largest embedding dim the `_cached` kernels keep in registers (MAX_D in
/// shaders/mask_infonce.wgsl).
const MAX_CACHED_DIM: usize = 64;

/// Validated inputs of one loss evaluation (tensors are shared, not copied).
#[derive(Clone, Debug)]
pub struct MaskInfoNce {
    query: Tensor,
    mask: Tensor,
    keys: Tensor,
    queue: Option<Tensor>,
    temperature: f32,
    b: usize,
    d: usize,
    hw: usize,
    k: usize,
    /// Run the reference kernels even where the cached ones apply (tests compare
    /// the two).
    reference: bool,
}

/// What the forward leaves for backward.
#[derive(Clone, Debug)]
pub struct InfoNceSaved {
    /// The loss, a scalar (shape []).
    pub loss: Tensor,
    /// N, the number (total mask weight) of salient pixels, shape [1].
    pub salient: Tensor,
    /// Log-sum-exp of each pixel's logits, [B*H*W] (0 where the mask is 0).
    lse: Tensor,
}

fn bad(msg: String) -> Error {
    Error::op(OP, msg)
}

impl MaskInfoNce {
    /// Checks shapes: `query` [B,D,H,W], `mask` [B,H,W] (f32 0/1), `key_prototypes`
    /// [B,D], `queue` [K,D] or `None` for K = 0, `temperature` > 0.
    pub fn new(
        query: &Tensor,
        mask: &Tensor,
        key_prototypes: &Tensor,
        queue: Option<&Tensor>,
        temperature: f32,
    ) -> Result<Self> {
        expect_f32(OP, "query", query)?;
        expect_f32(OP, "mask", mask)?;
        expect_f32(OP, "key_prototypes", key_prototypes)?;
        let [b, d, h, w] = *query.shape() else {
            return Err(bad(format!(
                "query must be [B, D, H, W], got {}",
                shape_str(query.shape())
            )));
        };
        if mask.shape() != [b, h, w] {
            return Err(bad(format!(
                "mask must be [B, H, W] = {}, got {}",
                shape_str(&[b, h, w]),
                shape_str(mask.shape())
            )));
        }
        if key_prototypes.shape() != [b, d] {
            return Err(bad(format!(
                "key_prototypes must be [B, D] = {}, got {}",
                shape_str(&[b, d]),
                shape_str(key_prototypes.shape())
            )));
        }
        let k = match queue {
            None => 0,
            Some(q) => {
                expect_f32(OP, "queue", q)?;
                match *q.shape() {
                    [k, qd] if qd == d => k,
                    _ => {
                        return Err(bad(format!(
                            "queue must be [K, D] with D = {d}, got {}",
                            shape_str(q.shape())
                        )))
                    }
                }
            }
        };
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(bad(format!(
                "temperature must be a positive number, got {temperature}"
            )));
        }
        Ok(MaskInfoNce {
            query: query.clone(),
            mask: mask.clone(),
            keys: key_prototypes.clone(),
            queue: queue.cloned(),
            temperature,
            b,
            d,
            hw: h * w,
            k,
            reference: false,
        })
    }

    fn chunks(&self) -> usize {
        self.hw.div_ceil(CHUNK)
    }

    fn params(&self) -> Result<Params> {
        Params::new(OP)
            .idx("b", self.b)?
            .idx("d", self.d)?
            .idx("hw", self.hw)?
            .idx("k", self.k)?
            .idx("pixels", self.b * self.hw)?
            .f32("inv_t", 1.0 / self.temperature)
            .idx("chunk", CHUNK)?
            .idx("chunks", self.chunks())
    }

    /// The version of pass `entry` for these inputs: the `_cached` one where the
    /// embedding fits its registers (and the reference one is not asked for).
    fn kernel<'a>(&self, entry: &'static str, constants: &'a [(&'static str, f64)]) -> Kernel<'a> {
        if self.cached() {
            let cached = match entry {
                "forward" => "forward_cached",
                "query_grad" => "query_grad_cached",
                _ => "key_partial_cached",
            };
            Kernel::new("mask_infonce", cached).with(constants)
        } else {
            Kernel::new("mask_infonce", entry)
        }
    }

    fn cached(&self) -> bool {
        !self.reference && self.d <= MAX_CACHED_DIM
    }

    /// With K = 0 the kernels still bind a queue buffer; they read none of it.
    fn queue_buffer(&self) -> &wgpu::Buffer {
        self.queue.as_ref().unwrap_or(&self.keys).buffer()
    }

    /// The loss and the per-pixel state backward needs: two dispatches, no readback.
    pub fn forward(&self) -> Result<InfoNceSaved> {
        let gpu = self.query.gpu();
        let pixels = self.b * self.hw;
        let lse = Tensor::empty(gpu, &[pixels], DType::F32)?;
        let term = Tensor::empty(gpu, &[pixels], DType::F32)?;
        let loss = Tensor::empty(gpu, &[], DType::F32)?;
        let salient = Tensor::empty(gpu, &[1], DType::F32)?;
        let p = self.params()?;
        let dim = [("D", self.d as f64)];
        gpu.dispatch(
            &self.kernel("forward", &dim),
            &[
                self.query.buffer(),
                self.mask.buffer(),
                self.keys.buffer(),
                self.queue_buffer(),
                lse.buffer(),
                term.buffer(),
            ],
            &p,
            gpu.grid(pixels as u64, WORKGROUP),
        )?;
        gpu.dispatch(
            &Kernel::new("mask_infonce", "reduce"),
            &[
                self.mask.buffer(),
                term.buffer(),
                loss.buffer(),
                salient.buffer(),
            ],
            &p,
            [1, 1, 1],
        )?;
        Ok(InfoNceSaved { loss, salient, lse })
    }

    /// Reads N back: a batch without any salient pixel is an error.
    pub fn check_salient(saved: &InfoNceSaved) -> Result<()> {
        if saved.salient.item()? == 0.0 {
            return Err(bad(
                "no pixel of the batch is salient (every mask is empty)".into(),
            ));
        }
        Ok(())
    }

    fn expect_grad(grad: &Tensor) -> Result<()> {
        if grad.numel() != 1 {
            return Err(bad(format!(
                "the loss gradient must be a scalar, got {}",
                shape_str(grad.shape())
            )));
        }
        expect_f32(OP, "grad", grad)
    }

    /// dL/dquery [B,D,H,W] for the loss gradient `grad` (a one-element tensor).
    pub fn query_grad(&self, saved: &InfoNceSaved, grad: &Tensor) -> Result<Tensor> {
        Self::expect_grad(grad)?;
        let gpu = self.query.gpu();
        let dq = Tensor::empty(gpu, self.query.shape(), DType::F32)?;
        let dim = [("D", self.d as f64)];
        gpu.dispatch(
            &self.kernel("query_grad", &dim),
            &[
                self.query.buffer(),
                self.mask.buffer(),
                self.keys.buffer(),
                self.queue_buffer(),
                saved.lse.buffer(),
                saved.salient.buffer(),
                grad.buffer(),
                dq.buffer(),
            ],
            &self.params()?,
            gpu.grid((self.b * self.hw) as u64, WORKGROUP),
        )?;
        Ok(dq)
    }

    /// dL/dkey_prototypes [B,D]: partial sums over chunks of `CHUNK` pixels per
    /// (image, key), then one sum per key element.
    pub fn key_grad(&self, saved: &InfoNceSaved, grad: &Tensor) -> Result<Tensor> {
        Self::expect_grad(grad)?;
        let gpu = self.query.gpu();
        let rows = self.b * self.chunks() * self.b;
        let partial = Tensor::empty(gpu, &[rows, self.d], DType::F32)?;
        let dk = Tensor::empty(gpu, &[self.b, self.d], DType::F32)?;
        let p = self.params()?;
        let dim = [("D", self.d as f64)];
        gpu.dispatch(
            &self.kernel("key_partial", &dim),
            &[
                self.query.buffer(),
                self.mask.buffer(),
                self.keys.buffer(),
                saved.lse.buffer(),
                partial.buffer(),
            ],
            &p,
            gpu.grid(rows as u64, WORKGROUP),
        )?;
        gpu.dispatch(
            &Kernel::new("mask_infonce", "key_reduce"),
            &[
                saved.salient.buffer(),
                grad.buffer(),
                partial.buffer(),
                dk.buffer(),
            ],
            &p,
            gpu.grid((self.b * self.d) as u64, WORKGROUP),
        )?;
        Ok(dk)
    }
}

impl Var {
    fn record_mask_infonce(
        &self,
        mask: &Tensor,
        key_prototypes: &Var,
        queue: Option<&Tensor>,
        temperature: f32,
        checked: bool,
    ) -> Result<Var> {
        let nce = MaskInfoNce::new(
            &self.value(),
            mask,
            &key_prototypes.value(),
            queue,
            temperature,
        )?;
        let saved = nce.forward()?;
        if checked {
            MaskInfoNce::check_salient(&saved)?;
        }
        let loss = saved.loss.clone();
        // The momentum encoder's prototypes are usually detached: skip what no one needs.
        let (want_q, want_k) = (self.requires_grad(), key_prototypes.requires_grad());
        Ok(Var::from_op(loss, &[self, key_prototypes], move |g| {
            let dq = want_q.then(|| nce.query_grad(&saved, g)).transpose()?;
            let dk = want_k.then(|| nce.key_grad(&saved, g)).transpose()?;
            Ok(vec![dq, dk])
        }))
    }

    /// MaskContrast's InfoNCE of salient query pixels `self` [B,D,H,W] (mask [B,H,W])
    /// against `key_prototypes` [B,D] and an optional `queue` [K,D] at `temperature`.
    /// Reads the salient-pixel count back to refuse a batch without any.
    pub fn mask_infonce(
        &self,
        mask: &Tensor,
        key_prototypes: &Var,
        queue: Option<&Tensor>,
        temperature: f32,
    ) -> Result<Var> {
        self.record_mask_infonce(mask, key_prototypes, queue, temperature, true)
    }

    /// [`Var::mask_infonce`] without the readback, for callers that know some pixel
    /// is salient; without one the loss and gradients would be 0.
    pub fn mask_infonce_nonempty(
        &self,
        mask: &Tensor,
        key_prototypes: &Var,
        queue: Option<&Tensor>,
        temperature: f32,
    ) -> Result<Var> {
        self.record_mask_infonce(mask, key_prototypes, queue, temperature, false)
    }
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "mask_infonce",
    summary: "MaskContrast InfoNCE: salient query pixels vs key prototypes (+ optional queue), mean over salient pixels",
    inputs: &[
        f32_in("query"),
        fixed_in("mask", DType::F32, false),
        f32_in("key_prototypes"),
        fixed_in("queue", DType::F32, true),
    ],
    attrs: &[attr("temperature", AttrKind::Float, Some("0.5"))],
    run: |c| {
        let queue = c.opt_input("queue").map(Var::value);
        c.input("query")?.mask_infonce(
            &c.input("mask")?.value(),
            c.input("key_prototypes")?,
            queue.as_ref(),
            c.attrs.float("temperature")? as f32,
        )
    },
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    fn inputs(gpu: &Gpu, mask: &[f32]) -> (Var, Tensor, Var) {
        let q: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
        let query = Var::leaf(Tensor::from_slice(gpu, &q, &[2, 2, 2, 2]).unwrap());
        let mask = Tensor::from_slice(gpu, mask, &[2, 2, 2]).unwrap();
        let keys = Tensor::from_slice(gpu, &[0.6, 0.8, -1.0, 0.0], &[2, 2]).unwrap();
        (query, mask, Var::leaf(keys))
    }

    fn random(gpu: &Gpu, rng: &mut rand::rngs::StdRng, shape: &[usize]) -> Tensor {
        crate::nn::init::uniform(gpu, rng, shape, 1.0).unwrap()
    }

    /// The cached kernels against the reference ones on random inputs with a
    /// partial mask, a queue and a dim that is no multiple of 4.
    #[test]
    fn cached_kernels_match_the_reference_ones() {
        use rand::SeedableRng;
        let gpu = Gpu::shared().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (b, d, h, w, k) = (3, 13, 5, 7, 6);
        let query = random(&gpu, &mut rng, &[b, d, h, w]);
        let keys = random(&gpu, &mut rng, &[b, d]);
        let queue = random(&gpu, &mut rng, &[k, d]);
        let m: Vec<f32> = (0..b * h * w)
            .map(|i| ((i * 7) % 3 != 0) as u8 as f32)
            .collect();
        let mask = Tensor::from_slice(&gpu, &m, &[b, h, w]).unwrap();
        let one = Tensor::from_slice(&gpu, &[1.0], &[]).unwrap();
        let outputs = |reference: bool| {
            let mut loss = MaskInfoNce::new(&query, &mask, &keys, Some(&queue), 0.5).unwrap();
            loss.reference = reference;
            assert_eq!(loss.cached(), !reference);
            let saved = loss.forward().unwrap();
            [
                saved.loss.to_vec().unwrap(),
                saved.lse.to_vec().unwrap(),
                loss.query_grad(&saved, &one).unwrap().to_vec().unwrap(),
                loss.key_grad(&saved, &one).unwrap().to_vec().unwrap(),
            ]
        };
        let (fast, slow) = (outputs(false), outputs(true));
        for (name, (f, s)) in ["loss", "lse", "query grad", "key grad"]
            .iter()
            .zip(fast.iter().zip(&slow))
        {
            let diff: f32 = f.iter().zip(s).map(|(a, b)| (a - b).powi(2)).sum();
            let norm: f32 = s.iter().map(|v| v * v).sum();
            assert!(norm > 0.0, "{name}: the reference is all zero");
            assert!(
                (diff / norm).sqrt() < 1e-5,
                "{name}: relative error {}",
                (diff / norm).sqrt()
            );
        }
    }

    #[test]
    fn a_batch_without_salient_pixels_is_an_error_or_zero_never_nan() {
        let gpu = Gpu::shared().unwrap();
        let (query, mask, keys) = inputs(&gpu, &[0.0; 8]);
        let e = query
            .mask_infonce(&mask, &keys, None, 0.5)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mask_infonce: no pixel of the batch is salient"),
            "{e}"
        );
        let loss = query
            .mask_infonce_nonempty(&mask, &keys, None, 0.5)
            .unwrap();
        assert_eq!(loss.value().item().unwrap(), 0.0);
        let grads = loss.backward().unwrap();
        for v in [&query, &keys] {
            let g = grads.get(v).unwrap().to_vec().unwrap();
            assert!(g.iter().all(|&x| x == 0.0), "{g:?}");
        }
    }

    #[test]
    fn detached_prototypes_get_no_gradient_and_bad_shapes_are_named() {
        let gpu = Gpu::shared().unwrap();
        let (query, mask, keys) = inputs(&gpu, &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let keys = keys.detach();
        let loss = query.mask_infonce(&mask, &keys, None, 0.5).unwrap();
        assert!(loss.value().item().unwrap().is_finite());
        let grads = loss.backward().unwrap();
        assert!(grads.get(&query).is_some() && grads.get(&keys).is_none());
        let queue = Tensor::from_slice(&gpu, &[0.0; 6], &[2, 3]).unwrap();
        let e = query
            .mask_infonce(&mask, &keys, Some(&queue), 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue must be [K, D] with D = 2"), "{e}");
        let e = query
            .mask_infonce(&mask, &keys, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("temperature"), "{e}");
    }
}
