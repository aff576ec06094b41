//! Ops: each family file holds its tensor-level kernels (forward and backward
//! dispatches) and the `Var` methods that record them on the tape.

pub mod attrs;
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod matmul;
pub mod params;
pub mod reduce;
pub mod registry;
pub mod softmax;

/// Tensor-level kernels without autograd, for backward rules and optimisers.
pub mod kernels {
    pub use super::conv::{
        conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    };
    pub use super::elementwise::{
        add, binary, div, fill, full, mul, neg, scale, sub, unary, unary_backward, zeros, BinaryOp,
        UnaryOp,
    };
    pub use super::layout::{concat, expand, permute, slice, strided_copy};
    pub use super::matmul::{matmul, matmul_views, MatView};
    pub use super::reduce::{reduce_sum, sum_to_shape};
    pub use super::softmax::{softmax, softmax_backward};
}
