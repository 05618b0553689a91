//! The weights shipped with digitnet: the default CNN trained on MNIST with the project's own
//! `digitnet train` command (see the README for the command and its accuracy).

use burn::prelude::Backend;

use crate::model::DigitModel;
use crate::train::{TrainError, TrainingConfig};

/// The training configuration of the shipped model.
pub fn config() -> Result<TrainingConfig, TrainError> {
    Err(TrainError::InvalidSetting(
        "this build ships no trained weights yet; pass --artifacts DIR".into(),
    ))
}

/// The shipped model on `device`.
pub fn load<B: Backend>(
    _device: &B::Device,
) -> Result<(TrainingConfig, DigitModel<B>), TrainError> {
    Err(config()
        .err()
        .unwrap_or(TrainError::InvalidSetting("no shipped weights".into())))
}
