//! Gradient checks per op family, mirroring src/ops.

mod elementwise;
mod layout;
mod linear;
mod matmul;
mod norm;
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
];

/// The check of `op`, if it has one.
pub fn find(op: &str) -> Option<&'static Check> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|c| c.op == op)
}
