//! Memories that outlive a training step, kept on the GPU: prototype queues
//! (MaskContrast), per-class segment and pixel memories (pixel contrast) and EMA
//! prototype banks with their calibration (bi-directional prototypes).

pub mod pixel_memory;
pub mod prototype_bank;
pub mod queue;
