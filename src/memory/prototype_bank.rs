//! Class prototypes kept across training steps (bi-directional pixel-prototype
//! contrast): an EMA bank per domain and the class-wise domain-bias calibration,
//! updated in place on the GPU from each batch's `class_prototypes`
//! (shaders/prototype_bank.wgsl).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::ops::class_prototypes::Launch;
use crate::state::StateVisitor;
use crate::tensor::elementwise::zeros;
use crate::tensor::shape_str;
use crate::tensor::{DType, Tensor};

fn check_momentum(op: &str, m: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&m) {
        return Err(Error::op(
            op,
            format!("momentum must be in [0, 1], got {m}"),
        ));
    }
    Ok(())
}

/// Checks a batch's prototypes [C, D] and counts u32 [C] against a bank's size.
fn check_batch(
    op: &str,
    batch: &Tensor,
    counts: &Tensor,
    classes: usize,
    dim: usize,
) -> Result<()> {
    if batch.dtype() != DType::F32
        || batch.shape() != [classes, dim]
        || counts.dtype() != DType::U32
        || counts.shape() != [classes]
    {
        return Err(Error::op(
            op,
            format!(
                "batch prototypes must be f32 [{classes}, {dim}] and counts u32 [{classes}], got {} {} and {} {}",
                batch.dtype(),
                shape_str(batch.shape()),
                counts.dtype(),
                shape_str(counts.shape())
            ),
        ));
    }
    Ok(())
}

/// Class prototypes kept as an exponential moving average over training steps:
/// `p_c <- m * p_c + (1 - m) * batch_c` for the classes present in a batch (count > 0),
/// a class's first sighting copying its batch prototype. Both tensors live on the GPU
/// and are updated in place by kernels, with no host round trip.
pub struct PrototypeBank {
    /// Prototypes [C, D]; zeros for classes never seen.
    pub protos: Tensor,
    /// u32 [C]: 1 once a class has been seen.
    pub initialised: Tensor,
    /// Weight of the old value in each update.
    pub momentum: f32,
}

impl PrototypeBank {
    pub fn new(gpu: &Gpu, classes: usize, dim: usize, momentum: f32) -> Result<Self> {
        check_momentum("PrototypeBank", momentum)?;
        Ok(PrototypeBank {
            protos: zeros(gpu, &[classes, dim])?,
            initialised: Tensor::from_u32(gpu, &vec![0; classes], &[classes])?,
            momentum,
        })
    }

    pub fn classes(&self) -> usize {
        self.protos.shape()[0]
    }

    pub fn dim(&self) -> usize {
        self.protos.shape()[1]
    }

    /// Folds a batch's [`class_prototypes`] (and counts) into the bank.
    pub fn update(&mut self, batch: &Tensor, counts: &Tensor) -> Result<()> {
        let op = "PrototypeBank::update";
        let (classes, dim) = (self.classes(), self.dim());
        check_batch(op, batch, counts, classes, dim)?;
        let l = Launch::of_bank(classes, dim, self.momentum);
        let gpu = self.protos.gpu();
        l.run(
            gpu,
            Kernel::new("prototype_bank", "ema_update"),
            &[
                counts.buffer(),
                batch.buffer(),
                self.protos.buffer(),
                self.initialised.buffer(),
            ],
            classes * dim,
        )?;
        l.run(
            gpu,
            Kernel::new("prototype_bank", "ema_flags"),
            &[counts.buffer(), self.initialised.buffer()],
            classes,
        )
    }

    /// Which classes have been seen (a readback, for logging and tests).
    pub fn seen(&self) -> Result<Vec<bool>> {
        Ok(self
            .initialised
            .to_vec_u32()?
            .into_iter()
            .map(|f| f != 0)
            .collect())
    }
}

/// Source and target prototype banks with the class-wise domain-bias calibration.
///
/// Bi-directional contrast compares target pixels with source prototypes and source
/// pixels with target prototypes, and labels target pixels by their nearest source
/// prototype. Class c's target features sit, on average, at a class-specific offset
/// from its source prototype (the class-wise domain bias), so nearest-source-prototype
/// labels are biased toward classes whose offset happens to point at them. The
/// calibration estimates that offset and moves each source prototype by it:
///
/// ```text
/// bias_c      <- m_b * bias_c + (1 - m_b) * (t_c - s_c)   (t_c: target batch mean,
///                                                          s_c: source bank, after
///                                                          this step's update)
/// calibrated_c = s_c + bias_c
/// ```
///
/// updated only for classes present in the target batch (by pseudo label) and already
/// seen in the source. Unlike the target bank, the bias starts at zero rather than at
/// the first sighting: early pseudo labels are noisy, so the calibrated prototypes
/// start as the source prototypes and move toward the target domain only as evidence
/// accumulates, and a class never pseudo-labelled keeps its source prototype. Measuring
/// the offset against the source bank (not the source batch) keeps it defined when a
/// class is missing from one source batch and smooths the source side's noise.
pub struct DomainPrototypes {
    pub source: PrototypeBank,
    pub target: PrototypeBank,
    /// [C, D] estimate of (target class mean - source prototype).
    pub bias: Tensor,
    /// Weight of the old bias in each update.
    pub bias_momentum: f32,
}

impl DomainPrototypes {
    pub fn new(
        gpu: &Gpu,
        classes: usize,
        dim: usize,
        momentum: f32,
        bias_momentum: f32,
    ) -> Result<Self> {
        check_momentum("DomainPrototypes", bias_momentum)?;
        Ok(DomainPrototypes {
            source: PrototypeBank::new(gpu, classes, dim, momentum)?,
            target: PrototypeBank::new(gpu, classes, dim, momentum)?,
            bias: zeros(gpu, &[classes, dim])?,
            bias_momentum,
        })
    }

    /// One step: the source bank takes the source batch, the bias the target batch's
    /// offset from the updated source bank, and the target bank the target batch.
    pub fn update(
        &mut self,
        source_batch: &Tensor,
        source_counts: &Tensor,
        target_batch: &Tensor,
        target_counts: &Tensor,
    ) -> Result<()> {
        let (classes, dim) = (self.source.classes(), self.source.dim());
        check_batch(
            "DomainPrototypes::update",
            target_batch,
            target_counts,
            classes,
            dim,
        )?;
        self.source.update(source_batch, source_counts)?;
        Launch::of_bank(classes, dim, self.bias_momentum).run(
            self.bias.gpu(),
            Kernel::new("prototype_bank", "bias_update"),
            &[
                target_counts.buffer(),
                target_batch.buffer(),
                self.source.initialised.buffer(),
                self.source.protos.buffer(),
                self.bias.buffer(),
            ],
            classes * dim,
        )?;
        self.target.update(target_batch, target_counts)
    }

    /// The banks' prototypes and seen flags as `<prefix>.source`, `.source_seen`,
    /// `.target`, `.target_seen`, and the bias as `<prefix>.bias`.
    pub fn visit_state(&mut self, prefix: &str, v: &mut dyn StateVisitor) -> Result<()> {
        for (name, t) in [
            ("source", &mut self.source.protos),
            ("source_seen", &mut self.source.initialised),
            ("target", &mut self.target.protos),
            ("target_seen", &mut self.target.initialised),
            ("bias", &mut self.bias),
        ] {
            v.tensor(&format!("{prefix}.{name}"), t)?;
        }
        Ok(())
    }

    /// Source prototypes moved by the class-wise bias [C, D]: the prototypes to label
    /// target pixels against ([`crate::ops::label_transfer::label_transfer`]).
    pub fn calibrated(&self) -> Result<Tensor> {
        let (classes, dim) = (self.source.classes(), self.source.dim());
        let gpu = self.bias.gpu();
        let out = Tensor::empty(gpu, &[classes, dim], DType::F32)?;
        Launch::of_bank(classes, dim, 0.0).run(
            gpu,
            Kernel::new("prototype_bank", "calibrated"),
            &[
                self.source.protos.buffer(),
                self.bias.buffer(),
                out.buffer(),
            ],
            classes * dim,
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn bank_copies_first_then_averages_present_classes() {
        let gpu = Gpu::shared().unwrap();
        let mut bank = PrototypeBank::new(&gpu, 2, 2, 0.75).unwrap();
        let b1 = Tensor::from_slice(&gpu, &[4.0, 8.0, 9.0, 9.0], &[2, 2]).unwrap();
        let c1 = Tensor::from_u32(&gpu, &[3, 0], &[2]).unwrap();
        bank.update(&b1, &c1).unwrap();
        assert!(close(&bank.protos.to_vec().unwrap(), &[4.0, 8.0, 0.0, 0.0]));
        assert_eq!(bank.seen().unwrap(), vec![true, false]);
        let b2 = Tensor::from_slice(&gpu, &[0.0, 0.0, 1.0, 2.0], &[2, 2]).unwrap();
        let c2 = Tensor::from_u32(&gpu, &[1, 5], &[2]).unwrap();
        bank.update(&b2, &c2).unwrap();
        assert!(close(&bank.protos.to_vec().unwrap(), &[3.0, 6.0, 1.0, 2.0]));
        assert_eq!(bank.seen().unwrap(), vec![true, true]);
    }

    #[test]
    fn calibration_learns_the_class_offset() {
        let gpu = Gpu::shared().unwrap();
        let mut dp = DomainPrototypes::new(&gpu, 2, 2, 0.9, 0.5).unwrap();
        // Source class means (1, 0) and (0, 1); target class 0 sits at offset (0, 0.5),
        // class 1 never appears in the target.
        let src = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
        let src_n = Tensor::from_u32(&gpu, &[10, 10], &[2]).unwrap();
        let tgt = Tensor::from_slice(&gpu, &[1.0, 0.5, 0.0, 0.0], &[2, 2]).unwrap();
        let tgt_n = Tensor::from_u32(&gpu, &[4, 0], &[2]).unwrap();
        dp.update(&src, &src_n, &tgt, &tgt_n).unwrap();
        // Bias starts at zero: one step moves half way.
        assert!(close(
            &dp.calibrated().unwrap().to_vec().unwrap(),
            &[1.0, 0.25, 0.0, 1.0]
        ));
        for _ in 0..30 {
            dp.update(&src, &src_n, &tgt, &tgt_n).unwrap();
        }
        assert!(close(
            &dp.calibrated().unwrap().to_vec().unwrap(),
            &[1.0, 0.5, 0.0, 1.0]
        ));
        assert_eq!(dp.target.seen().unwrap(), vec![true, false]);
    }
}
