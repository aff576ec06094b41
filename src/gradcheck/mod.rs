//! Gradient checks: every registered op runs on the current adapter against its CPU
//! f64 reference. The forward is compared directly; each input gradient from the GPU
//! backward is compared with central finite differences of the f64 reference of
//! L = sum(output * grad_output) for a random grad_output. Errors are relative:
//! ||gpu - ref|| / ||ref||. Ops without a differentiable input (u32 outputs such as
//! pseudo labels) are compared on the forward only.

pub mod check;
pub mod host;
pub mod ops;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::op_table;
use crate::ops::attrs::Attrs;
use crate::ops::spec::OpSpec;
use crate::tensor::{DType, Tensor};
use check::{Case, Check};
use host::{relative_error, HostTensor};

/// Tolerances for f32 kernels.
pub const FORWARD_TOL: f64 = 1e-4;
pub const GRAD_TOL: f64 = 1e-3;
/// Finite-difference step on the f64 reference.
const FD_EPS: f64 = 1e-6;

/// The outcome of one case.
pub struct CaseReport {
    pub op: &'static str,
    pub label: String,
    pub forward: f64,
    pub grads: Vec<(String, f64)>,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.forward <= FORWARD_TOL && self.grads.iter().all(|(_, e)| *e <= GRAD_TOL)
    }
}

fn label(case: &Case, attrs: &Attrs) -> String {
    let shapes: Vec<String> = case
        .inputs
        .iter()
        .map(|(n, t)| format!("{n}{:?}", t.shape))
        .collect();
    format!("{} {}", shapes.join(" "), attrs.describe())
        .trim()
        .to_string()
}

fn loss_of(
    check: &Check,
    inputs: &[(String, HostTensor)],
    attrs: &Attrs,
    gout: &HostTensor,
) -> Result<f64> {
    let out = (check.reference)(inputs, attrs)?;
    Ok(out.data.iter().zip(&gout.data).map(|(a, b)| a * b).sum())
}

/// Finite-difference gradient of the reference for input `which`.
fn numeric_grad(
    check: &Check,
    inputs: &[(String, HostTensor)],
    which: usize,
    attrs: &Attrs,
    gout: &HostTensor,
) -> Result<Vec<f64>> {
    let mut probe = inputs.to_vec();
    let n = probe[which].1.numel();
    let mut grad = vec![0.0; n];
    for (j, g) in grad.iter_mut().enumerate() {
        let orig = probe[which].1.data[j];
        probe[which].1.data[j] = orig + FD_EPS;
        let up = loss_of(check, &probe, attrs, gout)?;
        probe[which].1.data[j] = orig - FD_EPS;
        let down = loss_of(check, &probe, attrs, gout)?;
        probe[which].1.data[j] = orig;
        *g = (up - down) / (2.0 * FD_EPS);
    }
    Ok(grad)
}

/// Uploads a case input with the dtype its op declares (labels as u32).
fn upload(gpu: &Gpu, spec: &OpSpec, name: &str, t: &HostTensor) -> Result<Tensor> {
    let base = name.split('.').next().unwrap_or(name);
    let dtype = spec.inputs.iter().find(|i| i.name == base).map(|i| i.dtype);
    match dtype {
        Some(DType::U32) => {
            let labels: Vec<u32> = t.data.iter().map(|&v| v as u32).collect();
            Tensor::from_u32(gpu, &labels, &t.shape)
        }
        _ => Tensor::from_slice(gpu, &t.to_f32(), &t.shape),
    }
}

/// Runs one case of `spec` on `gpu`.
pub fn check_case(
    gpu: &Gpu,
    spec: &'static OpSpec,
    check: &Check,
    case: &Case,
    rng: &mut StdRng,
) -> Result<CaseReport> {
    // Inputs are rounded to f32 first so the GPU and the reference see the same values.
    let inputs: Vec<(String, HostTensor)> = case
        .inputs
        .iter()
        .map(|(n, t)| (n.clone(), HostTensor::from_f32(&t.shape, &t.to_f32())))
        .collect();
    let tensors = inputs
        .iter()
        .map(|(n, t)| Ok((n.clone(), upload(gpu, spec, n, t)?)))
        .collect::<Result<Vec<_>>>()?;
    let call = spec.bind(tensors, &case.attrs)?;
    let out = (spec.run)(&call)?;
    let expected = (check.reference)(&inputs, &call.attrs)?;
    let got = out.value();
    if got.shape() != expected.shape.as_slice() {
        return Err(Error::op(
            spec.name,
            format!(
                "output shape {:?}, reference {:?}",
                got.shape(),
                expected.shape
            ),
        ));
    }
    let got_f64: Vec<f64> = match got.dtype() {
        DType::F32 => got.to_vec()?.iter().map(|&v| v as f64).collect(),
        DType::U32 => got.to_vec_u32()?.iter().map(|&v| v as f64).collect(),
    };
    let forward = relative_error(&got_f64, &expected.data);
    // An op without differentiable inputs (e.g. ema) has only its forward to check.
    if !out.requires_grad() {
        return Ok(CaseReport {
            op: spec.name,
            label: label(case, &call.attrs),
            forward,
            grads: Vec::new(),
        });
    }
    let gout = HostTensor::uniform(rng, &expected.shape, -1.0, 1.0);
    let gout = HostTensor::from_f32(&gout.shape, &gout.to_f32());
    let grads = out.backward_with(Tensor::from_slice(gpu, &gout.to_f32(), &gout.shape)?)?;
    let mut grad_errors = Vec::new();
    for (name, var) in call.named() {
        if !var.requires_grad() {
            continue;
        }
        let which = inputs
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| Error::op(spec.name, format!("gradcheck: no input {name}")))?;
        let numeric = numeric_grad(check, &inputs, which, &call.attrs, &gout)?;
        let analytic: Vec<f64> = match grads.get(var) {
            Some(t) => t.to_vec()?.iter().map(|&v| v as f64).collect(),
            None => vec![0.0; numeric.len()],
        };
        grad_errors.push((name, relative_error(&analytic, &numeric)));
    }
    Ok(CaseReport {
        op: spec.name,
        label: label(case, &call.attrs),
        forward,
        grads: grad_errors,
    })
}

/// Checks the named ops (all when empty) with cases drawn from `seed`.
pub fn run(gpu: &Gpu, ops: &[String], seed: u64) -> Result<Vec<CaseReport>> {
    let specs: Vec<&'static OpSpec> = if ops.is_empty() {
        op_table::all().collect()
    } else {
        ops.iter()
            .map(|n| op_table::find(n))
            .collect::<Result<_>>()?
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut reports = Vec::new();
    for spec in specs {
        let check =
            ops::find(spec.name).ok_or_else(|| Error::op(spec.name, "has no gradient check"))?;
        for case in &(check.cases)(&mut rng) {
            reports.push(check_case(gpu, spec, check, case, &mut rng)?);
        }
    }
    Ok(reports)
}
