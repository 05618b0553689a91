//! A multi-layer perceptron over flattened 28x28 images.

use burn::nn::{Dropout, DropoutConfig, Linear, Relu};
use burn::prelude::*;

use crate::dense::{dense_forward, dense_stack};
use crate::error::{ModelError, check_dropout, check_positive};

/// Configuration of an [`Mlp`].
#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    /// Sizes of the hidden layers (each followed by ReLU).
    pub hidden: Vec<usize>,
    /// Dropout probability before every layer (0 = none).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Number of input features (784 for 28x28 images).
    #[config(default = 784)]
    pub input_size: usize,
    /// Number of output classes.
    #[config(default = 10)]
    pub num_classes: usize,
}

/// A fully connected digit classifier; `forward` flattens `[N, 1, 28, 28]` images and returns
/// `[N, 10]` logits.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    linears: Vec<Linear<B>>,
    dropout: Option<Dropout>,
    activation: Relu,
}

impl MlpConfig {
    /// Checks every value; [`MlpConfig::init`] calls this first.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_positive("input_size", self.input_size)?;
        check_positive("num_classes", self.num_classes)?;
        check_dropout("dropout", self.dropout)?;
        for (i, &h) in self.hidden.iter().enumerate() {
            check_positive(&format!("hidden[{i}]"), h)?;
        }
        Ok(())
    }

    /// Builds the network on `device` with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Mlp<B>, ModelError> {
        self.validate()?;
        Ok(Mlp {
            linears: dense_stack(self.input_size, &self.hidden, self.num_classes, device),
            dropout: (self.dropout > 0.0).then(|| DropoutConfig::new(self.dropout).init()),
            activation: Relu::new(),
        })
    }
}

#[cfg(feature = "onnx")]
impl<B: Backend> Mlp<B> {
    /// The fully connected layers, in order.
    pub(crate) fn linears(&self) -> &[Linear<B>] {
        &self.linears
    }
}

impl<B: Backend> Mlp<B> {
    /// Maps images `[N, C, H, W]` (with `C * H * W` = `input_size`) to logits `[N, num_classes]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        dense_forward(
            &self.linears,
            self.dropout.as_ref(),
            &self.activation,
            images.flatten(1, 3),
        )
    }
}
