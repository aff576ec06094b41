//! Gradient checks per op family, mirroring src/ops.

mod conv;
mod elementwise;
mod layout;
mod matmul;
mod reduce;
mod softmax;

use super::check::Check;

static FAMILIES: &[&[Check]] = &[
    elementwise::CHECKS,
    reduce::CHECKS,
    matmul::CHECKS,
    layout::CHECKS,
    softmax::CHECKS,
    conv::CHECKS,
];

/// The check of `op`, if it has one.
pub fn find(op: &str) -> Option<&'static Check> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|c| c.op == op)
}
