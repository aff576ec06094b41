//! MaskContrast's machinery (Van Gansbeke et al., ICCV 2021): L2 normalisation, mask
//! prototypes, the fused mask InfoNCE loss, the momentum-encoder update and GPU
//! prototype queues. Every loss is an op of `wgseg op` with a gradient check.

pub mod ema;
pub mod infonce;
pub mod masked_average;
pub mod normalize;
pub mod queue;

pub use ema::{ema, ema_update, ema_update_module};
pub use infonce::{InfoNceSaved, MaskInfoNce};
pub use masked_average::{check_nonempty, masked_average, masked_average_backward, MaskedAverage};
pub use normalize::{l2_normalize, l2_normalize_backward};
pub use queue::{ClassQueues, PrototypeQueue};
