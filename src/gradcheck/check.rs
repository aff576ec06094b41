//! What a gradient check of one op needs: its CPU f64 reference and a generator of
//! random cases. Each op family's file under gradcheck/ops lists its checks.

use rand::rngs::StdRng;
use rand::Rng;

use super::host::HostTensor;
use crate::error::{Error, Result};
use crate::ops::attrs::Attrs;

/// Named inputs of one case, as `wgseg op` files name them.
pub type Inputs = [(String, HostTensor)];

/// One check: named inputs and attribute texts as `wgseg op --attr` takes them.
#[derive(Clone, Debug)]
pub struct Case {
    pub inputs: Vec<(String, HostTensor)>,
    pub attrs: Vec<(String, String)>,
}

/// The reference and cases of one op.
pub struct Check {
    pub op: &'static str,
    pub reference: fn(&Inputs, &Attrs) -> Result<HostTensor>,
    pub cases: fn(&mut StdRng) -> Vec<Case>,
}

/// Builds a case from `(name, tensor)` inputs and `(attr, text)` pairs.
pub fn case(inputs: Vec<(&str, HostTensor)>, attrs: &[(&str, &str)]) -> Case {
    Case {
        inputs: inputs
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect(),
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The input called `name`.
pub fn input<'a>(inputs: &'a Inputs, name: &str) -> Result<&'a HostTensor> {
    inputs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::op("reference", format!("missing input {name}")))
}

/// `rank` random sizes in lo..=hi.
pub fn dims(rng: &mut StdRng, rank: usize, lo: usize, hi: usize) -> Vec<usize> {
    (0..rank).map(|_| rng.random_range(lo..=hi)).collect()
}

/// Uniform values in [-1, 1).
pub fn uniform(rng: &mut StdRng, shape: &[usize]) -> HostTensor {
    HostTensor::uniform(rng, shape, -1.0, 1.0)
}
