//! The `digitnet` binary as a user runs it: `info`, `show` and `download`, on the committed sample,
//! on corrupted copies (non-zero exit, one-line error naming the file, never a panic) and against
//! a local HTTP mirror.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::http::{Reply, Server};
use common::{FILES, entries, sample_copy_with, sample_dir, sample_gz, sample_raw};
use digitnet::data::grid::{self, GridCell, INK};
use digitnet::data::{IMAGE_PIXELS, IMAGE_SIDE};

fn digitnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(args)
        .env_remove("DIGITNET_DATA_DIR")
        .env_remove("DIGITNET_MIRRORS")
        .env(
            "DIGITNET_CACHE_DIR",
            std::env::temp_dir().join("digitnet-cli-test-cache"),
        )
        .output()
        .expect("run digitnet")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failed run: exit code 1, a single `error:` line on stderr containing `needles`.
fn assert_clean_failure(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "expected one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "missing {needle:?} in: {stderr}");
    }
}

fn dir_arg(dir: &Path) -> String {
    dir.display().to_string()
}

#[test]
fn info_reports_sizes_histogram_and_checksum_status() {
    let sample = dir_arg(&sample_dir());
    let out = digitnet(&["info", "--data-dir", &sample, "--offline", "--no-verify"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("dataset: MNIST"), "{stdout}");
    assert!(
        stdout.contains(
            "training images: 2000 (train split 1800 + validation split 200), test images: 1000"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("checksum MISMATCH").count(), 4, "{stdout}");
    let test_row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("test "))
        .unwrap();
    let counts: Vec<usize> = test_row
        .split_whitespace()
        .skip(1)
        .map(|c| c.parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 1000);
    assert_eq!(
        counts[7],
        sample_raw("t10k-labels-idx1-ubyte")[8..]
            .iter()
            .filter(|&&l| l == 7)
            .count()
    );
}

#[test]
fn info_without_no_verify_refuses_unofficial_files() {
    let out = digitnet(&["info", "--data-dir", &dir_arg(&sample_dir()), "--offline"]);
    assert_clean_failure(
        &out,
        &["SHA-256 mismatch", "train-images-idx3-ubyte", "--no-verify"],
    );
}

#[test]
fn corrupted_copies_fail_cleanly_naming_the_file() {
    let images = sample_raw("t10k-images-idx3-ubyte");
    let mut labels_short = sample_raw("train-labels-idx1-ubyte");
    labels_short.truncate(labels_short.len() - 3);
    labels_short[4..8].copy_from_slice(&1997u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "t10k-images-idx3-ubyte",
            images[..images.len() / 3].to_vec(),
            &["t10k-images-idx3-ubyte", "truncated"],
        ),
        (
            "train-images-idx3-ubyte",
            sample_raw("t10k-labels-idx1-ubyte"),
            &["train-images-idx3-ubyte", "wrong magic"],
        ),
        (
            "train-labels-idx1-ubyte",
            labels_short,
            &["2000 images", "1997 labels", "train-labels-idx1-ubyte"],
        ),
        (
            "t10k-labels-idx1-ubyte",
            b"\x1f\x8bnot really gzip".to_vec(),
            &["t10k-labels-idx1-ubyte", "gzip"],
        ),
    ];
    for (file, content, needles) in cases {
        let dir = sample_copy_with(file, &content);
        let out = digitnet(&[
            "info",
            "--data-dir",
            &dir_arg(dir.path()),
            "--offline",
            "--no-verify",
        ]);
        assert_clean_failure(&out, needles);
    }
}

#[test]
fn show_draws_the_samples_with_their_labels() {
    let out_dir = tempfile::tempdir().unwrap();
    let png = out_dir.path().join("grid.png");
    let out = digitnet(&[
        "show",
        "--data-dir",
        &dir_arg(&sample_dir()),
        "--offline",
        "--no-verify",
        "--split",
        "test",
        "--start",
        "10",
        "--count",
        "6",
        "--columns",
        "3",
        "--scale",
        "2",
        "--out",
        &dir_arg(&png),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let img = image::open(&png).unwrap().to_rgb8();
    // Expected: the same six test images captioned with their labels from the labels file.
    let images = sample_raw("t10k-images-idx3-ubyte");
    let labels = sample_raw("t10k-labels-idx1-ubyte");
    let cells: Vec<GridCell> = (10..16)
        .map(|i| GridCell {
            pixels: &images[16 + i * IMAGE_PIXELS..16 + (i + 1) * IMAGE_PIXELS],
            caption: labels[8 + i].to_string(),
            color: INK,
        })
        .collect();
    let expected = grid::render_grid(&cells, 3, 2);
    assert_eq!(img.dimensions(), expected.dimensions());
    assert!(
        img == expected,
        "grid differs from the expected images and labels"
    );
    // And the first cell really holds test image #10, enlarged 2x.
    let (x0, y0) = (6, 6);
    for (i, &p) in cells[0].pixels.iter().enumerate() {
        let (x, y) = ((i % IMAGE_SIDE) as u32 * 2, (i / IMAGE_SIDE) as u32 * 2);
        assert_eq!(img.get_pixel(x0 + x, y0 + y).0, [p, p, p]);
    }
}

#[test]
fn show_past_the_end_is_an_error() {
    let out = digitnet(&[
        "show",
        "--data-dir",
        &dir_arg(&sample_dir()),
        "--offline",
        "--no-verify",
        "--split",
        "valid",
        "--start",
        "200",
        "--out",
        "/tmp/unused.png",
    ]);
    assert_clean_failure(&out, &["--start 200", "valid split (200 images)"]);
}

#[test]
fn download_fetches_from_the_configured_mirror() {
    let server = Server::start();
    for name in FILES {
        server.route(&format!("/mnist/{name}.gz"), Reply::Ok(sample_gz(name)));
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir_arg(dir.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["download", "--data-dir", &data_dir];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_digitnet"))
            .args(&args)
            .env("DIGITNET_MIRRORS", server.mirror("/mnist/"))
            .env("DIGITNET_CACHE_DIR", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    // The sample is not the official MNIST: a verified download refuses it and keeps nothing.
    let out = run(&[]);
    assert_clean_failure(&out, &["SHA-256 mismatch", "--data-dir"]);
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    // Accepting custom data, all four files arrive and load.
    let out = run(&["--no-verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("downloaded: ").count(), 4);
    let mut expected: Vec<String> = FILES.iter().map(|f| format!("{f}.gz")).collect();
    expected.sort();
    assert_eq!(entries(dir.path()), expected);
    let out = run(&["--no-verify"]);
    assert_eq!(text(&out.stdout).matches("already present: ").count(), 4);
}

#[test]
fn backends_lists_what_is_compiled_and_unknown_backends_are_refused() {
    let out = digitnet(&["backends"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    for kind in digitnet::backend::BackendKind::ALL {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(kind.name()))
            .unwrap_or_else(|| panic!("{kind} missing: {stdout}"));
        assert_eq!(
            !line.contains("not compiled in"),
            kind.is_compiled(),
            "{line}"
        );
    }
    // The CPU backends list the CPU as their device; with no GPU found, flex is the default.
    assert!(stdout.contains("device: cpu 0:"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("flex") && l.contains("the default")),
        "{stdout}"
    );
    let out = digitnet(&["predict", "--backend", "tpu", "x.png"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tpu") && stderr.contains("flex"),
        "{stderr}"
    );
}
