//! The download path against a real HTTP server on 127.0.0.1: good file, bad checksum, 404,
//! truncated body, garbage, first mirror down and second good. A failed download never leaves a
//! file (partial or temporary) behind.

mod common;

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
