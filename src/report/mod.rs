//! What a run shows a person: plots and prediction pictures.

pub mod plot;
pub mod visual;
