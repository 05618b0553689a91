//! What a training run is: the model, the optimiser and its schedule, and the loop's settings.
//! Saved as `config.json` in the artifact directory.

use burn::config::Config;
use digitnet_data::{AugmentConfig, DatasetKind};
use digitnet_model::{ModelConfig, Preset};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Which optimiser updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba), PyTorch's defaults (betas 0.9/0.999, epsilon 1e-8).
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
    /// Stochastic gradient descent with (optionally Nesterov) momentum.
    Sgd,
}

/// The optimiser and its hyper-parameters.
#[derive(Config, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// Which optimiser.
    pub kind: OptimizerKind,
    /// Peak learning rate.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Weight decay (L2 for Adam and SGD, decoupled for AdamW).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Momentum (SGD only).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// Numerical-stability epsilon (Adam, AdamW); PyTorch's default, not Burn's 1e-5.
    #[config(default = 1e-8)]
    pub epsilon: f64,
}

/// How the learning rate changes over the run (stepped every batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LrSchedule {
    /// The same rate throughout.
    Constant,
    /// Cosine annealing from the peak rate down to `final_fraction` of it at the last batch.
    Cosine {
        /// Final rate as a fraction of the peak.
        final_fraction: f64,
    },
    /// Multiply the rate by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between decays.
        every_epochs: usize,
        /// Decay factor.
        gamma: f64,
    },
}

/// Everything that defines a training run.
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// The digitnet model to train (`None` when [`train`](crate::train) gets a user-defined
    /// [`ImageClassifier`](crate::ImageClassifier)); saved in `config.json` so that the CLI can
    /// rebuild the model to load its weights.
    #[config(default = "None")]
    pub model: Option<ModelConfig>,
    /// The preset the model came from, if any (informational).
    #[config(default = "None")]
    pub preset: Option<String>,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    #[config(default = "LrSchedule::Constant")]
    pub lr_schedule: LrSchedule,
    /// The dataset (`"mnist"` or `"fashion-mnist"` in `config.json`).
    #[config(default = "DatasetKind::Mnist")]
    pub dataset: DatasetKind,
    /// Number of passes over the training split.
    #[config(default = 10)]
    pub epochs: usize,
    /// Images per batch.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Data-loading worker threads.
    #[config(default = 1)]
    pub workers: usize,
    /// Seed for weight initialisation and shuffling.
    #[config(default = 42)]
    pub seed: u64,
    /// Training images held out for validation, taken from the end of the training set; `None`
    /// for the dataset's default (5,000, or a tenth of a small training set). [`train`](crate::train)
    /// writes the size it used into `config.json`.
    #[config(default = "None")]
    pub validation_size: Option<usize>,
    /// Use only the first N training images (after the hold-out), for quick runs.
    #[config(default = "None")]
    pub limit_train: Option<usize>,
    /// Stop when the validation loss has not improved for this many epochs.
    #[config(default = "None")]
    pub early_stopping_patience: Option<usize>,
    /// Stop after the first epoch whose validation accuracy (a fraction, 0..1) reaches this.
    #[config(default = "None")]
    pub target_accuracy: Option<f64>,
    /// Random distortions of the training images, drawn anew every epoch (validation and test
    /// images are never distorted); `None` trains on the images as they are.
    #[config(default = "None")]
    pub augment: Option<AugmentConfig>,
}

impl TrainingConfig {
    /// A configuration for a preset with the recommended optimiser and schedule.
    ///
    /// CNNs: Adam, lr 1e-3, cosine decay to 1% over the run; MLPs: Adam, lr 1e-3, constant.
    pub fn for_preset(preset: Preset) -> Self {
        let schedule = match preset.kind() {
            digitnet_model::ModelKind::Cnn => LrSchedule::Cosine {
                final_fraction: 0.01,
            },
            digitnet_model::ModelKind::Mlp => LrSchedule::Constant,
        };
        TrainingConfig::new(OptimizerConfig::new(OptimizerKind::Adam))
            .with_model(Some(preset.config()))
            .with_preset(Some(preset.name().to_string()))
            .with_lr_schedule(schedule)
    }

    /// The digitnet model this config describes; an error for a config written for a
    /// user-defined model, which has none.
    pub fn digit_model(&self) -> Result<&ModelConfig> {
        self.model.as_ref().ok_or_else(|| {
            TrainError::InvalidSetting(
                "this training config describes no digitnet model (it was written for a \
                 user-defined model, whose weights load with `model_io::load_module`)"
                    .into(),
            )
        })
    }

    /// Checks the settings (and the model config, when there is one).
    pub fn validate(&self) -> Result<()> {
        if let Some(model) = &self.model {
            model.validate()?;
        }
        let bad = |msg: String| Err(TrainError::InvalidSetting(msg));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        let lr = self.optimizer.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return bad(format!("learning rate {lr} must be a positive number"));
        }
        if let Some(target) = self.target_accuracy
            && !(target > 0.0 && target <= 1.0)
        {
            return bad(format!(
                "target accuracy {target} must be a fraction in (0, 1], such as 0.99"
            ));
        }
        if let Some(augment) = &self.augment {
            augment.validate()?;
        }
        if self.limit_train == Some(0) {
            return bad("--limit-train must be at least 1".into());
        }
        match &self.lr_schedule {
            LrSchedule::Step {
                every_epochs: 0, ..
            } => bad("step schedule: every_epochs must be at least 1".into()),
            LrSchedule::Step { gamma, .. } if !(*gamma > 0.0 && *gamma <= 1.0) => {
                bad(format!("step schedule: gamma {gamma} must be in (0, 1]"))
            }
            LrSchedule::Cosine { final_fraction } if !(0.0..=1.0).contains(final_fraction) => bad(
                format!("cosine schedule: final_fraction {final_fraction} must be in [0, 1]"),
            ),
            _ => Ok(()),
        }
    }
}
