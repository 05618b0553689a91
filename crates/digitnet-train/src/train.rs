//! [`train`]: one generic function that trains any [`ImageClassifier`] on any autodiff backend
//! with burn-train's `SupervisedTraining` + `Learner`, checkpointing every epoch (full
//! precision), able to resume from the last checkpoint, and drawing the loss and accuracy curves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::PartialDataset;
use burn::module::{AutodiffModule, Module};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::store::{Aggregate, Direction, EventStoreClient, Split as BurnSplit};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{
    EarlyStoppingStrategy, ExecutionStrategy, Learner, LearningResult, MetricEarlyStoppingStrategy,
    MultiDeviceOptim, StoppingCondition, SupervisedTraining,
};
use digitnet_data::{
    AugmentedDataset, Augmenter, Mnist, MnistBatch, MnistBatcher, MnistItem, Split,
};

use crate::artifacts::{ArtifactDir, names};
use crate::classifier::{Classifier, ImageClassifier, check_output_shape};
use crate::config::{OptimizerKind, TrainingConfig};
use crate::error::{Result, TrainError};
use crate::history::{ACCURACY, EpochCallback, EpochHistory, EpochRecord, read_metrics_csv};
use crate::model_io;
use crate::optimizer::FusedAdam;
use crate::plots::{self, Curve};
use crate::progress::{Console, ProgressMode, ProgressRenderer, format_duration};
use crate::recorder::ModelRecorder;
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
    /// Evaluate the test set after every epoch, in place of a hold-out, and train on every
    /// training image, as PyTorch's MNIST example does. The epoch records' validation figures
    /// are then the test set's; a test figure that also chose when to stop (through
    /// [`TrainingConfig::target_accuracy`] or early stopping) is no longer an unbiased estimate.
    pub validate_on_test: bool,
}

impl TrainOptions {
    /// Defaults: no resume, automatic progress display, a plain line every 10 s.
    pub fn new(artifact_dir: impl Into<PathBuf>) -> Self {
        Self {
            artifact_dir: artifact_dir.into(),
            resume: false,
            progress: ProgressMode::Auto,
            line_interval: Duration::from_secs(10),
            validate_on_test: false,
        }
    }
}

/// What a training run produced.
#[derive(Debug)]
pub struct TrainOutcome<M> {
    /// The trained network, on the inference backend (`model.valid()`).
    pub model: M,
    /// Per-epoch metrics, as in `metrics.csv` (including epochs of earlier runs when resumed).
    pub history: Vec<EpochRecord>,
    /// The epoch the run started from (0 for a fresh run).
    pub resumed_from: usize,
    /// Wall time of this run.
    pub seconds: f64,
}

/// Trains `model` as `config` says on `data`'s training split, validating on its validation
/// split (`config.validation_size` images held out, or the dataset's default), on one device.
/// Writes `config.json`, checkpoints, `metrics.csv`, `model.safetensors`, `loss.png` and
/// `accuracy.png` to `options.artifact_dir`.
///
/// `model` is any [`ImageClassifier`]: a digitnet model (`config.digit_model()?.init(device)?`)
/// or a module of your own. One that does not map the first batch's images to `[N, classes]`
/// logits is a [`TrainError::NotAClassifier`] before training starts.
pub fn train<B, M>(
    model: M,
    config: &TrainingConfig,
    data: &Mnist,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<TrainOutcome<M::InnerModule>>
where
    B: AutodiffBackend,
    M: ImageClassifier<B> + AutodiffModule<B> + 'static,
    M::InnerModule: ImageClassifier<B::InnerBackend>,
{
    train_data_parallel::<B, M>(model, config, data, options, std::slice::from_ref(device))
}

/// Like [`train`], data-parallel over several devices (burn-train's multi-device strategy): each
/// step, every device takes its own batch and computes gradients on its copy of the model; the
/// gradients are summed on the first device, which takes the optimiser step. One step thus sees
/// `devices.len()` batches, and the learning-rate schedule counts steps, not batches. With one
/// device this is [`train`].
pub fn train_data_parallel<B, M>(
    model: M,
    config: &TrainingConfig,
    data: &Mnist,
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<TrainOutcome<M::InnerModule>>
where
    B: AutodiffBackend,
    M: ImageClassifier<B> + AutodiffModule<B> + 'static,
    M::InnerModule: ImageClassifier<B::InnerBackend>,
{
    config.validate()?;
    let Some(device) = devices.first() else {
        return Err(TrainError::InvalidSetting(
            "training needs at least one device".into(),
        ));
    };
    let started = Instant::now();
    if options.validate_on_test && config.validation_size.is_some_and(|n| n > 0) {
        return Err(TrainError::InvalidSetting(
            "validating on the test set trains on every training image: \
             a validation size cannot be given too"
                .into(),
        ));
    }
    let data = match (options.validate_on_test, config.validation_size) {
        (true, _) => data.clone().with_validation_size(0)?,
        (false, Some(size)) => data.clone().with_validation_size(size)?,
        (false, None) => data.clone(),
    };
    if !options.validate_on_test && data.validation_size() == 0 {
        return Err(TrainError::InvalidSetting(
            "a validation size of 0 leaves no images to validate on: hold some training \
             images out, or validate on the test set (--validate-on-test, \
             TrainOptions::validate_on_test; a run started with it resumes with it)"
                .into(),
        ));
    }
    let config = &TrainingConfig {
        validation_size: Some(data.validation_size()),
        ..config.clone()
    };
    let artifacts = ArtifactDir::new(&options.artifact_dir);
    let resume_from = prepare_artifacts(&artifacts, config, options.resume)?;

    B::seed(device, config.seed);
    let batcher = MnistBatcher::for_dataset(data.spec());
    let train_items = training_items(&data, config);
    check_first_batch(
        &model,
        &train_items,
        &batcher,
        config,
        data.spec().class_names.len(),
        device,
    )?;
    let optimizer_copies = match config.optimizer.kind {
        OptimizerKind::Adam | OptimizerKind::AdamW => 2,
        OptimizerKind::Sgd => 1,
    };
    artifacts.check_free_space(crate::artifacts::bytes_needed(
        Module::num_params(&model),
        optimizer_copies,
    ))?;
    let steps_per_epoch = train_items
        .len()
        .div_ceil(config.batch_size)
        .div_ceil(devices.len());
    let context = RunContext {
        config,
        artifacts: &artifacts,
        options,
        resume_from,
        train_loader: training_loader(batcher.clone(), train_items, config, resume_from)?,
        valid_loader: DataLoaderBuilder::new(batcher)
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .build(match options.validate_on_test {
                true => data.test(),
                false => data.valid(),
            }),
        scheduler: Scheduler::new(
            config.lr_schedule.clone(),
            config.optimizer.learning_rate,
            steps_per_epoch,
            config.epochs,
        ),
        devices,
    };
    let (model, history) = context.run_with_optimizer(Classifier::new(model))?;
    model_io::save_model(&model, &artifacts)?;
    plot_curves(&history, &artifacts)?;
    Ok(TrainOutcome {
        model,
        history,
        resumed_from: resume_from.unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Creates the artifact directory and writes `config.json`; on resume, checks that the saved
/// config trains the same model and returns the checkpoint's epoch, otherwise clears what an
/// earlier run left.
fn prepare_artifacts(
    artifacts: &ArtifactDir,
    config: &TrainingConfig,
    resume: bool,
) -> Result<Option<usize>> {
    artifacts.create()?;
    artifacts.remove_stale_temporaries()?;
    let resume_from = if resume {
        artifacts.resume_point()?
    } else {
        None
    };
    match resume_from {
        Some(_) => {
            let saved = model_io::load_config(artifacts)?;
            if saved.model != config.model {
                return Err(TrainError::NothingToResume {
                    dir: artifacts.root().to_path_buf(),
                    reason: "its config.json describes another model than the one asked for".into(),
                });
            }
        }
        None => artifacts.clear_previous_run()?,
    }
    model_io::save_config(config, artifacts)?;
    Ok(resume_from)
}

/// The training split, cut to `config.limit_train` images.
fn training_items(
    data: &Mnist,
    config: &TrainingConfig,
) -> PartialDataset<digitnet_data::MnistSplit, MnistItem> {
    let split = data.train();
    let len = config
        .limit_train
        .map_or(split.len(), |n| n.min(split.len()));
    PartialDataset::new(split, 0, len)
}

/// The shuffled training batches, each image distorted first when the config asks for it.
/// A resumed run's distortions carry on from its last epoch, as if it had not stopped.
fn training_loader<B: AutodiffBackend>(
    batcher: MnistBatcher,
    items: PartialDataset<digitnet_data::MnistSplit, MnistItem>,
    config: &TrainingConfig,
    resume_from: Option<usize>,
) -> Result<Arc<dyn DataLoader<B, MnistBatch<B>>>> {
    let builder = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .num_workers(config.workers);
    Ok(match &config.augment {
        None => builder.build(items),
        Some(augment) => {
            let augmenter = Augmenter::new(augment.clone(), config.seed)?;
            let first_epoch = u32::try_from(resume_from.unwrap_or(0)).unwrap_or(u32::MAX);
            builder.build(AugmentedDataset::new(items, augmenter, first_epoch))
        }
    })
}

/// Runs `model` in inference mode on the first training batch and checks its output shape.
/// Its parameters are initialised first, in place, in the order training would initialise
/// them, so the check changes neither the initial weights nor the random stream (no dropout,
/// no batch statistics in inference mode).
fn check_first_batch<B, M>(
    model: &M,
    items: &impl Dataset<MnistItem>,
    batcher: &MnistBatcher,
    config: &TrainingConfig,
    classes: usize,
    device: &B::Device,
) -> Result<()>
where
    B: AutodiffBackend,
    M: ImageClassifier<B> + AutodiffModule<B>,
    M::InnerModule: ImageClassifier<B::InnerBackend>,
{
    use burn::data::dataloader::batcher::Batcher;
    model.visit(&mut InitialiseParameters);
    let first: Vec<MnistItem> = items.iter().take(config.batch_size).collect();
    let batch: MnistBatch<B::InnerBackend> = batcher.batch(first, device);
    check_output_shape(&model.valid(), batch.images, classes)
}

/// Initialises every lazily initialised parameter of a module where it is.
struct InitialiseParameters;

impl<B: burn::prelude::Backend> burn::module::ModuleVisitor<B> for InitialiseParameters {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::prelude::Tensor<B, D>>,
    ) {
        let _ = param.val();
    }
}

/// Writes `loss.png` and `accuracy.png` from the run's metrics.
fn plot_curves(history: &[EpochRecord], artifacts: &ArtifactDir) -> Result<()> {
    plots::plot_curve(history, Curve::Loss, &artifacts.file(names::LOSS_PLOT))?;
    plots::plot_curve(
        history,
        Curve::Accuracy,
        &artifacts.file(names::ACCURACY_PLOT),
    )
}

/// Everything `run` needs besides the model and the optimiser.
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

type Trained<M> = (M, Vec<EpochRecord>);

impl<B: AutodiffBackend> RunContext<'_, B> {
    /// Builds the optimiser the config names (each kind is its own type) and runs.
    fn run_with_optimizer<M>(self, model: Classifier<B, M>) -> Result<Trained<M::InnerModule>>
    where
        M: ImageClassifier<B> + AutodiffModule<B> + 'static,
        M::InnerModule: ImageClassifier<B::InnerBackend>,
    {
        let opt = &self.config.optimizer;
        let decay =
            (opt.weight_decay > 0.0).then(|| WeightDecayConfig::new(opt.weight_decay as f32));
        match opt.kind {
            OptimizerKind::Adam => {
                let penalty = (opt.weight_decay > 0.0).then_some(opt.weight_decay as f32);
                self.run(model, FusedAdam::new(opt.epsilon as f32, penalty).init())
            }
            OptimizerKind::AdamW => {
                let optim = AdamWConfig::new()
                    .with_epsilon(opt.epsilon as f32)
                    .with_weight_decay(opt.weight_decay as f32)
                    .init();
                self.run(model, optim)
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
                self.run(model, optim)
            }
        }
    }

    fn run<M, O>(self, model: Classifier<B, M>, optim: O) -> Result<Trained<M::InnerModule>>
    where
        M: ImageClassifier<B> + AutodiffModule<B> + 'static,
        M::InnerModule: ImageClassifier<B::InnerBackend>,
        O: Optimizer<Classifier<B, M>, B> + 'static,
    {
        let previous = match self.resume_from {
            Some(epoch) => {
                let mut records = read_metrics_csv(&self.artifacts.file(names::METRICS))?;
                records.retain(|r| r.epoch <= epoch);
                records
            }
            None => Vec::new(),
        };
        let console = Console::new(self.options.progress);
        let training =
            SupervisedTraining::new(self.artifacts.root(), self.train_loader, self.valid_loader);
        let history = EpochHistory::new(
            self.artifacts.file(names::METRICS),
            previous,
            Some(epoch_summary(
                console.clone(),
                self.config.epochs,
                if self.options.validate_on_test {
                    "test"
                } else {
                    "valid"
                },
            )),
        )
        .stop_on_divergence(training.interrupter());
        let records = history.records();
        let divergence = history.divergence();
        let mut training = training
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .metric_train_numeric(LearningRateMetric::new())
            .with_metric_logger(history)
            .with_file_checkpointer(ModelRecorder::new())
            .with_application_logger(None)
            .with_training_strategy(execution_strategy::<B>(self.devices).into())
            .num_epochs(self.config.epochs);
        let stop_rule = StopRule {
            stalled: self
                .config
                .early_stopping_patience
                .map(stop_when_valid_loss_stalls::<B>),
            target_accuracy: self.config.target_accuracy,
        };
        if stop_rule.stalled.is_some() || stop_rule.target_accuracy.is_some() {
            training = training.early_stopping(stop_rule);
        }
        if let Some(epoch) = self.resume_from {
            training = training.checkpoint(epoch);
        }
        // Burn's own renderer (its TUI with the `tui` feature on a terminal) only when asked for.
        if self.options.progress != ProgressMode::Tui {
            training =
                training.renderer(ProgressRenderer::new(console, self.options.line_interval));
        }
        let LearningResult { model, renderer } =
            training.launch(Learner::new(model, optim, self.scheduler));
        drop(renderer);

        if let Some(d) = divergence.lock().ok().and_then(|d| d.clone()) {
            return Err(diverged(d, self.artifacts));
        }
        let history = records.lock().map(|r| r.clone()).unwrap_or_default();
        Ok((model.model, history))
    }
}

/// One device, or burn-train's data-parallel strategy over several.
fn execution_strategy<B: AutodiffBackend>(devices: &[B::Device]) -> ExecutionStrategy<B> {
    match devices {
        [device] => ExecutionStrategy::single(device.clone()),
        many => ExecutionStrategy::multi(many.to_vec(), MultiDeviceOptim::OptimMainDevice),
    }
}

/// Early stopping: no lower mean validation loss for `patience` epochs.
fn stop_when_valid_loss_stalls<B: AutodiffBackend>(patience: usize) -> MetricEarlyStoppingStrategy {
    MetricEarlyStoppingStrategy::new(
        &LossMetric::<B>::new(),
        Aggregate::Mean,
        Direction::Lowest,
        BurnSplit::Valid,
        StoppingCondition::NoImprovementSince { n_epochs: patience },
    )
}

/// When to end a run before its last epoch: the validation loss stalled, or the validation
/// accuracy reached the target (either, when both are set).
#[derive(Clone)]
struct StopRule {
    stalled: Option<MetricEarlyStoppingStrategy>,
    target_accuracy: Option<f64>,
}

impl EarlyStoppingStrategy for StopRule {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        // Burn's accuracy is in percent; a rounding margin so that 9,900 of 10,000 reaches 0.99.
        let reached = self.target_accuracy.is_some_and(|target| {
            store
                .find_metric(ACCURACY, epoch, Aggregate::Mean, &BurnSplit::Valid)
                .is_some_and(|percent| percent >= target * 100.0 - 1e-9)
        });
        let stalled = self
            .stalled
            .as_mut()
            .is_some_and(|s| s.should_stop(epoch, store));
        reached || stalled
    }
}

/// The error for a run stopped by a non-finite loss, naming the checkpoint to resume from.
fn diverged(d: crate::history::Divergence, artifacts: &ArtifactDir) -> TrainError {
    let checkpoint = artifacts
        .last_checkpoint()
        .map_or("none yet".to_string(), |e| {
            format!(
                "epoch {e} in {}; resume with --resume",
                artifacts.file(names::CHECKPOINTS).display()
            )
        });
    TrainError::Diverged {
        split: d.split,
        epoch: d.epoch,
        batch: d.batch,
        value: d.value,
        checkpoint,
    }
}

/// The callback that prints one summary line per epoch (train and validation loss and accuracy,
/// the latter labelled `valid_label`).
fn epoch_summary(console: Console, epochs: usize, valid_label: &'static str) -> EpochCallback {
    let mut epoch_started = Instant::now();
    let mut train_record: Option<EpochRecord> = None;
    Box::new(move |record: &EpochRecord| {
        if record.split == Split::Train {
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
            "  {valid_label} loss {:.4} acc {:.2}%  {}",
            record.loss,
            record.accuracy * 100.0,
            format_duration(epoch_started.elapsed().as_secs_f64())
        ));
        epoch_started = Instant::now();
        console.println(&line);
    })
}
