//! Named architectures: the classic tutorials' models, reproduced exactly, and digitnet's default.

use std::fmt;
use std::str::FromStr;

use crate::cnn::{CnnConfig, ConvBlockConfig};
use crate::error::ModelError;
use crate::mlp::MlpConfig;
use crate::model::ModelConfig;

/// A ready-made model configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// digitnet's default CNN, chosen for accuracy: three 3x3 conv blocks (32, 64, 128 channels)
    /// with batch norm, ReLU and 2x2 max-pooling, then dropout, a 128-unit hidden layer and the
    /// output layer (about 242k parameters).
    CnnBn,
    /// "CNN A": conv 1->16 5x5 pad 2, ReLU, maxpool 2; conv 16->32 5x5 pad 2, ReLU, maxpool 2;
    /// conv 32->64 5x5 pad 2, ReLU; linear 64*7*7->10 (95,882 parameters).
    CnnA,
    /// "CNN B": conv 1->32 3x3 pad 1, ReLU, maxpool 2; conv 32->64 3x3 pad 1, ReLU, maxpool 2;
    /// linear 3136->128, ReLU; linear 128->10 (421,642 parameters).
    CnnB,
    /// "MLP A": 784-128-64-10 with ReLU between layers (109,386 parameters).
    MlpA,
    /// "MLP B": 784-256-64-10 with ReLU between layers (218,058 parameters).
    MlpB,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 5] = [
        Preset::CnnBn,
        Preset::CnnA,
        Preset::CnnB,
        Preset::MlpA,
        Preset::MlpB,
    ];

    /// The preset used when only a model kind is given.
    pub fn default_for(kind: ModelKind) -> Preset {
        match kind {
            ModelKind::Cnn => Preset::CnnBn,
            ModelKind::Mlp => Preset::MlpA,
        }
    }

    /// The name used on the command line and in saved configs.
    pub fn name(self) -> &'static str {
        match self {
            Preset::CnnBn => "cnn-bn",
            Preset::CnnA => "cnn-a",
            Preset::CnnB => "cnn-b",
            Preset::MlpA => "mlp-a",
            Preset::MlpB => "mlp-b",
        }
    }

    /// Whether this preset is a CNN or an MLP.
    pub fn kind(self) -> ModelKind {
        match self {
            Preset::CnnBn | Preset::CnnA | Preset::CnnB => ModelKind::Cnn,
            Preset::MlpA | Preset::MlpB => ModelKind::Mlp,
        }
    }

    /// The full configuration.
    pub fn config(self) -> ModelConfig {
        match self {
            Preset::CnnBn => ModelConfig::Cnn(
                CnnConfig::new(
                    [32, 64, 128]
                        .into_iter()
                        .map(|c| ConvBlockConfig::new(c).with_batch_norm(true))
                        .collect(),
                )
                .with_hidden(vec![128])
                .with_dropout(0.3),
            ),
            Preset::CnnA => ModelConfig::Cnn(CnnConfig::new(vec![
                ConvBlockConfig::new(16).with_kernel_size(5).with_padding(2),
                ConvBlockConfig::new(32).with_kernel_size(5).with_padding(2),
                ConvBlockConfig::new(64)
                    .with_kernel_size(5)
                    .with_padding(2)
                    .with_max_pool(false),
            ])),
            Preset::CnnB => ModelConfig::Cnn(
                CnnConfig::new(vec![ConvBlockConfig::new(32), ConvBlockConfig::new(64)])
                    .with_hidden(vec![128]),
            ),
            Preset::MlpA => ModelConfig::Mlp(MlpConfig::new(vec![128, 64])),
            Preset::MlpB => ModelConfig::Mlp(MlpConfig::new(vec![256, 64])),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ModelError::UnknownPreset {
                name: s.to_string(),
                known: Preset::ALL.map(Preset::name).join(", "),
            })
    }
}

/// The two families of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Convolutional network.
    Cnn,
    /// Multi-layer perceptron.
    Mlp,
}
