//! Where `eval` and `predict` get their model: an artifact directory, or the weights shipped
//! inside the binary.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use digitnet::model::DigitModel;
use digitnet::train::{ArtifactDir, TrainingConfig, model_io};

/// A trained model to load.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// `config.json` + `model.safetensors` of a `digitnet train` run.
    Artifacts(PathBuf),
    /// The default CNN trained on MNIST, compiled into the binary.
    Shipped,
}

impl ModelSource {
    /// The artifact directory if given, else the shipped weights.
    pub fn new(artifacts: Option<&Path>) -> Self {
        artifacts.map_or(ModelSource::Shipped, |p| {
            ModelSource::Artifacts(p.to_path_buf())
        })
    }

    /// The training configuration of the model.
    pub fn config(&self) -> anyhow::Result<TrainingConfig> {
        Ok(match self {
            ModelSource::Artifacts(dir) => model_io::load_config(&ArtifactDir::new(dir))?,
            ModelSource::Shipped => digitnet::shipped::config()?,
        })
    }

    /// The configuration and the model, on `device`.
    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
    ) -> anyhow::Result<(TrainingConfig, DigitModel<B>)> {
        Ok(match self {
            ModelSource::Artifacts(dir) => {
                model_io::load_model::<B>(&ArtifactDir::new(dir), device)?
            }
            ModelSource::Shipped => digitnet::shipped::load::<B>(device)?,
        })
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSource::Artifacts(dir) => write!(f, "the model in {}", dir.display()),
            ModelSource::Shipped => f.write_str("the shipped default CNN"),
        }
    }
}
