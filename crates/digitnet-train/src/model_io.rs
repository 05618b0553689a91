//! Saving and loading trained models: `model.mpk` (Burn's named MessagePack format, full
//! precision, through [`ModelRecorder`]) and `model.safetensors` (for other tools), both written
//! atomically. Loading goes
//! through the SafeTensors file with strict shape and name checks, so a record that does not
//! match its config is a clear error instead of a silently wrong model.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::prelude::Backend;
use burn_store::{ModuleSnapshot, SafetensorsStore, SafetensorsStoreError};
use digitnet_model::DigitModel;

use crate::artifacts::{ArtifactDir, names};
use crate::config::TrainingConfig;
use crate::error::{Result, TrainError};
pub use crate::recorder::ModelRecorder;

/// Version of digitnet's saved-model layout, stored in the SafeTensors metadata.
pub const FORMAT_VERSION: &str = "1";
const FORMAT_KEY: &str = "digitnet.format_version";

/// Writes `model` into `dir` as `model.mpk` and `model.safetensors`, each atomically.
pub fn save_model<B: Backend>(model: &DigitModel<B>, dir: &ArtifactDir) -> Result<()> {
    // The recorder writes atomically and appends ".mpk" itself.
    let mpk = dir.file(names::MODEL);
    model
        .clone()
        .save_file(mpk.with_extension(""), &ModelRecorder::new())
        .map_err(|e| TrainError::Record {
            path: mpk.clone(),
            message: e.to_string(),
        })?;

    let path = dir.file(names::SAFETENSORS);
    let record_error = |message: String| TrainError::Record {
        path: path.clone(),
        message,
    };
    let mut store = SafetensorsStore::from_bytes(None).metadata(FORMAT_KEY, FORMAT_VERSION);
    model
        .save_into(&mut store)
        .map_err(|e| record_error(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| record_error(e.to_string()))?;
    let bytes = with_sorted_header(&bytes).map_err(record_error)?;
    digitnet_data::atomic::write_atomic(&path, &bytes).map_err(|e| record_error(e.to_string()))
}

/// A SafeTensors file's bytes with the keys of its JSON header in sorted order. burn-store writes
/// the metadata from a `HashMap`, whose order changes from process to process; sorted, the same
/// weights always give the same file, byte for byte. The tensor data is left as it is (its
/// offsets count from the end of the header).
fn with_sorted_header(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let malformed = || "burn-store wrote a malformed SafeTensors header".to_string();
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    let header_end = usize::try_from(u64::from_le_bytes(len_bytes))
        .ok()
        .and_then(|len| len.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(malformed)?;
    // serde_json's maps are ordered by key (its `preserve_order` feature is off).
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..header_end]).map_err(|e| e.to_string())?;
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    // The format pads the header with spaces so that the data starts 8-byte aligned.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - header_end);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[header_end..]);
    Ok(out)
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
/// written by [`save_model`]); another format version, or any missing, extra or mis-shaped
/// tensor, is an error.
pub fn load_weights<B: Backend>(
    config: &TrainingConfig,
    weights: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    let bytes = std::fs::read(weights).map_err(|e| TrainError::Record {
        path: weights.to_path_buf(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            _ => format!("cannot read it ({e})"),
        },
    })?;
    load_weights_from_bytes(config, &bytes, weights, device)
}

/// Checks that `bytes` is a SafeTensors file written by a digitnet that uses this crate's
/// [`FORMAT_VERSION`].
fn check_format_version(bytes: &[u8], name: &Path) -> Result<()> {
    let record_error = |message: String| TrainError::Record {
        path: name.to_path_buf(),
        message,
    };
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| record_error(format!("not a SafeTensors model file ({e})")))?;
    match metadata.metadata().as_ref().and_then(|m| m.get(FORMAT_KEY)) {
        Some(version) if version == FORMAT_VERSION => Ok(()),
        Some(version) => Err(record_error(format!(
            "it was saved in digitnet model format {version}; this digitnet reads format \
             {FORMAT_VERSION}"
        ))),
        None => Err(record_error(format!(
            "a SafeTensors file, but not one saved by digitnet (no {FORMAT_KEY} in its metadata)"
        ))),
    }
}

/// Like [`load_weights`] for SafeTensors bytes held in memory; `name` only labels errors.
pub fn load_weights_from_bytes<B: Backend>(
    config: &TrainingConfig,
    bytes: &[u8],
    name: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    check_format_version(bytes, name)?;
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
