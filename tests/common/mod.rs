//! Helpers shared by the integration tests: the committed real-MNIST sample, corrupted copies
//! of it, and a tiny HTTP server on 127.0.0.1 for the download tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod http;
pub mod served;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use digitnet::data::{DatasetKind, DatasetSpec, FileSpec};

/// File names of the four MNIST files, in the order train images, train labels, test images,
/// test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The committed sample: the first 2,000 train and 1,000 test images of MNIST.
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist-sample")
}

/// The sample's SHA-256 sums (of the decompressed files), from its committed SHA256SUMS.
pub fn sample_sha256(name: &str) -> String {
    let sums = std::fs::read_to_string(sample_dir().join("SHA256SUMS")).unwrap();
    sums.lines()
        .find_map(|l| {
            let (sum, file) = l.split_once("  ")?;
            (file == name).then(|| sum.to_string())
        })
        .unwrap_or_else(|| panic!("{name} not in SHA256SUMS"))
}

/// MNIST's spec with the sample's checksums, so that the sample verifies strictly.
pub fn sample_spec() -> DatasetSpec {
    let mut spec = DatasetKind::Mnist.spec();
    for file in [
        &mut spec.train.images,
        &mut spec.train.labels,
        &mut spec.test.images,
        &mut spec.test.labels,
    ] {
        *file = FileSpec::new(file.name.clone(), sample_sha256(&file.name));
    }
    spec
}

/// The sample, loaded with strict checksums and no download.
pub fn sample() -> digitnet::data::Mnist {
    digitnet::data::Mnist::load(
        &digitnet::data::DataSource::from_spec(sample_spec())
            .data_dir(sample_dir())
            .download(false),
    )
    .unwrap()
}

/// The decompressed bytes of a sample file.
pub fn sample_raw(name: &str) -> Vec<u8> {
    let gz = std::fs::read(sample_dir().join(format!("{name}.gz"))).unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap();
    raw
}

/// The gzip'd bytes of a sample file, as committed.
pub fn sample_gz(name: &str) -> Vec<u8> {
    std::fs::read(sample_dir().join(format!("{name}.gz"))).unwrap()
}

/// Gzips `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A temporary copy of the sample (raw, decompressed files) in which `name` is replaced by
/// `content`.
pub fn sample_copy_with(name: &str, content: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in FILES {
        let bytes = if file == name {
            content.to_vec()
        } else {
            sample_raw(file)
        };
        std::fs::write(dir.path().join(file), bytes).unwrap();
    }
    dir
}

/// Names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}
