//! Verified downloads from a list of mirrors: streamed to a temporary file, checked (IDX header
//! and SHA-256 of the decompressed content) and only then renamed into place.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::atomic;
use crate::error::{DataError, Result};
use crate::idx;
use crate::spec::FileSpec;

/// The largest body accepted from a mirror (the biggest MNIST file is under 10 MB gzip'd).
pub const MAX_DOWNLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// Whether a file holds images or labels, which decides how it is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// An IDX images file.
    Images,
    /// An IDX labels file.
    Labels,
}

/// Parses an IDX stream of the given role and returns the hex SHA-256 of its decompressed
/// content; `name` only labels errors.
fn parse_digest(source: impl std::io::Read, role: FileRole, name: &Path) -> Result<String> {
    let digest = match role {
        FileRole::Images => idx::parse_images(source, name)?.sha256,
        FileRole::Labels => idx::parse_labels(source, name)?.sha256,
    };
    Ok(idx::hex(&digest))
}

/// Downloads `file` (as `<mirror>/<name>.gz`) into `dir`, trying each mirror in turn.
///
/// The body is streamed to a temporary file in `dir`; it is renamed to `<name>.gz` only after it
/// parsed as a valid IDX file whose checksum matches `file.sha256`. Whatever fails, nothing
/// partial is left behind and the next mirror is tried. Returns the final path.
pub fn download(
    file: &FileSpec,
    role: FileRole,
    mirrors: &[String],
    dir: &Path,
    dataset: &str,
) -> Result<PathBuf> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(600)))
        .user_agent(concat!("digitnet/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let target = dir.join(format!("{}.gz", file.name));
    let mut attempts = Vec::new();
    for mirror in mirrors {
        let url = format!("{}/{}.gz", mirror.trim_end_matches('/'), file.name);
        match try_mirror(&agent, &url, file, role, &target, dataset) {
            Ok(()) => return Ok(target),
            Err(e) => attempts.push(format!("{url}: {e}")),
        }
    }
    if attempts.is_empty() {
        attempts.push("no mirrors configured".into());
    }
    Err(DataError::DownloadFailed {
        file: file.name.clone(),
        dataset: dataset.to_string(),
        attempts: attempts.join("; "),
        target: dir.to_path_buf(),
    })
}

fn try_mirror(
    agent: &ureq::Agent,
    url: &str,
    file: &FileSpec,
    role: FileRole,
    target: &Path,
    dataset: &str,
) -> std::result::Result<(), String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut body = response
        .into_body()
        .into_with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .reader();
    let mut temp = atomic::temp_beside(target).map_err(|e| e.to_string())?;
    std::io::copy(&mut body, temp.as_file_mut()).map_err(|e| format!("transfer failed: {e}"))?;
    temp.as_file_mut()
        .seek(SeekFrom::Start(0))
        .map_err(|e| e.to_string())?;
    let actual = parse_digest(temp.as_file(), role, Path::new(url)).map_err(|e| e.to_string())?;
    if let Some(expected) = &file.sha256
        && !expected.eq_ignore_ascii_case(&actual)
    {
        return Err(DataError::ChecksumMismatch {
            path: PathBuf::from(url),
            dataset: dataset.to_string(),
            expected: expected.clone(),
            actual,
            hint: "; refused",
        }
        .to_string());
    }
    atomic::persist(temp, target).map_err(|e| e.to_string())
}
