//! One full training epoch in a child process: its speed with data loading included (Burn's
//! `DataLoader`, batch 64, shuffled) and the peak resident memory of the whole process.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::tensor::backend::AutodiffBackend;
use digitnet::backend::{BackendJob, BackendKind};
use digitnet::data::{Mnist, MnistBatcher};
use digitnet::model::Preset;

use crate::cases::Trainer;
use crate::result;

/// Runs the epoch in a fresh process (so that its peak RSS is the epoch's alone) and passes its
/// output lines through.
pub fn run_child(kind: BackendKind, preset: Preset, images: Option<usize>) -> Result<()> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["--epoch-child", kind.name(), preset.name()]);
    if let Some(n) = images {
        cmd.args(["--epoch-images", &n.to_string()]);
    }
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
    /// Train on the first this many images (default: all).
    pub images: Option<usize>,
}

impl BackendJob for EpochChild {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Result<()> {
        let device = &devices[0];
        B::seed(device, 42);
        let train = self.mnist.train();
        let n = self.images.unwrap_or(train.len()).min(train.len());
        let data = burn::data::dataset::transform::PartialDataset::new(train, 0, n);
        let loader =
            DataLoaderBuilder::<B, _, _>::new(MnistBatcher::for_dataset(self.mnist.spec()))
                .batch_size(64)
                .shuffle(42)
                .build(data);
        let mut trainer = Trainer::<B>::new(self.preset, device)?;
        let start = Instant::now();
        for batch in loader.iter() {
            trainer.step(&batch);
        }
        let secs = start.elapsed().as_secs_f64();
        result(self.kind, self.preset.name(), "epoch", n as f64 / secs);
        result(self.kind, self.preset.name(), "rss-epoch", peak_rss_mib()?);
        Ok(())
    }
}

/// This process's peak resident set size (`VmHWM`), in MiB.
fn peak_rss_mib() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024.0)
}
