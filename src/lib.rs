//! # digitnet
//!
//! Handwritten-digit recognition in pure Rust, on the [Burn](https://burn.dev) framework.
//!
//! This crate is a thin facade over the workspace's crates:
//! - [`data`] (`digitnet-data`): MNIST / Fashion-MNIST IDX reading, verified downloads, Burn
//!   datasets and batchers, sample grids;
//! - [`model`] (`digitnet-model`): CNN and MLP classifiers, generic over any Burn backend;
//! - [`train`] (`digitnet-train`): training with burn-train's `Learner`, evaluation, model I/O;
//! - [`backend`]: type aliases for the backends compiled in (chosen by cargo feature).
//!
//! The README follows; its Rust examples are compiled and run as doc tests.
#![doc = include_str!("../README.md")]

pub mod backend;
pub mod shipped;

pub use burn;
pub use digitnet_data as data;
pub use digitnet_model as model;
pub use digitnet_train as train;
