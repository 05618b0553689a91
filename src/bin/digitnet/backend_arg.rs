//! The `--backend` option shared by the commands that run a model.

use clap::Args;
use digitnet::backend::BackendKind;

/// Which Burn backend runs the model.
#[derive(Debug, Args)]
pub struct BackendArg {
    /// Backend: cuda, wgpu, flex or ndarray (those compiled in); default: a GPU backend when
    /// a GPU is found, else flex (see `digitnet backends`).
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
}

impl BackendArg {
    /// The chosen backend, or the best one compiled in.
    pub fn kind(&self) -> anyhow::Result<BackendKind> {
        self.backend.or_else(BackendKind::best).ok_or_else(|| {
            anyhow::anyhow!("this build has no usable backend: enable flex or ndarray")
        })
    }
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse()
        .map_err(|e: digitnet::backend::BackendError| e.to_string())
}
