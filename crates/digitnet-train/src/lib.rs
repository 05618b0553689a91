//! # digitnet-train
//!
//! Training, evaluation and inference for image classifiers, on any Burn backend: digitnet's
//! models or any Burn module that implements [`ImageClassifier`]. [`train()`] runs burn-train's
//! `SupervisedTraining` + `Learner` with accuracy, loss and learning-rate metrics,
//! full-precision checkpoints every epoch, resume, early stopping, a stop on a non-finite loss,
//! a progress display of its own and the loss and accuracy curves; [`evaluate()`] computes
//! accuracy, loss, per-class precision and recall and the confusion matrix; [`save_module`] and
//! [`load_module`] write and read SafeTensors weights with strict name and shape checks; with the
//! `pytorch` feature, `import_pytorch` reads the weights of a PyTorch `state_dict` file.

pub mod artifacts;
mod classifier;
mod config;
mod error;
mod evaluate;
mod history;
#[cfg(feature = "pytorch")]
mod import;
mod inference;
pub mod model_io;
mod optimizer;
mod plots;
mod progress;
mod recorder;
mod schedule;
mod train;

pub use artifacts::ArtifactDir;
pub use classifier::ImageClassifier;
pub use config::{LrSchedule, OptimizerConfig, OptimizerKind, TrainingConfig};
pub use error::{Result, TrainError};
pub use evaluate::{Evaluation, Misclassified, evaluate, evaluate_with_logits};
pub use history::{EpochRecord, parse_metrics_csv, read_metrics_csv};
#[cfg(feature = "pytorch")]
pub use import::{PytorchImport, import_pytorch, import_pytorch_artifacts};
pub use inference::{Prediction, predict};
pub use model_io::{load_module, save_module};
pub use optimizer::FusedAdam;
pub use plots::plot_evaluation;
pub use progress::ProgressMode;
pub use train::{TrainOptions, TrainOutcome, train, train_data_parallel};
