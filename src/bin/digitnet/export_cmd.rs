//! `digitnet export`: a trained model (an artifact directory, or the shipped default CNN) as a
//! standard ONNX file for other runtimes.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use digitnet::backend::{BackendJob, run_on};

use crate::backend_arg::BackendArg;
use crate::model_source::ModelSource;

/// Arguments of `digitnet export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The ONNX file to write (opset 17; input `images` [batch, 1, 28, 28], normalised; output
    /// `logits` [batch, 10]).
    #[arg(long)]
    pub onnx: PathBuf,
    /// Artifact directory of `digitnet train` or `digitnet import` (default: the shipped
    /// weights).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Backend that reads the weights.
    #[command(flatten)]
    pub backend: BackendArg,
}

struct ExportJob<'a> {
    args: &'a ExportArgs,
    source: ModelSource,
}

impl BackendJob for ExportJob<'_> {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let (config, model) = self.source.load::<B::InnerBackend>(&devices[0])?;
        let bytes = model.to_onnx(config.digit_model()?)?;
        let path = &self.args.onnx;
        digitnet::data::atomic::write_atomic(path, &bytes)
            .with_context(|| format!("{}: write failed", path.display()))?;
        println!(
            "wrote {} ({} bytes): {} as ONNX (opset {})",
            path.display(),
            bytes.len(),
            self.source,
            digitnet::model::onnx::OPSET
        );
        Ok(())
    }
}

/// Loads the model and writes it as ONNX, atomically.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let source = ModelSource::new(args.artifacts.as_deref());
    run_on(args.backend.kind()?, ExportJob { args, source })?
}
