//! One full training epoch in a child process: its speed with data loading included (Burn's
//! `DataLoader`, batch 64, shuffled, one loader thread unless `--loader-workers` says otherwise)
//! and the peak resident memory of the whole process. Two
//! ways: the hand-written loop of `cases.rs` (`epoch`, `rss-epoch`), and the product path, one
//! epoch of `digitnet_train::train` with its Learner, metrics, checkpoint, saved model, plots
//! and progress lines, timed as the whole call (`train-epoch`, `rss-train-epoch`).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::tensor::backend::AutodiffBackend;
use digitnet::backend::{BackendJob, BackendKind};
use digitnet::data::{AugmentConfig, AugmentedDataset, Augmenter, Mnist, MnistBatcher};
use digitnet::model::Preset;
use digitnet::train::{TrainOptions, TrainingConfig, train};

use crate::cases::Trainer;
use crate::{Args, result};

/// The hold-out of the train path: one batch, so that its validation pass costs next to
/// nothing.
const VALIDATION_IMAGES: usize = 64;

/// Which training code runs the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EpochPath {
    /// The benchmark's own loop: forward, loss, backward, Adam step.
    Loop,
    /// `digitnet_train::train`, as a library user or `digitnet train` calls it.
    Train,
}

/// Runs the epoch in a fresh process (so that its peak RSS is the epoch's alone) and passes its
/// output lines through.
pub fn run_child(kind: BackendKind, preset: Preset, path: EpochPath, args: &Args) -> Result<()> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let mut cmd = Command::new(exe);
    let path_name = match path {
        EpochPath::Loop => "loop",
        EpochPath::Train => "train",
    };
    cmd.args(["--epoch-child", kind.name(), preset.name(), path_name]);
    if let Some(n) = args.epoch_images {
        cmd.args(["--epoch-images", &n.to_string()]);
    }
    if let Some(n) = args.threads {
        cmd.args(["--threads", &n.to_string()]);
    }
    if args.augment {
        cmd.arg("--augment");
    }
    cmd.args(["--loader-workers", &args.loader_workers.to_string()]);
    let out = cmd.output().context("starting the epoch child process")?;
    if !out.status.success() {
        bail!(
            "epoch child for {kind} {preset} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// The job the child process runs.
pub struct EpochChild {
    /// The backend it runs on (for the output lines).
    pub kind: BackendKind,
    /// The images.
    pub mnist: Mnist,
    /// The model to train.
    pub preset: Preset,
    /// Which training code runs it.
    pub path: EpochPath,
    /// Train on the first this many images (default: all).
    pub images: Option<usize>,
    /// Distort every training image with the default augmentation first.
    pub augment: bool,
    /// The loop's data-loading worker threads (0: the training thread loads).
    pub workers: usize,
}

impl BackendJob for EpochChild {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Result<()> {
        let loaded = rss_mib("VmRSS")?;
        match self.path {
            EpochPath::Loop => self.run_loop::<B>(&devices[0], loaded),
            EpochPath::Train => self.run_train::<B>(&devices[0], loaded),
        }
    }
}

impl EpochChild {
    /// The training images this epoch takes (the train path holds one batch of them out).
    fn images(&self) -> usize {
        let available = self.mnist.train().len().saturating_sub(VALIDATION_IMAGES);
        self.images.unwrap_or(available).min(available)
    }

    /// One epoch of the benchmark's own training loop.
    fn run_loop<B: AutodiffBackend>(self, device: &B::Device, loaded: f64) -> Result<()> {
        B::seed(device, 42);
        let train = self.mnist.train();
        let n = self.images();
        let data = burn::data::dataset::transform::PartialDataset::new(train, 0, n);
        let builder =
            DataLoaderBuilder::<B, _, _>::new(MnistBatcher::for_dataset(self.mnist.spec()))
                .batch_size(64)
                .shuffle(42)
                .num_workers(self.workers);
        let loader = match self.augment {
            true => {
                let augmenter = Augmenter::new(AugmentConfig::new(), 42)?;
                builder.build(AugmentedDataset::new(data, augmenter, 0))
            }
            false => builder.build(data),
        };
        let mut trainer = Trainer::<B>::new(self.preset, device)?;
        let start = Instant::now();
        for batch in loader.iter() {
            trainer.step(&batch);
        }
        let secs = start.elapsed().as_secs_f64();
        result(self.kind, self.preset.name(), "epoch", n as f64 / secs);
        report_rss(self.kind, self.preset.name(), "rss-epoch", loaded)
    }

    /// One epoch of `digitnet_train::train` with the preset's recommended config (Adam, lr
    /// 1e-3, batch 64, as the loop), validating on one batch (the Learner always validates),
    /// into a fresh artifact directory.
    fn run_train<B: AutodiffBackend>(self, device: &B::Device, loaded: f64) -> Result<()> {
        let n = self.images();
        let config = TrainingConfig::for_preset(self.preset)
            .with_epochs(1)
            .with_validation_size(Some(VALIDATION_IMAGES))
            .with_limit_train(Some(n))
            .with_augment(self.augment.then(AugmentConfig::new));
        let dir = tempfile::tempdir().context("creating a temporary artifact directory")?;
        let model = config.digit_model()?.init::<B>(device)?;
        let outcome = train::<B, _>(
            model,
            &config,
            &self.mnist,
            &TrainOptions::new(dir.path()),
            device,
        )?;
        let name = self.preset.name();
        result(self.kind, name, "train-epoch", n as f64 / outcome.seconds);
        report_rss(self.kind, name, "rss-train-epoch", loaded)
    }
}

/// This process's resident set size now (`VmRSS`) or at its peak (`VmHWM`), in MiB.
fn rss_mib(field: &str) -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    Ok(kib / 1024.0)
}

/// Prints the process's peak RSS as `<figure>` and its growth over `loaded` MiB (the RSS once
/// the data was loaded, before training) as `<figure>-growth`.
fn report_rss(kind: BackendKind, model: &str, figure: &str, loaded: f64) -> Result<()> {
    let peak = rss_mib("VmHWM")?;
    result(kind, model, figure, peak);
    result(kind, model, &format!("{figure}-growth"), peak - loaded);
    Ok(())
}
