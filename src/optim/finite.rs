//! Finiteness of each step's loss terms and gradients, recorded on the GPU so that a
//! step reads nothing back: every tensor gets a slot whose flag keeps the earliest step
//! at which it held a NaN or infinity. `stop` reads the flags when the run next reads
//! anything (a log step, a checkpoint) and ends there, naming that step; `skip` reads
//! them every step, before the update, as torch's GradScaler reads its found-inf flag.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Gpu, Kernel, WORKGROUP};
use crate::tensor::Tensor;

/// `output.on_nonfinite`: `stop` the run at the step whose loss or gradient is NaN or
/// infinite (its last good checkpoint kept), or `skip` that step's update, as
/// mixed-precision trainers do, and log it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNonfinite {
    #[default]
    Stop,
    Skip,
}

/// Term slots besides the gradients': a method logs a handful of loss parts.
const TERM_SLOTS: usize = 32;

/// A step found not finite: which step, and what (a loss term or a gradient).
#[derive(Debug)]
pub struct Nonfinite {
    pub step: usize,
    pub what: String,
}

impl From<Nonfinite> for Error {
    fn from(n: Nonfinite) -> Error {
        Error::NonFinite {
            step: n.step,
            what: n.what,
        }
    }
}

/// The flags of one optimiser's terms and gradients.
#[derive(Default)]
pub struct FiniteFlags {
    /// u32 per slot: u32::MAX - the earliest bad step, 0 while finite.
    flags: Option<Tensor>,
    /// Slot of each term or gradient name, and whether it is a term.
    slots: HashMap<String, (usize, bool)>,
    gradients: usize,
}

impl FiniteFlags {
    /// Records step `step`: `terms` (the loss "loss" and its parts) and `gradients`
    /// (parameter name, gradient) of some of the optimiser's `parameters` (a head
    /// unused this step has none).
    pub fn record(
        &mut self,
        gpu: &Gpu,
        step: usize,
        terms: &[(&str, Tensor)],
        gradients: &[(&str, Tensor)],
        parameters: usize,
    ) -> Result<()> {
        if self.flags.is_none() {
            self.gradients = parameters;
            let n = parameters + TERM_SLOTS;
            self.flags = Some(Tensor::from_u32(gpu, &vec![0; n], &[n])?);
        }
        let mark = u32::MAX - u32::try_from(step).unwrap_or(u32::MAX - 1);
        let tagged = terms
            .iter()
            .map(|(n, t)| (n, t, true))
            .chain(gradients.iter().map(|(n, t)| (n, t, false)));
        for (name, t, is_term) in tagged {
            let slot = self.slot(name, is_term)?;
            let Some(flags) = &self.flags else { continue };
            let n = t.numel();
            let p = Params::new("nonfinite")
                .idx("n", n)?
                .idx("slot", slot)?
                .u32("mark", mark);
            gpu.dispatch(
                &Kernel::new("nonfinite", "flag"),
                &[t.buffer(), flags.buffer()],
                &p,
                gpu.grid(n as u64, WORKGROUP),
            )?;
        }
        Ok(())
    }

    fn slot(&mut self, name: &str, is_term: bool) -> Result<usize> {
        if let Some(&(s, _)) = self.slots.get(name) {
            return Ok(s);
        }
        let used = self.slots.values().filter(|(_, t)| *t == is_term).count();
        let (base, room) = if is_term {
            (self.gradients, TERM_SLOTS)
        } else {
            (0, self.gradients)
        };
        if used >= room {
            return Err(Error::Usage(format!(
                "finiteness check: no slot left for {name:?} ({room} in all)"
            )));
        }
        self.slots.insert(name.to_string(), (base + used, is_term));
        Ok(base + used)
    }

    /// The earliest step recorded as not finite, read back (one read of the flags);
    /// named by its first loss part, else the total, else the first gradient.
    pub fn first(&self) -> Result<Option<Nonfinite>> {
        let Some(flags) = &self.flags else {
            return Ok(None);
        };
        let marks = flags.to_vec_u32()?;
        let Some(&worst) = marks.iter().max().filter(|&&m| m > 0) else {
            return Ok(None);
        };
        let mut hit: Vec<(&String, bool)> = self
            .slots
            .iter()
            .filter(|(_, &(s, _))| marks[s] == worst)
            .map(|(n, &(_, is_term))| (n, is_term))
            .collect();
        // Parts before the total, terms before gradients, then by name.
        hit.sort_by_key(|(n, is_term)| (!is_term, n.as_str() == "loss", n.to_string()));
        let what = match hit.first() {
            Some((n, true)) => format!("{n} is NaN or infinite"),
            Some((n, false)) => format!("the gradient of {n} is not finite (the loss is)"),
            None => "a value is not finite".into(),
        };
        Ok(Some(Nonfinite {
            step: (u32::MAX - worst) as usize,
            what,
        }))
    }

    /// Forgets what was recorded (after a skipped step).
    pub fn clear(&mut self) {
        self.flags = None;
    }
}
