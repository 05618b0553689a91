//! `digitnet predict`: recognise digits in image files (PNG/JPEG, any size, dark-on-light or
//! light-on-dark): one line per image, `<file> <digit> <probability>`.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use digitnet::backend::{BackendJob, run_on};
use digitnet::data::MnistBatcher;
use digitnet::data::preprocess::load_digit;
use digitnet::train::predict;

use crate::backend_arg::BackendArg;
use crate::model_source::ModelSource;

/// Arguments of `digitnet predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Artifact directory of `digitnet train` (default: the shipped weights).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Also print the 10 class probabilities.
    #[arg(long)]
    pub all: bool,
    /// The images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Backend.
    #[command(flatten)]
    pub backend: BackendArg,
}

struct PredictJob<'a> {
    args: &'a PredictArgs,
    source: ModelSource,
    digits: Vec<[u8; 784]>,
}

impl BackendJob for PredictJob<'_> {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let device = &devices[0];
        let (config, model) = self.source.load::<B::InnerBackend>(device)?;
        let kind = config.dataset;
        let batcher = MnistBatcher::for_dataset(&kind.spec());
        let predictions = predict(&model, &self.digits, &batcher, device);
        for (path, p) in self.args.images.iter().zip(&predictions) {
            print!("{} {} {:.4}", path.display(), p.digit, p.confidence());
            if self.args.all {
                let all: Vec<String> = p.probabilities.iter().map(|v| format!("{v:.4}")).collect();
                print!(" [{}]", all.join(" "));
            }
            println!();
        }
        Ok(())
    }
}

/// Preprocesses every image first (so a bad file fails before the model loads), then predicts.
pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let digits = args
        .images
        .iter()
        .map(|path| load_digit(path))
        .collect::<Result<Vec<_>, _>>()?;
    let source = ModelSource::new(args.artifacts.as_deref());
    run_on(
        args.backend.kind()?,
        PredictJob {
            args,
            source,
            digits,
        },
    )?
}
