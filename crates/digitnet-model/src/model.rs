//! One type for "a digit classifier", CNN or MLP, so training and inference code is written once.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::cnn::{Cnn, CnnConfig};
use crate::error::ModelError;
use crate::mlp::{Mlp, MlpConfig};

/// Configuration of either kind of model (serialised with a `Cnn` or `Mlp` tag).
#[derive(Config, Debug, PartialEq)]
pub enum ModelConfig {
    /// A convolutional network.
    Cnn(CnnConfig),
    /// A multi-layer perceptron.
    Mlp(MlpConfig),
}

/// A digit classifier of either kind; `forward` maps `[N, 1, 28, 28]` images to `[N, 10]` logits.
#[derive(Module, Debug)]
pub enum DigitModel<B: Backend> {
    /// A convolutional network.
    Cnn(Cnn<B>),
    /// A multi-layer perceptron.
    Mlp(Mlp<B>),
}

impl ModelConfig {
    /// Checks every value of the configuration.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            ModelConfig::Cnn(c) => c.validate(),
            ModelConfig::Mlp(c) => c.validate(),
        }
    }

    /// Builds the network on `device` with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<DigitModel<B>, ModelError> {
        Ok(match self {
            ModelConfig::Cnn(c) => DigitModel::Cnn(c.init(device)?),
            ModelConfig::Mlp(c) => DigitModel::Mlp(c.init(device)?),
        })
    }

    /// "cnn" or "mlp".
    pub fn kind_name(&self) -> &'static str {
        match self {
            ModelConfig::Cnn(_) => "cnn",
            ModelConfig::Mlp(_) => "mlp",
        }
    }
}

impl<B: Backend> DigitModel<B> {
    /// Maps images `[N, 1, 28, 28]` to class logits `[N, 10]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            DigitModel::Cnn(m) => m.forward(images),
            DigitModel::Mlp(m) => m.forward(images),
        }
    }

    /// Maps images to class probabilities `[N, 10]` (softmax of the logits).
    pub fn probabilities(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        probabilities(self.forward(images))
    }
}

/// Softmax over the class dimension: logits `[N, C]` to probabilities that sum to 1 per row.
pub fn probabilities<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
    softmax(logits, 1)
}
