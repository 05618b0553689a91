//! `digitnet train`: train a CNN or MLP, print per-epoch progress, evaluate on the test set,
//! draw the curves and the confusion matrix.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use digitnet::backend::{BackendJob, run_on_devices};
use digitnet::data::{AugmentConfig, Mnist, Split};
use digitnet::model::{ModelKind, Preset};
use digitnet::train::artifacts::names;
use digitnet::train::{
    ArtifactDir, LrSchedule, OptimizerKind, ProgressMode, TrainOptions, TrainingConfig, model_io,
    train_data_parallel,
};

use crate::augment_arg;
use crate::backend_arg::BackendArg;
use crate::data_args::DataArgs;
use crate::report;

/// Arguments of `digitnet train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model family (its default preset: cnn-bn or mlp-a).
    #[arg(long, value_enum, default_value = "cnn")]
    pub model: ModelArg,
    /// Architecture preset: cnn-bn, cnn-a, cnn-b, mlp-a, mlp-b (overrides --model).
    #[arg(long, value_parser = parse_preset)]
    pub preset: Option<Preset>,
    /// Passes over the training set.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimiser.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Learning-rate schedule (default: cosine for CNNs, constant for MLPs).
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Seed for initialisation and shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training images held out for validation (default 5,000; to hold none out, validate on
    /// the test set with --validate-on-test).
    #[arg(long)]
    pub validation_size: Option<usize>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Stop when the validation loss has not improved for N epochs.
    #[arg(long, value_name = "N")]
    pub early_stopping: Option<usize>,
    /// Stop after the first epoch whose validation accuracy reaches this fraction (e.g. 0.99).
    #[arg(long, value_name = "FRACTION")]
    pub target_accuracy: Option<f64>,
    /// Evaluate the test set after every epoch instead of a hold-out, and train on all training
    /// images (as PyTorch's MNIST example does).
    #[arg(long, conflicts_with = "validation_size")]
    pub validate_on_test: bool,
    #[arg(long, value_name = "SPEC", num_args = 0..=1, help = augment_arg::HELP,
          default_missing_value = augment_arg::DEFAULTS, value_parser = augment_arg::parse)]
    pub augment: Option<AugmentConfig>,
    /// Data-loading threads.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Train data-parallel on the first N devices of the backend (GPUs; on a CPU backend, N
    /// workers sharing the cores). Each optimiser step then sees N batches.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: u16,
    /// Artifact directory (config, checkpoints, metrics, model, plots).
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Continue from the last checkpoint in --artifacts (with its saved config; --epochs may
    /// extend the run).
    #[arg(long)]
    pub resume: bool,
    /// Progress display.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
    /// Where the data comes from.
    #[command(flatten)]
    pub data: DataArgs,
    /// Backend.
    #[command(flatten)]
    pub backend: BackendArg,
}

/// `--model`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// Convolutional network.
    Cnn,
    /// Multi-layer perceptron.
    Mlp,
}

/// `--optimizer`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    /// Adam.
    Adam,
    /// AdamW.
    Adamw,
    /// SGD with momentum 0.9.
    Sgd,
}

/// `--schedule`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScheduleArg {
    /// Constant learning rate.
    Constant,
    /// Cosine decay to 1% of the peak.
    Cosine,
    /// Halve every 3 epochs.
    Step,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    /// Bar on a terminal, lines otherwise.
    Auto,
    /// Live bar.
    Bar,
    /// A plain line every 10 s.
    Lines,
    /// Epoch summaries only.
    Quiet,
    /// Burn's full-screen TUI (build with `--features tui`; it keeps a core busy).
    Tui,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
        .map_err(|e: digitnet::model::ModelError| e.to_string())
}

impl TrainArgs {
    /// True when resuming a run that saved its config: the config then comes from there.
    fn uses_saved_config(&self) -> bool {
        self.resume && self.artifacts.join(names::CONFIG).is_file()
    }

    /// The training configuration: the saved one when resuming, else preset + flags.
    fn config(&self) -> anyhow::Result<TrainingConfig> {
        if self.uses_saved_config() {
            let saved =
                model_io::load_config(&ArtifactDir::new(&self.artifacts)).context("--resume")?;
            return Ok(match self.epochs {
                Some(epochs) => saved.with_epochs(epochs),
                None => saved,
            });
        }
        let preset = self.preset.unwrap_or(Preset::default_for(match self.model {
            ModelArg::Cnn => ModelKind::Cnn,
            ModelArg::Mlp => ModelKind::Mlp,
        }));
        let mut config = TrainingConfig::for_preset(preset).with_dataset(self.data.dataset);
        if let Some(v) = self.epochs {
            config.epochs = v;
        }
        if let Some(v) = self.batch_size {
            config.batch_size = v;
        }
        if let Some(v) = self.lr {
            config.optimizer.learning_rate = v;
        }
        if let Some(v) = self.optimizer {
            config.optimizer.kind = match v {
                OptimizerArg::Adam => OptimizerKind::Adam,
                OptimizerArg::Adamw => OptimizerKind::AdamW,
                OptimizerArg::Sgd => OptimizerKind::Sgd,
            };
        }
        if let Some(v) = self.schedule {
            config.lr_schedule = match v {
                ScheduleArg::Constant => LrSchedule::Constant,
                ScheduleArg::Cosine => LrSchedule::Cosine {
                    final_fraction: 0.01,
                },
                ScheduleArg::Step => LrSchedule::Step {
                    every_epochs: 3,
                    gamma: 0.5,
                },
            };
        }
        if let Some(v) = self.weight_decay {
            config.optimizer.weight_decay = v;
        }
        if let Some(v) = self.seed {
            config.seed = v;
        }
        if let Some(v) = self.validation_size {
            config.validation_size = Some(v);
        }
        if let Some(v) = self.workers {
            config.workers = v;
        }
        config.limit_train = self.limit_train;
        config.early_stopping_patience = self.early_stopping;
        config.target_accuracy = self.target_accuracy;
        config.augment = self.augment.clone();
        Ok(config)
    }
}

struct TrainJob<'a> {
    args: &'a TrainArgs,
    config: TrainingConfig,
    data: Mnist,
}

impl BackendJob for TrainJob<'_> {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let mut options = TrainOptions::new(&self.args.artifacts);
        options.resume = self.args.resume;
        options.validate_on_test = self.args.validate_on_test;
        options.progress = match self.args.progress {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Bar => ProgressMode::Bar,
            ProgressArg::Lines => ProgressMode::Lines,
            ProgressArg::Quiet => ProgressMode::Quiet,
            ProgressArg::Tui => ProgressMode::Tui,
        };
        let model = self.config.digit_model()?.init::<B>(&devices[0])?;
        let outcome = train_data_parallel(model, &self.config, &self.data, &options, &devices)?;
        let trained = outcome
            .history
            .iter()
            .filter(|r| r.split == Split::Train)
            .count();
        eprintln!(
            "trained {} epoch(s) in {:.0} s; model saved in {}",
            trained.saturating_sub(outcome.resumed_from),
            outcome.seconds,
            self.args.artifacts.display()
        );
        report::evaluate_and_report::<B::InnerBackend>(
            &outcome.model,
            &self.data,
            Split::Test,
            Some(&self.args.artifacts),
            None,
            &devices[0],
        )
    }
}

/// Trains, evaluates on the test split, writes the plots, prints `test accuracy: 0.XXXX`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if args.resume && ArtifactDir::new(&args.artifacts).resume_point()?.is_none() {
        eprintln!(
            "nothing to resume in {} (no checkpoint yet): starting afresh",
            args.artifacts.display()
        );
    }
    let config = args.config()?;
    let data = args.data.load()?;
    // Without --validation-size (or a saved config), the dataset's default hold-out: 5,000
    // images, or a tenth of a small training set.
    let data = match config.validation_size {
        Some(size) => data.with_validation_size(size)?,
        None => data,
    };
    let backend = args.backend.kind()?;
    eprintln!(
        "training {} ({} parameters) on {} with {} ({} device(s)): {} epochs, batch {}, lr {}",
        config
            .preset
            .as_deref()
            .unwrap_or(config.digit_model()?.kind_name()),
        config.digit_model()?.num_params()?,
        data.spec().name,
        backend,
        args.devices,
        config.epochs,
        config.batch_size,
        config.optimizer.learning_rate
    );
    run_on_devices(
        backend,
        usize::from(args.devices),
        TrainJob { args, config, data },
    )?
}
