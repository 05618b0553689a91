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

/// Whether a system tool that a test needs is usable here. When it is not, the test should return
/// at once: locally that is one line on stderr naming what to install (written past libtest's
/// output capture, so it shows), and under `CI=true` it is a failure, so CI never skips silently.
///
/// `probe` runs the tool in the way the test will; `install` says what provides it.
pub fn tool_available(what: &str, probe: &mut std::process::Command, install: &str) -> bool {
    let problem = match probe
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{what} does not work here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("{what} not found ({e})"),
    };
    missing_tool(&problem, install);
    false
}

/// Reports that `problem` keeps a test (or part of one) from running here: a failure under
/// `CI=true`, else one line on stderr naming what to `install`.
pub fn missing_tool(problem: &str, install: &str) {
    let message = format!("{problem}; {install}");
    if in_ci() {
        panic!("{message} (CI=true: a missing tool is a failure)");
    }
    let mut stderr = std::io::stderr();
    let _ = writeln!(
        stderr,
        "SKIPPED {}: {message}",
        std::thread::current().name().unwrap_or("a test")
    );
}

/// What makes a GPU backend runnable on a machine without a GPU.
pub const VULKAN_INSTALL: &str =
    "install a Vulkan driver to run it (Debian: mesa-vulkan-drivers, a software one)";

/// What makes the cuda backend runnable.
pub const CUDA_INSTALL: &str = "run it on a machine with an NVIDIA GPU and its driver (libcuda.so)";

/// What makes the GPU backend `kind` runnable on this machine.
pub fn gpu_install(kind: digitnet::backend::BackendKind) -> &'static str {
    match kind.name() {
        "cuda" => CUDA_INSTALL,
        _ => VULKAN_INSTALL,
    }
}

/// True under CI (`CI=true`, which `.ci/run` sets).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Writes test image `index` of the sample as a 28x28 PNG in `dir`; returns its path and label.
pub fn test_digit_png(index: usize, dir: &Path) -> (PathBuf, u8) {
    const PIXELS: usize = 28 * 28;
    let images = sample_raw("t10k-images-idx3-ubyte");
    let labels = sample_raw("t10k-labels-idx1-ubyte");
    let pixels = images[16 + index * PIXELS..16 + (index + 1) * PIXELS].to_vec();
    let path = dir.join(format!("test-digit-{index}.png"));
    image::GrayImage::from_raw(28, 28, pixels)
        .unwrap()
        .save(&path)
        .unwrap();
    (path, labels[8 + index])
}

/// The JSON body of an HTTP response (parsed with serde_json: ureq's own `json` feature would
/// change ureq's build, and so the library's, between `cargo build` and `cargo test`).
pub fn read_json(
    res: &mut ureq::http::Response<ureq::Body>,
) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_reader(res.body_mut().as_reader())
}
