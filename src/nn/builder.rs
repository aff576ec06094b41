//! What constructing a network needs: the device and a seeded RNG, so the same seed
//! gives the same initial weights.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::gpu::Gpu;

pub struct Builder {
    pub gpu: Gpu,
    pub rng: StdRng,
}

impl Builder {
    pub fn new(gpu: &Gpu, seed: u64) -> Self {
        Builder {
            gpu: gpu.clone(),
            rng: StdRng::seed_from_u64(seed),
        }
    }
}
