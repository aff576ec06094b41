//! What constructing a network needs: the device and a seeded RNG, so the same seed
//! gives the same initial weights.

use std::cell::Cell;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::gpu::Gpu;

/// The training step, shared by every module whose randomness changes per step
/// (dropout): masks are a function of (module seed, step), so a resumed run draws
/// the same masks as an uninterrupted one.
#[derive(Clone, Default)]
pub struct StepClock(Rc<Cell<u64>>);

impl StepClock {
    pub fn set(&self, step: u64) {
        self.0.set(step)
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A switch shared by every batch norm of a network: frozen batch norm uses its
/// running statistics even while the network trains.
#[derive(Clone, Default)]
pub struct BnFreeze(Rc<Cell<bool>>);

impl BnFreeze {
    pub fn set(&self, frozen: bool) {
        self.0.set(frozen)
    }

    pub fn get(&self) -> bool {
        self.0.get()
    }
}

pub struct Builder {
    pub gpu: Gpu,
    pub rng: StdRng,
    pub clock: StepClock,
    pub bn_freeze: BnFreeze,
}

impl Builder {
    pub fn new(gpu: &Gpu, seed: u64) -> Self {
        Builder {
            gpu: gpu.clone(),
            rng: StdRng::seed_from_u64(seed),
            clock: StepClock::default(),
            bn_freeze: BnFreeze::default(),
        }
    }
}
