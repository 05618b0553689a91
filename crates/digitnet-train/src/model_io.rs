//! Saving and loading trained models: `model.mpk` (Burn's named MessagePack recorder, full
//! precision) and `model.safetensors` (for other tools), both written atomically. Loading goes
//! through the SafeTensors file with strict shape and name checks, so a record that does not
//! match its config is a clear error instead of a silently wrong model.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::prelude::Backend;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn_store::{ModuleSnapshot, SafetensorsStore, SafetensorsStoreError};
use digitnet_model::DigitModel;

use crate::artifacts::{ArtifactDir, names};
use crate::config::TrainingConfig;
use crate::error::{Result, TrainError};

/// Version of digitnet's saved-model layout, stored in the SafeTensors metadata.
pub const FORMAT_VERSION: &str = "1";
const FORMAT_KEY: &str = "digitnet.format_version";

/// The recorder used for model records and checkpoints: full precision (not half, like
/// Burn's `CompactRecorder`).
pub type ModelRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Writes `model` into `dir` as `model.mpk` and `model.safetensors`, each atomically.
pub fn save_model<B: Backend>(model: &DigitModel<B>, dir: &ArtifactDir) -> Result<()> {
    // The recorder appends ".mpk" itself.
    let partial = dir.file(".model-partial");
    let written = partial.with_extension("mpk");
    model
        .clone()
        .save_file(&partial, &ModelRecorder::new())
        .map_err(|e| TrainError::Record {
            path: written.clone(),
            message: e.to_string(),
        })?;
    rename(&written, &dir.file(names::MODEL))?;

    let partial = dir.file(".model-partial.safetensors");
    let mut store = SafetensorsStore::from_file(&partial).metadata(FORMAT_KEY, FORMAT_VERSION);
    model
        .save_into(&mut store)
        .map_err(|e| TrainError::Record {
            path: partial.clone(),
            message: e.to_string(),
        })?;
    rename(&partial, &dir.file(names::SAFETENSORS))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| TrainError::io(to, "rename into place", e))
}

/// Reads `config.json` from an artifact directory.
pub fn load_config(dir: &ArtifactDir) -> Result<TrainingConfig> {
    let path = dir.file(names::CONFIG);
    if !path.is_file() {
        return Err(TrainError::Config {
            message: "no such file: not an artifact directory of `digitnet train`".into(),
            path,
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, "read", e))?;
    parse_config(&text, &path)
}

/// Parses a training configuration (JSON); `path` only labels errors.
pub fn parse_config(json: &str, path: &Path) -> Result<TrainingConfig> {
    let config = TrainingConfig::load_binary(json.as_bytes()).map_err(|e| TrainError::Config {
        path: path.to_path_buf(),
        message: format!("not a valid training config: {e}"),
    })?;
    config.validate().map_err(|e| TrainError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(config)
}

/// Loads the model described by `config` with the weights of `weights` (a SafeTensors file
/// written by [`save_model`]); any missing, extra or mis-shaped tensor is an error.
pub fn load_weights<B: Backend>(
    config: &TrainingConfig,
    weights: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    if !weights.is_file() {
        return Err(TrainError::Record {
            path: weights.to_path_buf(),
            message: "no such file".into(),
        });
    }
    load_from_store(
        config,
        SafetensorsStore::from_file(weights),
        weights,
        device,
    )
}

/// Like [`load_weights`] for SafeTensors bytes held in memory; `name` only labels errors.
pub fn load_weights_from_bytes<B: Backend>(
    config: &TrainingConfig,
    bytes: &[u8],
    name: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    load_from_store(
        config,
        SafetensorsStore::from_bytes(Some(bytes.to_vec())),
        name,
        device,
    )
}

fn load_from_store<B: Backend>(
    config: &TrainingConfig,
    store: SafetensorsStore,
    name: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    let record_error = |message: String| TrainError::Record {
        path: name.to_path_buf(),
        message,
    };
    let mut model = config.model.init::<B>(device)?;
    let mut store = store.validate(true).allow_partial(false);
    let result = model.load_from(&mut store).map_err(|e| match e {
        SafetensorsStoreError::ValidationFailed(details)
        | SafetensorsStoreError::TensorNotFound(details) => record_error(format!(
            "it does not match the {} model of its config.json ({})",
            config.model.kind_name(),
            shorten(&details, 400)
        )),
        other => record_error(format!("not a readable SafeTensors model ({other})")),
    })?;
    if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.extend(
            result
                .missing
                .iter()
                .map(|(name, _)| format!("missing tensor {name}")),
        );
        problems.extend(
            result
                .unused
                .iter()
                .map(|name| format!("unexpected tensor {name}")),
        );
        problems.truncate(5);
        return Err(record_error(format!(
            "it does not match the {} model of its config.json ({})",
            config.model.kind_name(),
            problems.join("; ")
        )));
    }
    Ok(model)
}

/// Loads the config and the trained model of an artifact directory.
pub fn load_model<B: Backend>(
    dir: &ArtifactDir,
    device: &B::Device,
) -> Result<(TrainingConfig, DigitModel<B>)> {
    let config = load_config(dir)?;
    let model = load_weights(&config, &dir.file(names::SAFETENSORS), device)?;
    Ok((config, model))
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
