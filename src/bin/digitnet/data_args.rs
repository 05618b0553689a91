//! The options every data-reading command shares, and how they become a [`DataSource`].

use std::path::PathBuf;

use clap::Args;
use digitnet::data::{DataSource, DatasetKind, Mnist};

/// Where a dataset comes from.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Which dataset.
    #[arg(long, default_value = "mnist", value_parser = parse_kind)]
    pub dataset: DatasetKind,
    /// Directory holding the IDX files (raw or .gz); defaults to $DIGITNET_DATA_DIR, then the
    /// cache directory. Missing files are downloaded into it.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Accept files whose SHA-256 differs from the official one (custom data in IDX format).
    #[arg(long)]
    pub no_verify: bool,
    /// Never download; fail if a file is missing.
    #[arg(long)]
    pub offline: bool,
}

impl DataArgs {
    /// The data source these options describe.
    pub fn source(&self) -> DataSource {
        let mut source = DataSource::new(self.dataset)
            .verify(!self.no_verify)
            .download(!self.offline);
        if let Some(dir) = &self.data_dir {
            source = source.data_dir(dir);
        }
        source
    }

    /// Loads the dataset.
    pub fn load(&self) -> anyhow::Result<Mnist> {
        Ok(Mnist::load(&self.source())?)
    }
}

fn parse_kind(s: &str) -> Result<DatasetKind, String> {
    s.parse()
}
