//! Parameter initialisation as torch.nn does it, from a seeded RNG so a run is
//! reproducible.

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// U(-bound, bound) values.
pub fn uniform(gpu: &Gpu, rng: &mut StdRng, shape: &[usize], bound: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..=bound)).collect();
    Tensor::from_slice(gpu, &data, shape)
}

/// torch.nn.Conv2d / Linear default weight init: kaiming_uniform_(a=sqrt(5)), which is
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub fn kaiming_uniform_default(gpu: &Gpu, rng: &mut StdRng, shape: &[usize]) -> Result<Tensor> {
    let fan_in: usize = shape[1..].iter().product();
    uniform(gpu, rng, shape, 1.0 / (fan_in.max(1) as f32).sqrt())
}

/// torchvision's ResNet conv init: kaiming_normal_(mode="fan_out", nonlinearity="relu"),
/// N(0, 2 / fan_out) with fan_out = out_channels * kernel area.
pub fn kaiming_normal_fan_out(gpu: &Gpu, rng: &mut StdRng, shape: &[usize]) -> Result<Tensor> {
    let fan_out: usize = shape[0] * shape[2..].iter().product::<usize>();
    let normal = Normal::new(0.0, (2.0 / fan_out.max(1) as f32).sqrt())
        .map_err(|e| Error::Usage(format!("kaiming normal init of {shape:?}: {e}")))?;
    let data: Vec<f32> = (0..shape.iter().product())
        .map(|_| normal.sample(rng))
        .collect();
    Tensor::from_slice(gpu, &data, shape)
}

/// torch.nn.Conv2d / Linear default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub fn bias_default(gpu: &Gpu, rng: &mut StdRng, fan_in: usize, len: usize) -> Result<Tensor> {
    uniform(gpu, rng, &[len], 1.0 / (fan_in.max(1) as f32).sqrt())
}
