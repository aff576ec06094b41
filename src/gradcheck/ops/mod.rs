//! Gradient checks per op family, mirroring src/ops and src/loss.

mod balanced_bce;
mod class_prototypes;
mod conv2d;
mod cross_entropy;
mod dropout;
mod elementwise;
mod ema;
mod gather_pixels;
mod interpolate;
mod l2_normalize;
mod label_transfer;
mod layout;
mod linear;
mod mask_infonce;
mod masked_average;
mod matmul;
mod norm;
mod patch_nce;
mod pixel_contrast;
mod pool;
mod proto_contrast;
mod reduce;
mod simple_loss;
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
    conv2d::CHECKS,
    l2_normalize::CHECKS,
    masked_average::CHECKS,
    mask_infonce::CHECKS,
    ema::CHECKS,
    cross_entropy::CHECKS,
    balanced_bce::CHECKS,
    pixel_contrast::CHECKS,
    simple_loss::CHECKS,
    proto_contrast::CHECKS,
    class_prototypes::CHECKS,
    label_transfer::CHECKS,
    patch_nce::CHECKS,
    gather_pixels::CHECKS,
];

/// The check of `op`, if it has one.
pub fn find(op: &str) -> Option<&'static Check> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|c| c.op == op)
}
