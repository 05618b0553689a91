//! digitnet's integration tests, as one test binary: every module below drives the public API,
//! the `digitnet` binary or the examples on the committed real-MNIST sample
//! (`tests/fixtures/mnist-sample`) or on generated fixtures, offline.
//!
//! One binary, not one per file: each test binary links its own copy of Burn's generic code for
//! every backend it touches, so fifteen binaries took most of a clean `cargo test`'s time.

mod common;

mod augmentation;
mod backend_parity;
mod bad_models;
mod cli;
mod cli_options;
mod cli_train;
mod dataset;
mod download;
mod examples;
mod image_inputs;
mod kernel_threads;
mod onnx_export;
mod pytorch_import;
mod serve;
mod serve_browser;
mod shipped_weights;
mod training;
mod training_faults;
mod user_model;
