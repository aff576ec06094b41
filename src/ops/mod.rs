//! Ops: each family file holds its tensor-level kernels (forward and backward
//! dispatches) and the `Var` methods that record them on the tape. The losses are in
//! src/loss; src/op_table.rs lists both for `wgseg op` and the gradient checks.

pub mod attrs;
pub mod class_prototypes;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod ema;
pub mod feature_map;
pub mod gather_pixels;
pub mod interpolate;
pub mod l2_normalize;
pub mod label_transfer;
pub mod layout;
pub mod linear;
pub mod masked_average;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod spec;

/// Tensor-level kernels without autograd, for backward rules and optimisers.
pub mod kernels {
    pub use super::conv2d::{
        conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    };
    pub use super::dropout::dropout;
    pub use super::interpolate::{interpolate, resize, resize_backward, Resize};
    pub use super::layout::{concat, expand, permute, slice, strided_copy};
    pub use super::matmul::{matmul, matmul_views, MatView};
    pub use super::norm::{batch_norm, group_norm, instance_norm, layer_norm};
    pub use super::pool::{
        adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward,
        max_pool2d, max_pool2d_backward, Pool2d,
    };
    pub use super::reduce::{reduce_sum, sum_to_shape};
    pub use super::softmax::{softmax, softmax_backward};
    pub use crate::tensor::elementwise::{
        add, binary, div, fill, full, mul, neg, scale, sub, unary, unary_backward, zeros, BinaryOp,
        UnaryOp,
    };
}
