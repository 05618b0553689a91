//! `cargo bench --bench throughput`: digitnet's speed and memory, measured the way the PyTorch
//! baseline (`benches/baseline/pytorch_bench.py`) measures PyTorch, so that `benches/compare.sh`
//! can put the two side by side.
//!
//! For every compiled CPU backend (or those named with `--backends`) and every model (CNN A,
//! CNN B, the default CNN, MLP A), it prints one `RESULT` line per figure:
//!
//! ```text
//! RESULT <backend> <model> train@<batch> <img/s>   forward + cross-entropy + backward + Adam step
//! RESULT <backend> <model> infer@<batch> <img/s>   forward pass of the inference model
//! RESULT <backend> <model> latency <ms>            one image, forward pass (median)
//! RESULT <backend> <model> epoch <img/s>           one full training epoch, data loading included
//! RESULT <backend> <model> rss-epoch <MiB>         peak RSS of the process that ran that epoch
//! RESULT <backend> <model> rss-epoch-growth <MiB>  that peak less the RSS once data was loaded
//! RESULT <backend> <model> train-epoch <img/s>     the same epoch through digitnet_train::train
//! RESULT <backend> <model> rss-train-epoch <MiB>   peak RSS of the process that ran it (and
//!                                                  rss-train-epoch-growth, as above)
//! RESULT <backend> - batcher@64 <img/s>            MnistBatcher: raw items to normalised tensors
//! RESULT <backend> - augment@64 <img/s>            Augmenter: the default distortions, per image
//! RESULT <backend> - peak-gflops <GFLOP/s>         with --peak: a 2048^3 matmul on all threads
//! RESULT <backend> <model> flops-per-image <FLOP>  one image's forward pass (flops.rs)
//! PHASE  <backend> <model> <phase> <ms>            where a batch-64 training step's time goes
//! LAYER  <backend> <model> conv<i> <shape> <pass> <ms>  with --layers: each convolution at 64
//!                                                  images, forward and backward
//! ```
//!
//! Data: real MNIST from `DIGITNET_DATA_DIR` when set, else the committed 2,000-image sample.
//! `--help` lists the options (pass them after `--`: `cargo bench --bench throughput -- --help`).

mod cases;
mod epoch;
mod flops;
mod layers;
mod phases;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::data::dataset::Dataset;
use clap::Parser;
use digitnet::backend::{BackendKind, run_on};
use digitnet::data::{DataSource, DatasetKind, Mnist};
use digitnet::model::Preset;

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(about = "digitnet throughput and memory benchmark")]
pub struct Args {
    /// Backends to measure (default: every compiled CPU backend).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<BackendKind>,
    /// Models to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [Preset::CnnA, Preset::CnnB, Preset::CnnBn, Preset::MlpA])]
    models: Vec<Preset>,
    /// Training batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64, 256])]
    train_batches: Vec<usize>,
    /// Inference batch sizes (throughput); batch 1 also gives the latency.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64, 256, 1000])]
    infer_batches: Vec<usize>,
    /// Time spent measuring each figure, after a warm-up (at least 3 repetitions are timed).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Backends on which to train a full epoch in a child process (epoch speed and peak RSS);
    /// `none` to skip.
    #[arg(long, value_delimiter = ',', default_value = "flex")]
    epoch_backends: Vec<String>,
    /// Images in that epoch (default: the whole training split).
    #[arg(long)]
    epoch_images: Option<usize>,
    /// Distort the epoch's training images with the default augmentation (`digitnet train
    /// --augment`), to measure what it costs.
    #[arg(long)]
    augment: bool,
    /// Worker threads that load (and distort) the batches of the loop's epoch, as
    /// `TrainingConfig::workers` does for `digitnet_train::train` (default 1, as there); 0 loads
    /// them in the training thread.
    #[arg(long, default_value_t = 1)]
    loader_workers: usize,
    /// Internal: train one epoch of MODEL on BACKEND with PATH (loop or train) in this process
    /// and print its figures.
    #[arg(long, num_args = 3, value_names = ["BACKEND", "MODEL", "PATH"], hide = true)]
    epoch_child: Vec<String>,
    /// Also time each convolution of the CNNs at 64 images, forward and backward (`LAYER`).
    #[arg(long)]
    layers: bool,
    /// Also measure the backend's peak rate: a 2048^3 matrix product (`peak-gflops`).
    #[arg(long)]
    peak: bool,
    /// Size of rayon's thread pool, the one every CPU backend and digitnet's kernels run on
    /// (default: rayon's, one thread per core); `compare.sh` passes PyTorch's thread count.
    #[arg(long)]
    threads: Option<usize>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("sizing rayon's thread pool")?;
    }
    let mnist = load_data()?;
    if let [backend, model, path] = &args.epoch_child[..] {
        let kind: BackendKind = backend.parse()?;
        let preset: Preset = model.parse()?;
        let path = <epoch::EpochPath as clap::ValueEnum>::from_str(path, false)
            .map_err(|e| anyhow::anyhow!("epoch path {path:?}: {e}"))?;
        return run_on(
            kind,
            epoch::EpochChild {
                kind,
                mnist,
                preset,
                path,
                images: args.epoch_images,
                augment: args.augment,
                workers: args.loader_workers,
            },
        )?;
    }
    let backends = if args.backends.is_empty() {
        BackendKind::compiled()
            .into_iter()
            .filter(|k| k.is_cpu())
            .collect()
    } else {
        args.backends.clone()
    };
    println!(
        "# digitnet throughput: {} train images, {} threads available, rayon pool {}, models {}",
        mnist.train().len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        rayon::current_num_threads(),
        args.models
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    for &kind in &backends {
        run_on(
            kind,
            cases::Cases {
                args: args.clone(),
                mnist: mnist.clone(),
                kind,
            },
        )??;
        if args.epoch_backends.iter().any(|b| b == kind.name()) {
            for &preset in &args.models {
                for path in [epoch::EpochPath::Loop, epoch::EpochPath::Train] {
                    epoch::run_child(kind, preset, path, &args)?;
                }
            }
        }
    }
    Ok(())
}

/// Real MNIST from `DIGITNET_DATA_DIR`, or else the committed sample.
fn load_data() -> Result<Mnist> {
    let source = DataSource::new(DatasetKind::Mnist).download(false);
    if std::env::var_os(digitnet::data::DATA_DIR_ENV).is_some() {
        return Mnist::load(&source).context("loading MNIST from DIGITNET_DATA_DIR");
    }
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mnist-sample");
    eprintln!("DIGITNET_DATA_DIR is not set: using the 2,000-image sample in {sample}");
    Mnist::load(&source.data_dir(sample).verify(false)).context("loading the committed sample")
}

/// Runs `step` once to warm up, then repeatedly for about `seconds` (at least 3 times), and
/// returns the timing of each repetition.
pub fn time_repeated(seconds: f64, mut step: impl FnMut()) -> Vec<Duration> {
    time_parts(seconds, || {
        let t = Instant::now();
        step();
        t.elapsed()
    })
}

/// Runs `timed` once to warm up, then again for about `seconds` (at least 3 times); each call
/// returns the time of the part it measures.
pub fn time_parts(seconds: f64, mut timed: impl FnMut() -> Duration) -> Vec<Duration> {
    timed();
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 3 || start.elapsed().as_secs_f64() < seconds {
        times.push(timed());
    }
    times
}

/// The median of `times` in seconds.
pub fn median_secs(times: &[Duration]) -> f64 {
    let mut secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    secs[secs.len() / 2]
}

/// Prints one figure in the format `benches/compare.sh` reads.
pub fn result(backend: BackendKind, model: &str, metric: &str, value: f64) {
    println!("RESULT {backend} {model} {metric} {value:.3}");
}
