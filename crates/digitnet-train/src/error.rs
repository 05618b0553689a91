//! The training crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while training, evaluating or predicting.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Loading or preparing the data failed.
    #[error(transparent)]
    Data(#[from] digitnet_data::DataError),

    /// The model configuration is invalid.
    #[error(transparent)]
    Model(#[from] digitnet_model::ModelError),

    /// A file operation on the artifact directory failed.
    #[error("{path}: {action} failed: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A configuration file is missing or malformed.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A saved model cannot be loaded into the model its config describes.
    #[error("{path}: cannot load the model record: {message}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// Why it does not fit.
        message: String,
    },

    /// The artifact directory's file system has too little free space for the run's files.
    #[error(
        "{dir}: not enough free disk space: this run writes about {needed_mib:.1} MiB \
         (checkpoints and the model), the file system has {available_mib:.1} MiB free"
    )]
    DiskFull {
        /// The artifact directory.
        dir: PathBuf,
        /// Estimated need.
        needed_mib: f64,
        /// Free space found.
        available_mib: f64,
    },

    /// The module given to [`train`](crate::train) does not map images to class logits.
    #[error(
        "the model is not an image classifier for this dataset: for images of shape {input:?} \
         it must return logits of shape {expected:?}, but {problem}"
    )]
    NotAClassifier {
        /// The shape of the first batch of images.
        input: [usize; 4],
        /// `[batch, classes]`.
        expected: [usize; 2],
        /// What the module did instead.
        problem: String,
    },
    /// A PyTorch file cannot be imported: unreadable, or another architecture, or a tensor
    /// missing, extra or of the wrong shape.
    #[error("{path}: cannot import: {message}")]
    Import {
        /// The PyTorch file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },

    /// A training setting is out of range.
    #[error("invalid training setting: {0}")]
    InvalidSetting(String),

    /// `--resume` was asked for but there is nothing to resume from.
    #[error("{dir}: nothing to resume: {reason}")]
    NothingToResume {
        /// The artifact directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },

    /// Training produced a non-finite loss.
    #[error(
        "training diverged: the {split} loss at epoch {epoch}, batch {batch} is {value}; lower the \
         learning rate (last complete checkpoint: {checkpoint})"
    )]
    Diverged {
        /// The split whose loss diverged.
        split: digitnet_data::Split,
        /// The epoch.
        epoch: usize,
        /// The batch within the epoch.
        batch: usize,
        /// The loss value.
        value: f64,
        /// Where to resume from.
        checkpoint: String,
    },

    /// An image could not be read or decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Drawing a plot failed.
    #[error("{path}: cannot draw the plot: {message}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl TrainError {
    /// Wraps an [`std::io::Error`] with its path and action.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
