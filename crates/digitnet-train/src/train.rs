//! `train::<B>`: one generic function that trains either kind of model on any autodiff backend
//! with burn-train's `SupervisedTraining` + `Learner`, checkpointing every epoch (full precision)
//! and able to resume from the last checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::PartialDataset;
use burn::module::{AutodiffModule, Module};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::store::{Aggregate, Direction, Split as BurnSplit};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{
    ExecutionStrategy, Learner, MetricEarlyStoppingStrategy, MultiDeviceOptim, StoppingCondition,
    SupervisedTraining,
};
use digitnet_data::{Mnist, MnistBatch, MnistBatcher, MnistItem};
use digitnet_model::DigitModel;

use crate::artifacts::{ArtifactDir, names};
use crate::classifier::Classifier;
use crate::config::{OptimizerKind, TrainingConfig};
use crate::error::{Result, TrainError};
use crate::history::{EpochCallback, EpochHistory, EpochRecord, read_metrics_csv};
use crate::model_io::{self, ModelRecorder};
use crate::progress::{Console, ProgressMode, ProgressRenderer, format_duration};
use crate::schedule::Scheduler;

/// How to run a training (as opposed to what to train, which is the [`TrainingConfig`]).
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Where config, checkpoints, metrics, model and plots go.
    pub artifact_dir: PathBuf,
    /// Continue from the last complete checkpoint instead of starting over; a run interrupted
    /// before its first checkpoint starts afresh (see [`ArtifactDir::resume_point`]).
    pub resume: bool,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// At most one plain progress line per this interval (when not a terminal).
    pub line_interval: Duration,
}

impl TrainOptions {
    /// Defaults: no resume, automatic progress display, a plain line every 10 s.
    pub fn new(artifact_dir: impl Into<PathBuf>) -> Self {
        Self {
            artifact_dir: artifact_dir.into(),
            resume: false,
            progress: ProgressMode::Auto,
            line_interval: Duration::from_secs(10),
        }
    }
}

/// What a training run produced.
#[derive(Debug)]
pub struct TrainOutcome<B: burn::prelude::Backend> {
    /// The trained network (inference backend).
    pub model: DigitModel<B>,
    /// Per-epoch metrics, as in `metrics.csv` (including epochs of earlier runs when resumed).
    pub history: Vec<EpochRecord>,
    /// The epoch the run started from (0 for a fresh run).
    pub resumed_from: usize,
    /// Wall time of this run.
    pub seconds: f64,
}

/// Trains `config`'s model on `data` (whose validation split must already be carved) on one
/// device, writing everything to `options.artifact_dir`.
pub fn train<B: AutodiffBackend>(
    config: &TrainingConfig,
    data: &Mnist,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<TrainOutcome<B::InnerBackend>> {
    train_data_parallel::<B>(config, data, options, std::slice::from_ref(device))
}

/// Like [`train`], data-parallel over several devices (burn-train's multi-device strategy): each
/// step, every device takes its own batch and computes gradients on its copy of the model; the
/// gradients are summed on the first device, which takes the optimiser step. One step thus sees
/// `devices.len()` batches, and the learning-rate schedule counts steps, not batches. With one
/// device this is [`train`].
pub fn train_data_parallel<B: AutodiffBackend>(
    config: &TrainingConfig,
    data: &Mnist,
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<TrainOutcome<B::InnerBackend>> {
    config.validate()?;
    let Some(device) = devices.first() else {
        return Err(TrainError::InvalidSetting(
            "training needs at least one device".into(),
        ));
    };
    let started = Instant::now();
    let artifacts = ArtifactDir::new(&options.artifact_dir);
    artifacts.create()?;
    artifacts.remove_stale_temporaries()?;
    let resume_from = if options.resume {
        artifacts.resume_point()?
    } else {
        None
    };
    match resume_from {
        Some(_) => {
            let saved = model_io::load_config(&artifacts)?;
            if saved.model != config.model {
                return Err(TrainError::NothingToResume {
                    dir: artifacts.root().to_path_buf(),
                    reason: "its config.json describes another model than the one asked for".into(),
                });
            }
        }
        None => artifacts.clear_previous_run()?,
    }
    let config_path = artifacts.file(names::CONFIG);
    let config_json = config.to_string();
    digitnet_data::atomic::write_atomic(&config_path, config_json.as_bytes()).map_err(|e| {
        TrainError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        }
    })?;

    B::seed(device, config.seed);
    let batcher = MnistBatcher::for_dataset(data.spec());
    let train_split = data.train();
    let train_len = config
        .limit_train
        .map_or(train_split.len(), |n| n.min(train_split.len()));
    let train_items = PartialDataset::new(train_split, 0, train_len);
    let train_loader: Arc<dyn DataLoader<B, MnistBatch<B>>> =
        DataLoaderBuilder::<B, MnistItem, MnistBatch<B>>::new(batcher.clone())
            .batch_size(config.batch_size)
            .shuffle(config.seed)
            .num_workers(config.workers)
            .build(train_items);
    let valid_loader: Arc<dyn DataLoader<B::InnerBackend, MnistBatch<B::InnerBackend>>> =
        DataLoaderBuilder::<B::InnerBackend, MnistItem, MnistBatch<B::InnerBackend>>::new(batcher)
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .build(data.valid());

    let model = Classifier {
        model: config.model.init::<B>(device)?,
    };
    let optimizer_copies = match config.optimizer.kind {
        OptimizerKind::Adam | OptimizerKind::AdamW => 2,
        OptimizerKind::Sgd => 1,
    };
    artifacts.check_free_space(crate::artifacts::bytes_needed(
        model.model.num_params(),
        optimizer_copies,
    ))?;
    let steps_per_epoch = train_len
        .div_ceil(config.batch_size)
        .div_ceil(devices.len());
    let scheduler = Scheduler::new(
        config.lr_schedule.clone(),
        config.optimizer.learning_rate,
        steps_per_epoch,
        config.epochs,
    );
    let context = RunContext {
        config,
        artifacts: &artifacts,
        options,
        resume_from,
        train_loader,
        valid_loader,
        scheduler,
        devices,
    };
    let opt = &config.optimizer;
    let decay = (opt.weight_decay > 0.0).then(|| WeightDecayConfig::new(opt.weight_decay as f32));
    let (model, history) = match opt.kind {
        OptimizerKind::Adam => {
            let optim = AdamConfig::new()
                .with_epsilon(opt.epsilon as f32)
                .with_weight_decay(decay)
                .init();
            context.run(model, optim)?
        }
        OptimizerKind::AdamW => {
            let optim = AdamWConfig::new()
                .with_epsilon(opt.epsilon as f32)
                .with_weight_decay(opt.weight_decay as f32)
                .init();
            context.run(model, optim)?
        }
        OptimizerKind::Sgd => {
            let momentum = (opt.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(opt.momentum)
                    .with_dampening(0.0)
            });
            let optim = SgdConfig::new()
                .with_momentum(momentum)
                .with_weight_decay(decay)
                .init();
            context.run(model, optim)?
        }
    };
    model_io::save_model(&model, &artifacts)?;
    Ok(TrainOutcome {
        model,
        history,
        resumed_from: resume_from.unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Everything `run` needs besides the optimiser, whose type differs per kind.
struct RunContext<'a, B: AutodiffBackend> {
    config: &'a TrainingConfig,
    artifacts: &'a ArtifactDir,
    options: &'a TrainOptions,
    resume_from: Option<usize>,
    train_loader: Arc<dyn DataLoader<B, MnistBatch<B>>>,
    valid_loader: Arc<dyn DataLoader<B::InnerBackend, MnistBatch<B::InnerBackend>>>,
    scheduler: Scheduler,
    devices: &'a [B::Device],
}

impl<B: AutodiffBackend> RunContext<'_, B> {
    fn run<O>(
        self,
        model: Classifier<B>,
        optim: O,
    ) -> Result<(DigitModel<B::InnerBackend>, Vec<EpochRecord>)>
    where
        O: Optimizer<Classifier<B>, B> + 'static,
        Classifier<B>: AutodiffModule<B, InnerModule = Classifier<B::InnerBackend>>,
    {
        let metrics_path = self.artifacts.file(names::METRICS);
        let previous = match self.resume_from {
            Some(epoch) => {
                let mut records = read_metrics_csv(&metrics_path)?;
                records.retain(|r| r.epoch <= epoch);
                records
            }
            None => Vec::new(),
        };
        let console = Console::new(self.options.progress);
        let epochs = self.config.epochs;
        let summary_console = console.clone();
        let mut epoch_started = Instant::now();
        let mut train_record: Option<EpochRecord> = None;
        let on_epoch: EpochCallback = Box::new(move |record: &EpochRecord| {
            if record.split == "train" {
                train_record = Some(record.clone());
                return;
            }
            let mut line = format!("epoch {}/{epochs}", record.epoch);
            if let Some(t) = train_record.take() {
                line.push_str(&format!(
                    "  train loss {:.4} acc {:.2}%",
                    t.loss,
                    t.accuracy * 100.0
                ));
            }
            line.push_str(&format!(
                "  valid loss {:.4} acc {:.2}%  {}",
                record.loss,
                record.accuracy * 100.0,
                format_duration(epoch_started.elapsed().as_secs_f64())
            ));
            epoch_started = Instant::now();
            summary_console.println(&line);
        });
        let training =
            SupervisedTraining::new(self.artifacts.root(), self.train_loader, self.valid_loader);
        let history = EpochHistory::new(metrics_path, previous, Some(on_epoch))
            .stop_on_divergence(training.interrupter());
        let records = history.records();
        let divergence = history.divergence();
        let mut training = training
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .metric_train_numeric(LearningRateMetric::new())
            .with_metric_logger(history)
            .with_file_checkpointer(ModelRecorder::new())
            .with_application_logger(None)
            .with_training_strategy(
                match self.devices {
                    [device] => ExecutionStrategy::single(device.clone()),
                    many => {
                        ExecutionStrategy::multi(many.to_vec(), MultiDeviceOptim::OptimMainDevice)
                    }
                }
                .into(),
            )
            .num_epochs(epochs);
        if let Some(patience) = self.config.early_stopping_patience {
            training = training.early_stopping(MetricEarlyStoppingStrategy::new(
                &LossMetric::<B>::new(),
                Aggregate::Mean,
                Direction::Lowest,
                BurnSplit::Valid,
                StoppingCondition::NoImprovementSince { n_epochs: patience },
            ));
        }
        if let Some(epoch) = self.resume_from {
            training = training.checkpoint(epoch);
        }
        // Burn's own renderer (its TUI with the `tui` feature on a terminal) only when asked for.
        if self.options.progress != ProgressMode::Tui {
            training =
                training.renderer(ProgressRenderer::new(console, self.options.line_interval));
        }
        let learner = Learner::new(model, optim, self.scheduler);
        let result = training.launch(learner);
        drop(result.renderer);

        let diverged = divergence.lock().ok().and_then(|d| d.clone());
        if let Some(d) = diverged {
            let checkpoint = self
                .artifacts
                .last_checkpoint()
                .map_or("none yet".to_string(), |e| {
                    format!(
                        "epoch {e} in {}; resume with --resume",
                        self.artifacts.file(names::CHECKPOINTS).display()
                    )
                });
            return Err(TrainError::Diverged {
                split: d.split,
                epoch: d.epoch,
                batch: d.batch,
                value: d.value,
                checkpoint,
            });
        }
        let history = records.lock().map(|r| r.clone()).unwrap_or_default();
        Ok((result.model.model, history))
    }
}
