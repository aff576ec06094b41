//! The op table behind `wgseg op`, `wgseg op --list` and `wgseg gradcheck`: every op
//! family's `OPS`, from the generic ops and the losses. It is assembled here, above
//! the families, so that none of them imports it.

use crate::error::{Error, Result};
use crate::ops::spec::OpSpec;

/// Every op family's table, in listing order.
static FAMILIES: &[&[OpSpec]] = &[
    crate::ops::elementwise::OPS,
    crate::ops::reduce::OPS,
    crate::ops::matmul::OPS,
    crate::ops::layout::OPS,
    crate::ops::linear::OPS,
    crate::ops::softmax::OPS,
    crate::ops::norm::OPS,
    crate::ops::pool::OPS,
    crate::ops::interpolate::OPS,
    crate::ops::dropout::OPS,
    crate::ops::conv2d::OPS,
    crate::ops::l2_normalize::OPS,
    crate::ops::masked_average::OPS,
    crate::loss::mask_infonce::OPS,
    crate::ops::ema::OPS,
    crate::loss::cross_entropy::OPS,
    crate::loss::balanced_bce::OPS,
    crate::loss::pixel_contrast::OPS,
    crate::loss::simple_loss::OPS,
    crate::loss::proto_contrast::OPS,
    crate::ops::class_prototypes::OPS,
    crate::ops::label_transfer::OPS,
    crate::loss::patch_nce::OPS,
    crate::ops::gather_pixels::OPS,
];

/// Every op, in listing order.
pub fn all() -> impl Iterator<Item = &'static OpSpec> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// Looks an op up by name; the error lists the known ones.
pub fn find(name: &str) -> Result<&'static OpSpec> {
    all().find(|o| o.name == name).ok_or_else(|| {
        let names: Vec<&str> = all().map(|o| o.name).collect();
        Error::op(name, format!("unknown op; known ops: {}", names.join(", ")))
    })
}
