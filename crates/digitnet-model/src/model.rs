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

    /// Number of parameters of the model this config builds (as Burn's `num_params` counts them,
    /// batch-norm running statistics included), without building it.
    pub fn num_params(&self) -> Result<usize, ModelError> {
        self.validate()?;
        let dense = |input: usize, hidden: &[usize], outputs: usize| {
            let mut sizes = vec![input];
            sizes.extend_from_slice(hidden);
            sizes.push(outputs);
            sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum::<usize>()
        };
        Ok(match self {
            ModelConfig::Cnn(c) => {
                let mut in_channels = c.in_channels;
                let mut total = 0;
                for b in &c.blocks {
                    let k = b.kernel_size * b.kernel_size;
                    total += in_channels * b.out_channels * k;
                    // Bias without batch norm; gamma, beta and two running statistics with it.
                    total += if b.batch_norm { 4 } else { 1 } * b.out_channels;
                    in_channels = b.out_channels;
                }
                total + dense(c.flat_features()?, &c.hidden, c.num_classes)
            }
            ModelConfig::Mlp(c) => dense(c.input_size, &c.hidden, c.num_classes),
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
