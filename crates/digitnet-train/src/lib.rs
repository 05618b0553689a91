//! # digitnet-train
//!
//! Training, evaluation and inference for digitnet's classifiers, on any Burn backend:
//! [`train()`] runs burn-train's `SupervisedTraining` + `Learner` with accuracy, loss and
//! learning-rate metrics, full-precision checkpoints every epoch, resume, early stopping and a
//! progress display of its own; [`evaluate()`] computes accuracy, loss, per-class precision and
//! recall and the confusion matrix; [`model_io`] saves and loads trained models.

pub mod artifacts;
pub mod classifier;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod history;
pub mod inference;
pub mod model_io;
pub mod plots;
pub mod progress;
pub mod recorder;
pub mod schedule;
pub mod train;

pub use artifacts::ArtifactDir;
pub use classifier::Classifier;
pub use config::{LrSchedule, OptimizerConfig, OptimizerKind, TrainingConfig};
pub use error::{Result, TrainError};
pub use evaluate::{Evaluation, Misclassified, evaluate};
pub use history::EpochRecord;
pub use inference::{Prediction, predict};
pub use progress::ProgressMode;
pub use train::{TrainOptions, TrainOutcome, train, train_data_parallel};
