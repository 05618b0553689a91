//! The weights shipped with digitnet: the default CNN (`cnn-bn`) trained on MNIST with the
//! project's own `digitnet train` command; `weights/cnn-bn/README.md` has the command, the
//! training curves' figures and the test accuracy. Compiled into the library, so `digitnet predict`
//! works on a fresh clone with no training and no download.

use std::path::Path;

use burn::prelude::Backend;

use crate::model::DigitModel;
use crate::train::{TrainError, TrainingConfig, model_io};

const CONFIG_JSON: &str = include_str!("../weights/cnn-bn/config.json");
const WEIGHTS: &[u8] = include_bytes!("../weights/cnn-bn/model.safetensors");
const METRICS_CSV: &str = include_str!("../weights/cnn-bn/metrics.csv");

/// The shipped model's weights: a SafeTensors file (see [`model_io::load_weights_from_bytes`]).
pub fn weights() -> &'static [u8] {
    WEIGHTS
}

/// The training configuration of the shipped model.
pub fn config() -> Result<TrainingConfig, TrainError> {
    model_io::parse_config(CONFIG_JSON, Path::new("<shipped>/config.json"))
}

/// The per-epoch metrics of the shipped model's training run (its `metrics.csv`).
pub fn metrics() -> Result<Vec<crate::train::EpochRecord>, TrainError> {
    crate::train::parse_metrics_csv(METRICS_CSV, Path::new("<shipped>/metrics.csv"))
}

/// The shipped model on `device`, with its configuration.
pub fn load<B: Backend>(device: &B::Device) -> Result<(TrainingConfig, DigitModel<B>), TrainError> {
    let config = config()?;
    let model = model_io::load_weights_from_bytes(
        &config,
        WEIGHTS,
        Path::new("<shipped>/model.safetensors"),
        device,
    )?;
    Ok((config, model))
}
