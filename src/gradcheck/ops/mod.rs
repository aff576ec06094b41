//! Gradient checks per op family, mirroring src/ops.

mod dropout;
mod elementwise;
mod gather;
mod interpolate;
mod label_transfer;
mod layout;
mod linear;
mod matmul;
mod norm;
mod patch_nce;
mod pool;
mod proto_contrast;
mod prototypes;
mod reduce;
mod softmax;

use super::check::Check;

static FAMILIES: &[&[Check]] = &[
    elementwise::CHECKS,
    reduce::CHECKS,
    matmul::CHECKS,
    layout::CHECKS,
    linear::CHECKS,
    softmax::CHECKS,
    norm::CHECKS,
    pool::CHECKS,
    interpolate::CHECKS,
    dropout::CHECKS,
    proto_contrast::CHECKS,
    prototypes::CHECKS,
    label_transfer::CHECKS,
    patch_nce::CHECKS,
    gather::CHECKS,
];

/// The check of `op`, if it has one.
pub fn find(op: &str) -> Option<&'static Check> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|c| c.op == op)
}
