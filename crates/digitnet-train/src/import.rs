//! PyTorch in: a `state_dict` file saved by `torch.save(model.state_dict(), ...)` (zip, tar or
//! legacy pickle format, all read by burn-store's `PytorchStore`) loaded into a digitnet model.
//!
//! Tutorials name their layers in many ways (`conv1.weight`, `net.0.weight`, `features.3.bias`,
//! `1.weight`), so the names are not matched one by one. The file's tensors are grouped by layer
//! (the name up to its last dot); each layer is a convolution (a 4-D `weight`), a batch norm (it
//! has `running_mean`) or a linear layer (a 2-D `weight`); and within each kind the file's layers,
//! in natural order (`conv2` before `conv10`, `net.3` before `net.10`), take the model's layers
//! in forward order, the batch norms' `weight` and `bias` becoming Burn's `gamma` and `beta`;
//! burn-store's PyTorch adapter transposes the linear weights. Every tensor's shape is checked, and a
//! missing, extra or mis-shaped tensor is an error naming the file and the tensor. Names that do
//! not group this way are renamed first with regex pairs ([`PytorchImport::renames`], as
//! burn-store's `KeyRemapper` takes them).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::Backend;
use burn_store::{
    ApplyError, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    TensorSnapshot,
};
use digitnet_model::{DigitModel, ModelConfig};

use crate::artifacts::ArtifactDir;
use crate::config::TrainingConfig;
use crate::error::{Result, TrainError};
use crate::model_io;

/// How to read a PyTorch file: see the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct PytorchImport {
    /// Regex pairs `(pattern, replacement)` applied, in order, to every tensor name in the file
    /// before the layers are matched (e.g. `("^backbone\\.", "")`).
    pub renames: Vec<(String, String)>,
    /// The key of the state dict inside a checkpoint that holds more than the weights (e.g.
    /// `"model_state_dict"`); `None` for a plain state dict.
    pub top_level_key: Option<String>,
}

/// Loads the PyTorch weights in `path` into a new model of architecture `config`.
pub fn import_pytorch<B: Backend>(
    path: &Path,
    config: &ModelConfig,
    options: &PytorchImport,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    let fail = |message: String| TrainError::Import {
        path: path.to_path_buf(),
        message,
    };
    let mut store = open_store(path, options).map_err(&fail)?;
    let tensors = store.get_all_snapshots().map_err(|e| fail(e.to_string()))?;
    let (snapshots, sources) = rename_for(config, tensors).map_err(&fail)?;
    let mut model = config.init::<B>(device)?;
    let result = model.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    let mut problems: Vec<String> = result
        .errors
        .iter()
        .map(|e| describe_error(e, &sources))
        .collect();
    problems.extend(result.missing.iter().map(|(target, _)| {
        let target = without_variant(target);
        format!("the file has no tensor for the model's {target}")
    }));
    problems.extend(result.unused.iter().map(|target| {
        let source = sources.get(target).map_or(target.as_str(), String::as_str);
        format!("{source} has no place in the model")
    }));
    match problems.is_empty() {
        true => Ok(model),
        false => Err(fail(problems.join("; "))),
    }
}

/// [`import_pytorch`] into an artifact directory that `eval`, `predict` and `serve` read:
/// `config.json` (`config`, which must describe a digitnet model) and `model.safetensors`.
/// Nothing is written unless the whole file loads; an earlier run's files in `dir` are removed.
pub fn import_pytorch_artifacts<B: Backend>(
    path: &Path,
    config: &TrainingConfig,
    options: &PytorchImport,
    dir: &ArtifactDir,
    device: &B::Device,
) -> Result<DigitModel<B>> {
    config.validate()?;
    let model = import_pytorch::<B>(path, config.digit_model()?, options, device)?;
    dir.create()?;
    dir.remove_stale_temporaries()?;
    dir.clear_previous_run()?;
    model_io::save_config(config, dir)?;
    model_io::save_model(&model, dir)?;
    Ok(model)
}

fn open_store(path: &Path, options: &PytorchImport) -> std::result::Result<PytorchStore, String> {
    if !path.is_file() {
        return Err("no such file".into());
    }
    let renames = KeyRemapper::from_patterns(options.renames.clone())
        .map_err(|e| format!("bad --rename pattern: {e}"))?;
    let mut store = PytorchStore::from_file(path)
        .remap(renames)
        .map_indices_contiguous(false);
    if let Some(key) = &options.top_level_key {
        store = store.with_top_level_key(key.clone());
    }
    Ok(store)
}

/// What a layer of the file or of the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LayerKind {
    Conv,
    Norm,
    Linear,
}

impl LayerKind {
    fn name(self) -> &'static str {
        match self {
            LayerKind::Conv => "convolution",
            LayerKind::Norm => "batch-norm",
            LayerKind::Linear => "linear",
        }
    }
}

/// The model's layers in forward order, as paths below the model (without its enum variant).
fn model_layers(config: &ModelConfig) -> Vec<(LayerKind, String)> {
    let mut layers = Vec::new();
    let linears = match config {
        ModelConfig::Cnn(cnn) => {
            for (i, block) in cnn.blocks.iter().enumerate() {
                layers.push((LayerKind::Conv, format!("blocks.{i}.conv")));
                if block.batch_norm {
                    layers.push((LayerKind::Norm, format!("blocks.{i}.norm")));
                }
            }
            cnn.hidden.len() + 1
        }
        ModelConfig::Mlp(mlp) => mlp.hidden.len() + 1,
    };
    layers.extend((0..linears).map(|j| (LayerKind::Linear, format!("linears.{j}"))));
    layers
}

/// The file's tensors grouped by layer (name up to the last dot), with each layer's kind.
fn file_layers(
    tensors: &BTreeMap<String, TensorSnapshot>,
) -> std::result::Result<Vec<(LayerKind, String)>, String> {
    let mut groups: BTreeMap<&str, Vec<(&str, &TensorSnapshot)>> = BTreeMap::new();
    for (name, tensor) in tensors {
        let (layer, tensor_name) = name.rsplit_once('.').unwrap_or(("", name));
        if tensor_name != "num_batches_tracked" {
            groups.entry(layer).or_default().push((tensor_name, tensor));
        }
    }
    let mut layers = Vec::new();
    for (layer, tensors) in groups {
        let has = |n: &str| tensors.iter().find(|(t, _)| *t == n).map(|(_, s)| s);
        let kind = match (
            has("running_mean"),
            has("weight").map(|w| w.shape.num_dims()),
        ) {
            (Some(_), _) => LayerKind::Norm,
            (None, Some(4)) => LayerKind::Conv,
            (None, Some(2)) => LayerKind::Linear,
            _ => {
                let list: Vec<String> = tensors
                    .iter()
                    .map(|(t, s)| format!("{} {:?}", full_name(layer, t), s.shape.as_slice()))
                    .collect();
                return Err(format!(
                    "layer `{layer}` ({}) is not a convolution, batch norm or linear layer",
                    list.join(", ")
                ));
            }
        };
        layers.push((kind, layer.to_string()));
    }
    layers.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| natural_cmp(&a.1, &b.1)));
    Ok(layers)
}

fn full_name(layer: &str, tensor: &str) -> String {
    match layer {
        "" => tensor.to_string(),
        _ => format!("{layer}.{tensor}"),
    }
}

/// The file's tensors renamed to the model's paths, and for each new path the file's name.
type Renamed = (Vec<TensorSnapshot>, BTreeMap<String, String>);

fn rename_for(
    config: &ModelConfig,
    tensors: &BTreeMap<String, TensorSnapshot>,
) -> std::result::Result<Renamed, String> {
    let file = file_layers(tensors)?;
    let model = model_layers(config);
    let count =
        |layers: &[(LayerKind, String)], kind| layers.iter().filter(|l| l.0 == kind).count();
    let kinds = [LayerKind::Conv, LayerKind::Norm, LayerKind::Linear];
    if kinds.iter().any(|&k| count(&file, k) != count(&model, k)) {
        let describe = |layers: &[(LayerKind, String)], names: bool| {
            let parts: Vec<String> = kinds
                .iter()
                .map(|&k| {
                    let of_kind: Vec<&str> = layers
                        .iter()
                        .filter(|l| l.0 == k)
                        .map(|l| l.1.as_str())
                        .collect();
                    let list = match names && !of_kind.is_empty() {
                        true => format!(" ({})", of_kind.join(", ")),
                        false => String::new(),
                    };
                    format!("{} {}{list}", of_kind.len(), k.name())
                })
                .collect();
            parts.join(", ")
        };
        return Err(format!(
            "another architecture: the file has {} layers, the model has {} layers; \
             rename the file's tensors with --rename if they are the same layers",
            describe(&file, true),
            describe(&model, false)
        ));
    }
    let mut targets: BTreeMap<&str, (LayerKind, &str)> = BTreeMap::new();
    for kind in kinds {
        let ours = model.iter().filter(|l| l.0 == kind);
        let theirs = file.iter().filter(|l| l.0 == kind);
        for (ours, theirs) in ours.zip(theirs) {
            targets.insert(theirs.1.as_str(), (kind, ours.1.as_str()));
        }
    }
    let mut snapshots = Vec::new();
    let mut sources = BTreeMap::new();
    for (name, tensor) in tensors {
        let (layer, tensor_name) = name.rsplit_once('.').unwrap_or(("", name));
        if tensor_name == "num_batches_tracked" {
            continue;
        }
        let (kind, layer) = targets[layer];
        // Burn's names for a batch norm's scale and shift. (burn-store's adapter would find
        // them too, but would then also report the PyTorch names as unused.)
        let tensor_name = match (kind, tensor_name) {
            (LayerKind::Norm, "weight") => "gamma",
            (LayerKind::Norm, "bias") => "beta",
            _ => tensor_name,
        };
        let target = format!("{layer}.{tensor_name}");
        let mut snapshot = tensor.clone();
        snapshot.path_stack = Some(target.split('.').map(str::to_string).collect());
        sources.insert(target, name.clone());
        snapshots.push(snapshot);
    }
    Ok((snapshots, sources))
}

/// `Cnn.blocks.0.conv.bias` as `blocks.0.conv.bias`.
fn without_variant(path: &str) -> &str {
    path.strip_prefix("Cnn.")
        .or_else(|| path.strip_prefix("Mlp."))
        .unwrap_or(path)
}

fn describe_error(error: &ApplyError, sources: &BTreeMap<String, String>) -> String {
    match error {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => {
            let target = without_variant(path);
            let source = sources.get(target).map_or(target, String::as_str);
            // Linear weights were transposed to Burn's [in, out]: PyTorch's order is [out, in].
            let torch_order = |dims: &[usize]| match target.contains("linears.") && dims.len() == 2
            {
                true => vec![dims[1], dims[0]],
                false => dims.to_vec(),
            };
            format!(
                "{source} is {:?}, the model's {target} needs {:?}",
                torch_order(found.as_slice()),
                torch_order(expected.as_slice())
            )
        }
        other => other.to_string(),
    }
}

/// Orders names as people number layers: digit runs compare as numbers (`conv2` < `conv10`).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    natural_key(a).cmp(&natural_key(b))
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Number(u64),
    Text(String),
}

fn natural_key(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let is_digit = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != is_digit)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        tokens.push(match run.parse() {
            Ok(n) if is_digit => Token::Number(n),
            _ => Token::Text(run.to_string()),
        });
        rest = tail;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_numbers_sort_as_numbers() {
        let mut names = vec!["net.10", "net.3", "net.0", "conv10", "conv2", "fc1"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["conv2", "conv10", "fc1", "net.0", "net.3", "net.10"]
        );
    }
}
