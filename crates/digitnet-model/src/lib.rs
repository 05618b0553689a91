//! # digitnet-model
//!
//! Digit classifiers as generic Burn modules, usable on any backend: a configurable [`Cnn`] and
//! [`Mlp`], both built from serde [`Config`](burn::config::Config)s, the [`DigitModel`] enum
//! that holds either, and [`Preset`]s reproducing the classic tutorials' architectures.
//!
//! ```
//! use burn_ndarray::NdArray;
//! use burn::prelude::*;
//! use digitnet_model::Preset;
//!
//! let device = Default::default();
//! let model = Preset::CnnB.config().init::<NdArray>(&device)?;
//! let logits = model.forward(Tensor::zeros([2, 1, 28, 28], &device));
//! assert_eq!(logits.dims(), [2, 10]);
//! # Ok::<(), digitnet_model::ModelError>(())
//! ```

pub mod cnn;
mod dense;
pub mod error;
pub mod mlp;
pub mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod preset;

pub use cnn::{Cnn, CnnConfig, ConvBlock, ConvBlockConfig};
pub use error::ModelError;
pub use mlp::{Mlp, MlpConfig};
pub use model::{DigitModel, ModelConfig, probabilities};
pub use preset::{ModelKind, Preset};

#[cfg(test)]
mod tests;
