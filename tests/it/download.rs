//! The download path against a real HTTP server on 127.0.0.1: good file, bad checksum, 404,
//! truncated body, garbage, first mirror down and second good, a download cut at any point
//! retried on the next mirror, two processes downloading into one directory at once. A failed
//! download never leaves a file (partial or temporary) behind.

use crate::common;

use common::http::{Reply, Server, dead_mirror};
use common::{entries, sample_gz, sample_raw, sample_spec};
use digitnet::data::{DataError, DataSource, FileRole, Mnist};

const LABELS: &str = "t10k-labels-idx1-ubyte";

fn source(server_mirrors: Vec<String>, dir: &std::path::Path) -> DataSource {
    DataSource::from_spec(sample_spec())
        .data_dir(dir)
        .cache_dir(dir.join("unused-cache"))
        .mirrors(server_mirrors)
}

fn fetch_labels(source: &DataSource) -> Result<std::path::PathBuf, DataError> {
    let file = source.spec().test.labels.clone();
    source.locate(&file, FileRole::Labels).map(|f| f.path)
}

#[test]
fn good_file_is_downloaded_verified_and_renamed_into_place() {
    let server = Server::start();
    server.route(&format!("/m/{LABELS}.gz"), Reply::Ok(sample_gz(LABELS)));
    let dir = tempfile::tempdir().unwrap();
    let path = fetch_labels(&source(vec![server.mirror("/m/")], dir.path())).unwrap();
    assert_eq!(path, dir.path().join(format!("{LABELS}.gz")));
    assert_eq!(std::fs::read(&path).unwrap(), sample_gz(LABELS));
    assert_eq!(entries(dir.path()), vec![format!("{LABELS}.gz")]);
}

#[test]
fn whole_dataset_downloads_then_loads_from_disk_without_network() {
    let server = Server::start();
    for name in common::FILES {
        server.route(&format!("/m/{name}.gz"), Reply::Ok(sample_gz(name)));
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(vec![server.mirror("/m/")], dir.path());
    let fetched = src.fetch_all().unwrap();
    assert!(fetched.iter().all(|f| f.downloaded));
    assert_eq!(server.hits().len(), 4);
    // Second time: everything is found locally, nothing is requested.
    let mnist = Mnist::load(&src).unwrap();
    assert_eq!(server.hits().len(), 4);
    assert_eq!(burn::data::dataset::Dataset::len(&mnist.test()), 1000);
}

#[test]
fn checksum_mismatch_is_refused_and_nothing_is_kept() {
    let server = Server::start();
    // A valid IDX labels file, but not the expected one.
    let mut other = sample_raw(LABELS);
    let last = other.len() - 1;
    other[last] = (other[last] + 1) % 10;
    server.route(&format!("/m/{LABELS}.gz"), Reply::Ok(common::gzip(&other)));
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_labels(&source(vec![server.mirror("/m/")], dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::DownloadFailed { .. }), "{msg}");
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");
    assert!(msg.contains("--data-dir"), "offline hint missing: {msg}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn not_found_reports_the_status_and_how_to_work_offline() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_labels(&source(vec![server.mirror("/m/")], dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("404"), "{msg}");
    assert!(msg.contains(&format!("/m/{LABELS}.gz")), "{msg}");
    assert!(msg.contains("DIGITNET_DATA_DIR"), "{msg}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn truncated_body_is_refused_and_leaves_no_partial_file() {
    let server = Server::start();
    let body = sample_gz("t10k-images-idx3-ubyte");
    let sent = body.len() / 2;
    server.route(
        "/m/t10k-images-idx3-ubyte.gz",
        Reply::Truncated { body, sent },
    );
    let dir = tempfile::tempdir().unwrap();
    let src = source(vec![server.mirror("/m/")], dir.path());
    let file = src.spec().test.images.clone();
    let err = src.locate(&file, FileRole::Images).unwrap_err();
    assert!(matches!(err, DataError::DownloadFailed { .. }), "{err}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn garbage_body_is_refused() {
    let server = Server::start();
    server.route(
        &format!("/m/{LABELS}.gz"),
        Reply::Ok(b"<html>mirror moved</html>".to_vec()),
    );
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_labels(&source(vec![server.mirror("/m/")], dir.path())).unwrap_err();
    assert!(err.to_string().contains("wrong magic"), "{err}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn first_mirror_down_second_good() {
    let server = Server::start();
    server.route(&format!("/b/{LABELS}.gz"), Reply::Ok(sample_gz(LABELS)));
    server.route(&format!("/a/{LABELS}.gz"), Reply::Status(503));
    let dir = tempfile::tempdir().unwrap();
    let mirrors = vec![dead_mirror(), server.mirror("/a/"), server.mirror("/b")];
    let path = fetch_labels(&source(mirrors, dir.path())).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), sample_gz(LABELS));
    assert_eq!(
        server.hits(),
        vec![format!("/a/{LABELS}.gz"), format!("/b/{LABELS}.gz")]
    );
    assert_eq!(entries(dir.path()), vec![format!("{LABELS}.gz")]);
}

#[test]
fn every_mirror_down_lists_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dead_mirror(), dead_mirror());
    let err = fetch_labels(&source(vec![a.clone(), b.clone()], dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&a) && msg.contains(&b), "{msg}");
    assert!(msg.contains("offline"), "{msg}");
}

#[test]
fn download_disabled_is_a_clear_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(vec![dead_mirror()], dir.path()).download(false);
    let err = fetch_labels(&src).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err}");
}

#[test]
fn a_download_cut_at_any_point_leaves_nothing_and_the_next_mirror_is_tried() {
    let body = sample_gz(LABELS);
    for sent in [0, 1, 9, 10, body.len() / 3, body.len() / 2, body.len() - 1] {
        let server = Server::start();
        server.route(
            &format!("/a/{LABELS}.gz"),
            Reply::Truncated {
                body: body.clone(),
                sent,
            },
        );
        server.route(&format!("/b/{LABELS}.gz"), Reply::Ok(body.clone()));
        let dir = tempfile::tempdir().unwrap();
        let mirrors = vec![server.mirror("/a/"), server.mirror("/b/")];
        let path = fetch_labels(&source(mirrors, dir.path()))
            .unwrap_or_else(|e| panic!("cut at {sent} bytes: {e}"));
        assert_eq!(std::fs::read(path).unwrap(), body, "cut at {sent}");
        assert_eq!(
            server.hits(),
            vec![format!("/a/{LABELS}.gz"), format!("/b/{LABELS}.gz")],
            "cut at {sent}"
        );
        assert_eq!(
            entries(dir.path()),
            vec![format!("{LABELS}.gz")],
            "cut at {sent}"
        );
    }
}

#[test]
fn two_processes_downloading_into_one_directory_at_once_do_not_corrupt_it() {
    let server = Server::start();
    for name in common::FILES {
        server.route(
            &format!("/m/{name}.gz"),
            Reply::Slow {
                body: sample_gz(name),
                pause_ms: 40,
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_digitnet"))
            .args(["download", "--no-verify", "--data-dir"])
            .arg(dir.path())
            .env("DIGITNET_MIRRORS", server.mirror("/m/"))
            .env("DIGITNET_CACHE_DIR", dir.path().join("cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Both fetched the first file at the same time (each file takes over 600 ms to arrive), and
    // the result is the four whole files, nothing else (no temporary file of either process).
    let hits = server.hits();
    let first = format!("/m/{}.gz", common::FILES[0]);
    assert_eq!(hits.iter().filter(|h| **h == first).count(), 2, "{hits:?}");
    let mut expected: Vec<String> = common::FILES.iter().map(|f| format!("{f}.gz")).collect();
    expected.sort();
    let mut found = entries(dir.path());
    found.retain(|e| e != "cache");
    assert_eq!(found, expected);
    for name in common::FILES {
        assert_eq!(
            std::fs::read(dir.path().join(format!("{name}.gz"))).unwrap(),
            sample_gz(name),
            "{name}"
        );
    }
}
