//! ssvae: semi-supervised variational autoencoders (Berkhahn et al., "One Model to Rule Them
//! All") trained on any desktop GPU through wgpu, with a CPU reference backend that every GPU
//! kernel is checked against.
//!
//! Layers: [`backend`] (the `Backend` trait, the CPU reference and the wgpu implementation, one
//! kernel per [`backend::Op`]), [`rng`] (the counter-based generator both backends share).

pub mod backend;
pub mod bench;
pub mod data;
pub mod error;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod graph;
pub mod model;
pub mod rng;
pub mod run;
pub mod train;

#[cfg(test)]
pub(crate) mod testdir;

pub use backend::{Backend, BufferLike, DType, Kernels, Op};
pub use error::{Error, Result};
