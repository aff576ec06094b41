//! Datasets: the built-in synthetic shapes and VOC-layout folders.

pub mod augment;
pub mod color;
pub mod config;
pub mod dataset;
pub mod export;
pub mod fashion_mnist;
pub mod garments;
pub mod loader;
pub mod synthetic;
pub mod voc;
