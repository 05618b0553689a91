//! `digitnet serve`: an HTTP server with a page to draw a digit and watch the model read it, and
//! a JSON API (`POST /api/predict`, `GET /api/health`, `GET /api/model`).

mod api;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use digitnet::backend::{BackendJob, BackendKind, run_on};
use digitnet::data::MnistBatcher;
use digitnet::train::{ArtifactDir, EpochRecord, TrainingConfig};
use serde_json::{Value, json};

use crate::backend_arg::BackendArg;
use crate::model_source::ModelSource;

/// Arguments of `digitnet serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Artifact directory of `digitnet train` (default: the shipped weights).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Backend.
    #[command(flatten)]
    pub backend: BackendArg,
}

struct ServeJob {
    args: ServeArgs,
    kind: BackendKind,
    source: ModelSource,
}

impl BackendJob for ServeJob {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let device = devices[0].clone();
        let (config, model) = self.source.load::<B::InnerBackend>(&device)?;
        let dataset = config.dataset;
        let info = model_info(&config, model.num_params(), &self.source, self.kind)?;
        let jobs = worker::spawn(model, MnistBatcher::for_dataset(&dataset.spec()), device)
            .context("starting the inference thread")?;
        let state = Arc::new(api::AppState {
            jobs,
            model_name: model_name(&config),
            model_info: info,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(self.args.addr)
                .await
                .with_context(|| format!("cannot listen on {}", self.args.addr))?;
            let addr = listener.local_addr()?;
            println!(
                "serving {} with {} on http://{addr}/ (Ctrl-C stops)",
                self.source, self.kind
            );
            axum::serve(listener, api::router(state))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .context("serving HTTP")
        })
    }
}

fn model_name(config: &TrainingConfig) -> String {
    config
        .preset
        .clone()
        .unwrap_or_else(|| match &config.model {
            Some(model) => format!("custom {}", model.kind_name()),
            None => "user-defined model".to_string(),
        })
}

/// `GET /api/model`: what the model is and how well it did in training.
fn model_info(
    config: &TrainingConfig,
    parameters: usize,
    source: &ModelSource,
    backend: BackendKind,
) -> anyhow::Result<Value> {
    let history: Vec<EpochRecord> = match source {
        ModelSource::Artifacts(dir) => digitnet::train::read_metrics_csv(
            &ArtifactDir::new(dir).file(digitnet::train::artifacts::names::METRICS),
        )?,
        ModelSource::Shipped => digitnet::shipped::metrics()?,
    };
    let last_valid = history
        .iter()
        .rev()
        .find(|r| r.split == digitnet::data::Split::Valid);
    let config_json: Value =
        serde_json::from_str(&config.to_string()).context("encoding the model config")?;
    Ok(json!({
        "name": model_name(config),
        "source": source.to_string(),
        "backend": backend.to_string(),
        "parameters": parameters,
        "dataset": config.dataset,
        "epochs_trained": last_valid.map(|r| r.epoch),
        "validation_accuracy": last_valid.map(|r| r.accuracy),
        "config": config_json,
    }))
}

/// Loads the model and serves until Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let kind = args.backend.kind()?;
    let source = ModelSource::new(args.artifacts.as_deref());
    run_on(kind, ServeJob { args, kind, source })?
}
