//! Datasets: the built-in synthetic shapes and VOC-layout folders.

pub mod synthetic;
