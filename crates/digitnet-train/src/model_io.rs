//! Saving and loading trained models as SafeTensors (`model.safetensors`, full precision,
//! written atomically, readable by other tools). Any Burn module saves with [`save_module`] and
//! loads back into a module of the same architecture with [`load_module`], which checks every
//! tensor's name and shape, so a file that does not fit is a clear error instead of a silently
//! wrong model. [`load_model`] rebuilds a digitnet model from an artifact directory.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::prelude::Backend;
use burn_store::{ModuleSnapshot, SafetensorsStore, SafetensorsStoreError};
use digitnet_model::DigitModel;

use crate::artifacts::{ArtifactDir, names};
use crate::config::TrainingConfig;
use crate::error::{Result, TrainError};

/// Version of digitnet's saved-model layout, stored in the SafeTensors metadata.
pub const FORMAT_VERSION: &str = "1";
const FORMAT_KEY: &str = "digitnet.format_version";

/// Writes `module`'s weights to `path` as SafeTensors, atomically; the same weights always give
/// the same bytes.
pub fn save_module<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<()> {
    let record_error = |message: String| TrainError::Record {
        path: path.to_path_buf(),
        message,
    };
    let mut store = SafetensorsStore::from_bytes(None).metadata(FORMAT_KEY, FORMAT_VERSION);
    module
        .save_into(&mut store)
        .map_err(|e| record_error(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| record_error(e.to_string()))?;
    let bytes = with_sorted_header(&bytes).map_err(record_error)?;
    digitnet_data::atomic::write_atomic(path, &bytes).map_err(|e| record_error(e.to_string()))
}

/// Loads the weights that [`save_module`] wrote to `path` into `module`, a freshly built module
/// of the same architecture. Another format version, or any missing, extra or mis-shaped
/// tensor, is an error that names the file and the tensors.
pub fn load_module<B: Backend, M: Module<B>>(module: M, path: &Path) -> Result<M> {
    let bytes = read_weights(path)?;
    load_module_from_bytes(module, &bytes, path, "the module it is loaded into")
}

/// Writes `model` into `dir` as `model.safetensors`.
pub fn save_model<B: Backend, M: Module<B>>(model: &M, dir: &ArtifactDir) -> Result<()> {
    save_module(model, &dir.file(names::SAFETENSORS))
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

/// Writes `config` as `config.json` into an artifact directory, atomically.
pub fn save_config(config: &TrainingConfig, dir: &ArtifactDir) -> Result<()> {
    let path = dir.file(names::CONFIG);
    digitnet_data::atomic::write_atomic(&path, config.to_string().as_bytes()).map_err(|e| {
        TrainError::Config {
            path: path.clone(),
            message: e.to_string(),
        }
    })
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

/// Loads the digitnet model described by `config` with the weights of `weights` (a SafeTensors
/// file written by [`save_model`]); see [`load_module`] for the checks.
pub fn load_weights<B: Backend>(
    config: &TrainingConfig,
    weights: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    let bytes = read_weights(weights)?;
    load_weights_from_bytes(config, &bytes, weights, device)
}

/// Like [`load_weights`] for SafeTensors bytes held in memory; `name` only labels errors.
pub fn load_weights_from_bytes<B: Backend>(
    config: &TrainingConfig,
    bytes: &[u8],
    name: &Path,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    let model_config = config.digit_model()?;
    let model = model_config.init::<B>(device)?;
    let target = format!("the {} model of its config.json", model_config.kind_name());
    load_module_from_bytes(model, bytes, name, &target)
}

fn read_weights(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| TrainError::Record {
        path: path.to_path_buf(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            _ => format!("cannot read it ({e})"),
        },
    })
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

/// Loads `bytes` into `module` with strict name and shape checks; `name` labels errors and
/// `target` says what the weights had to fit.
fn load_module_from_bytes<B: Backend, M: Module<B>>(
    mut module: M,
    bytes: &[u8],
    name: &Path,
    target: &str,
) -> Result<M> {
    check_format_version(bytes, name)?;
    let record_error = |message: String| TrainError::Record {
        path: name.to_path_buf(),
        message,
    };
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()))
        .validate(true)
        .allow_partial(false);
    let wanted = tensor_shapes_of(&module);
    let mismatch = |details: String| {
        let problems = compare_tensors(&wanted, bytes);
        let details = match problems.is_empty() {
            true => shorten(&details, 400),
            false => problems.join("; "),
        };
        record_error(format!("it does not match {target} ({details})"))
    };
    let result = module.load_from(&mut store).map_err(|e| match e {
        SafetensorsStoreError::ValidationFailed(details)
        | SafetensorsStoreError::TensorNotFound(details) => mismatch(details),
        other => record_error(format!("not a readable SafeTensors model ({other})")),
    })?;
    if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(mismatch(format!("{result}")));
    }
    Ok(module)
}

/// Every tensor `module` holds: its path (as the SafeTensors file names it) and shape.
fn tensor_shapes_of<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    module
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.full_path(), t.shape.to_vec()))
        .collect()
}

/// What differs between the tensors a module wants and those in a SafeTensors file: shapes
/// that disagree, tensors missing from the file, tensors the module has no place for (at most
/// five, in that order).
fn compare_tensors(wanted: &[(String, Vec<usize>)], bytes: &[u8]) -> Vec<String> {
    let Ok(file) = safetensors::SafeTensors::deserialize(bytes) else {
        return Vec::new();
    };
    let in_file = |name: &str| file.tensor(name).ok().map(|t| t.shape().to_vec());
    let mut problems: Vec<String> = wanted
        .iter()
        .filter_map(|(name, shape)| match in_file(name) {
            Some(found) if &found == shape => None,
            Some(found) => Some(format!(
                "{name} is {found:?} in the file, the module's is {shape:?}"
            )),
            None => Some(format!("the file has no {name} {shape:?}")),
        })
        .collect();
    let mut extra: Vec<String> = file
        .names()
        .into_iter()
        .filter(|name| !wanted.iter().any(|(w, _)| w == *name))
        .map(|name| format!("the module has no place for {name}"))
        .collect();
    extra.sort();
    problems.extend(extra);
    problems.truncate(5);
    problems
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
