//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use digitnet::data::Split;

use crate::data_args::DataArgs;

/// Handwritten-digit recognition in pure Rust (Burn).
#[derive(Debug, Parser)]
#[command(name = "digitnet", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Split sizes, label histogram and checksum status of a dataset.
    Info(InfoArgs),
    /// Draw a grid of samples with their labels to a PNG.
    Show(ShowArgs),
    /// Download a dataset's files (verified) into the data or cache directory.
    Download(DownloadArgs),
    /// Train a CNN or MLP; ends with `test accuracy: 0.XXXX`.
    Train(crate::train_cmd::TrainArgs),
    /// Evaluate a trained model; ends with `<split> accuracy: 0.XXXX`.
    Eval(crate::eval_cmd::EvalArgs),
    /// Recognise digits in PNG/JPEG files: `<file> <digit> <probability>` per image.
    Predict(crate::predict_cmd::PredictArgs),
    /// Import a PyTorch `state_dict` file of a preset's architecture into an artifact directory.
    Import(crate::import_cmd::ImportArgs),
    /// Write a trained model as an ONNX file (opset 17) for other runtimes.
    Export(crate::export_cmd::ExportArgs),
    /// List the backends compiled into this build and their devices.
    Backends,
    /// Serve a page to draw digits and watch the model read them, plus a JSON API.
    #[cfg(feature = "serve")]
    Serve(crate::serve::ServeArgs),
}

/// Arguments of `digitnet info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Where the data comes from.
    #[command(flatten)]
    pub data: DataArgs,
}

/// Arguments of `digitnet show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Where the data comes from.
    #[command(flatten)]
    pub data: DataArgs,
    /// Which split to draw from.
    #[arg(long, default_value = "train", value_parser = parse_split)]
    pub split: Split,
    /// How many samples to draw.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub count: u32,
    /// Index of the first sample.
    #[arg(long, default_value_t = 0)]
    pub start: usize,
    /// Samples per row.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub columns: u32,
    /// Enlargement factor of each 28x28 image.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub scale: u32,
    /// Draw the samples as `digitnet train --augment SPEC` distorts them in its first epoch
    /// (same SPEC syntax; `--augment` alone for the defaults).
    #[arg(long, value_name = "SPEC", num_args = 0..=1,
          default_missing_value = crate::augment_arg::DEFAULTS,
          value_parser = crate::augment_arg::parse)]
    pub augment: Option<digitnet::data::AugmentConfig>,
    /// The training seed whose distortions `--augment` draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `digitnet download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Where the data goes.
    #[command(flatten)]
    pub data: DataArgs,
}

fn parse_split(s: &str) -> Result<Split, String> {
    s.parse()
}
