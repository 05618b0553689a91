//! # digitnet-data
//!
//! MNIST-format datasets for digitnet: an IDX reader of its own (raw or gzip, validated, every
//! failure a typed error naming the file), verified downloads with offline fallbacks, the
//! train / validation / test splits as Burn [`Dataset`](burn::data::dataset::Dataset)s over
//! shared `u8` buffers, a [`MnistBatcher`] producing normalised tensors, and sample grids.
//!
//! ```no_run
//! use digitnet_data::{DataSource, DatasetKind, Mnist};
//!
//! let mnist = Mnist::load(&DataSource::new(DatasetKind::Mnist).data_dir("data/mnist"))?;
//! println!("{} training images", burn::data::dataset::Dataset::len(&mnist.train()));
//! # Ok::<(), digitnet_data::DataError>(())
//! ```

pub mod atomic;
mod augment;
mod batcher;
mod download;
mod error;
pub mod grid;
mod idx;
mod mnist;
pub mod preprocess;
mod source;
mod spec;

pub use augment::{AugmentConfig, AugmentedDataset, Augmenter};
pub use batcher::{MnistBatch, MnistBatcher};
pub use download::FileRole;
pub use error::{DataError, Result};
pub use idx::{IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES};
pub use mnist::{ChecksumStatus, FileReport, Mnist, MnistItem, MnistSplit, Split};
pub use source::{DATA_DIR_ENV, DataSource};
pub use spec::{DatasetKind, DatasetSpec, FileSpec, SplitFiles};

#[cfg(test)]
mod tests;
