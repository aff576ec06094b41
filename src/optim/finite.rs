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

/// The flags of one optimiser's terms and gradients: slot i is parameter i's
/// gradient, the slots after them the loss terms'.
pub struct FiniteFlags {
    /// u32 per slot: u32::MAX - the earliest bad step, 0 while finite.
    flags: Option<Tensor>,
    /// The parameters' names, by slot.
    parameters: Vec<String>,
    /// The slot of each term name.
    terms: HashMap<String, usize>,
    /// The mark of the step being checked (0: none), which the optimiser's update
    /// also sets when it reads a gradient that is not finite.
    mark: u32,
}

impl FiniteFlags {
    /// The flags of an optimiser of `parameters` (their names, by slot).
    pub fn new(parameters: Vec<String>) -> FiniteFlags {
        FiniteFlags {
            flags: None,
            parameters,
            terms: HashMap::new(),
            mark: 0,
        }
    }

    /// The flags buffer, made (zeroed) on first use.
    pub fn buffer(&mut self, gpu: &Gpu) -> Result<Tensor> {
        if let Some(f) = &self.flags {
            return Ok(f.clone());
        }
        let n = self.parameters.len() + TERM_SLOTS;
        let f = Tensor::from_u32(gpu, &vec![0; n], &[n])?;
        self.flags = Some(f.clone());
        Ok(f)
    }

    /// The mark the update of the step being checked writes (0 before any check).
    pub fn mark(&self) -> u32 {
        self.mark
    }

    /// Starts checking step `step` (counted from 1) and records `terms` (the loss
    /// "loss" and its parts) and `gradients` (slot, gradient) in `flags`.
    pub fn record(
        &mut self,
        flags: &Tensor,
        step: usize,
        terms: &[(&str, Tensor)],
        gradients: &[(usize, Tensor)],
    ) -> Result<()> {
        self.mark = u32::MAX - u32::try_from(step).unwrap_or(u32::MAX - 1);
        let mut slots = Vec::with_capacity(terms.len() + gradients.len());
        for (name, t) in terms {
            slots.push((self.term_slot(name)?, t));
        }
        slots.extend(gradients.iter().map(|(s, t)| (*s, t)));
        let gpu = flags.gpu();
        for (slot, t) in slots {
            let n = t.numel();
            let p = Params::new("nonfinite")
                .idx("n", n)?
                .idx("slot", slot)?
                .u32("mark", self.mark);
            gpu.dispatch(
                &Kernel::new("nonfinite", "flag"),
                &[t.buffer(), flags.buffer()],
                &p,
                gpu.grid(n as u64, WORKGROUP),
            )?;
        }
        Ok(())
    }

    fn term_slot(&mut self, name: &str) -> Result<usize> {
        if let Some(&s) = self.terms.get(name) {
            return Ok(s);
        }
        if self.terms.len() >= TERM_SLOTS {
            return Err(Error::Usage(format!(
                "finiteness check: no slot left for {name:?} ({TERM_SLOTS} terms in all)"
            )));
        }
        let slot = self.parameters.len() + self.terms.len();
        self.terms.insert(name.to_string(), slot);
        Ok(slot)
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
        let mut terms: Vec<&String> = (self.terms.iter())
            .filter(|(_, &s)| marks[s] == worst)
            .map(|(n, _)| n)
            .collect();
        // Parts before the total, then by name.
        terms.sort_by_key(|n| (n.as_str() == "loss", n.to_string()));
        let gradient = (0..self.parameters.len()).find(|&s| marks[s] == worst);
        let what = match (terms.first(), gradient) {
            (Some(n), _) => format!("{n} is NaN or infinite"),
            (None, Some(s)) => format!(
                "the gradient of {} is not finite (the loss is)",
                self.parameters[s]
            ),
            (None, None) => "a value is not finite".into(),
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
