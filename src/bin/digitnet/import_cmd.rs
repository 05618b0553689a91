//! `digitnet import`: a PyTorch `state_dict` file of a preset's architecture into an artifact
//! directory that `eval`, `predict` and `serve` use.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use digitnet::backend::{BackendJob, run_on};
use digitnet::model::Preset;
use digitnet::train::{ArtifactDir, PytorchImport, TrainingConfig, import_pytorch_artifacts};

use crate::backend_arg::BackendArg;

/// Arguments of `digitnet import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The PyTorch file (`torch.save(model.state_dict(), path)`; zip or legacy format).
    pub file: PathBuf,
    /// The architecture the file holds: cnn-bn, cnn-a, cnn-b, mlp-a, mlp-b.
    #[arg(long, value_parser = parse_preset)]
    pub preset: Preset,
    /// Artifact directory to write (config.json, model.safetensors).
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Rename the file's tensors first, `REGEX=REPLACEMENT` (repeatable, applied in order).
    #[arg(long, value_name = "REGEX=REPLACEMENT", value_parser = parse_rename)]
    pub rename: Vec<(String, String)>,
    /// The key of the state dict in a checkpoint that holds more (e.g. `model_state_dict`).
    #[arg(long)]
    pub key: Option<String>,
    /// Backend that loads the weights.
    #[command(flatten)]
    pub backend: BackendArg,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
        .map_err(|e: digitnet::model::ModelError| e.to_string())
}

fn parse_rename(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .ok_or_else(|| format!("`{s}` is not REGEX=REPLACEMENT"))
}

struct ImportJob<'a> {
    args: &'a ImportArgs,
}

impl BackendJob for ImportJob<'_> {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let args = self.args;
        let options = PytorchImport {
            renames: args.rename.clone(),
            top_level_key: args.key.clone(),
        };
        let config = TrainingConfig::for_preset(args.preset);
        let model = import_pytorch_artifacts::<B::InnerBackend>(
            &args.file,
            &config,
            &options,
            &ArtifactDir::new(&args.artifacts),
            &devices[0],
        )?;
        println!(
            "imported {} as {} ({} parameters) into {}",
            args.file.display(),
            args.preset,
            model.num_params(),
            args.artifacts.display()
        );
        Ok(())
    }
}

/// Imports the file, or fails with a line naming the file and the tensor, writing nothing.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    run_on(args.backend.kind()?, ImportJob { args })?
}
