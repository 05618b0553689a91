//! `digitnet eval`: accuracy, loss, per-class precision/recall of a trained model on a split.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use digitnet::backend::{BackendJob, run_on};
use digitnet::data::{Mnist, Split};

use crate::backend_arg::BackendArg;
use crate::data_args::DataArgs;
use crate::model_source::ModelSource;
use crate::report;

/// Arguments of `digitnet eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Artifact directory of `digitnet train` (default: the shipped weights). The confusion
    /// matrix and the misclassified images are drawn into it.
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Which split to evaluate.
    #[arg(long, default_value = "test", value_parser = parse_split)]
    pub split: Split,
    /// Also write every image's logits to this CSV file (`index,label,logit_0,...,logit_9`).
    #[arg(long, value_name = "FILE")]
    pub logits: Option<PathBuf>,
    /// Where the data comes from.
    #[command(flatten)]
    pub data: DataArgs,
    /// Backend.
    #[command(flatten)]
    pub backend: BackendArg,
}

fn parse_split(s: &str) -> Result<Split, String> {
    s.parse()
}

struct EvalJob<'a> {
    args: &'a EvalArgs,
    source: ModelSource,
    data: Mnist,
}

impl BackendJob for EvalJob<'_> {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let device = &devices[0];
        let (_, model) = self.source.load::<B::InnerBackend>(device)?;
        report::evaluate_and_report::<B::InnerBackend>(
            &model,
            &self.data,
            self.args.split,
            self.args.artifacts.as_deref(),
            self.args.logits.as_deref(),
            device,
        )
    }
}

/// Loads the model and the data, evaluates, prints `<split> accuracy: 0.XXXX`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let source = ModelSource::new(args.artifacts.as_deref());
    let config = source.config()?;
    let data = args.data.load()?;
    // The validation split is carved out of the training images as in training; the test split
    // needs no carving (and a small custom training set may be smaller than the default carve).
    let data = match args.split {
        Split::Test => data,
        Split::Train | Split::Valid => match config.validation_size {
            Some(size) => data.with_validation_size(size)?,
            None => data,
        },
    };
    eprintln!(
        "evaluating {} on the {} split of {}",
        source,
        args.split,
        data.spec().name
    );
    run_on(args.backend.kind()?, EvalJob { args, source, data })?
}
