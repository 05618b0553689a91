//! Where a dataset's files come from: an explicit directory, the user's cache, system
//! directories, and finally a verified download from a list of mirrors.

use std::path::{Path, PathBuf};

use crate::download::{self, FileRole};
use crate::error::{DataError, Result};
use crate::spec::{DatasetKind, DatasetSpec, FileSpec};

/// Environment variable naming a directory that holds the IDX files.
pub const DATA_DIR_ENV: &str = "DIGITNET_DATA_DIR";
/// Environment variable overriding the cache root (`<user cache dir>/digitnet` by default).
pub const CACHE_DIR_ENV: &str = "DIGITNET_CACHE_DIR";
/// Environment variable with a comma-separated list of mirror base URLs.
pub const MIRRORS_ENV: &str = "DIGITNET_MIRRORS";
/// Environment variable that, set to `1`, accepts files whose checksums differ from the
/// published ones (custom data in MNIST format), like [`DataSource::verify`]`(false)`.
pub const NO_VERIFY_ENV: &str = "DIGITNET_NO_VERIFY";

/// How to find (and if need be fetch) a dataset's files.
///
/// Files are looked for, raw or `.gz`, in: the explicit data directory (builder argument, or the
/// `DIGITNET_DATA_DIR` environment variable), the cache directory
/// (`<user cache dir>/digitnet/<dataset>`), and system directories (e.g. Debian's Fashion-MNIST
/// package). A file found nowhere is downloaded from the mirrors into the explicit data directory
/// if one was given, else into the cache directory.
#[derive(Debug, Clone)]
pub struct DataSource {
    spec: DatasetSpec,
    data_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    download: bool,
    verify: bool,
}

/// A file located on disk, and whether it had to be downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedFile {
    /// Where the file is.
    pub path: PathBuf,
    /// True when this call downloaded it.
    pub downloaded: bool,
}

impl DataSource {
    /// A source for a built-in dataset, configured from the environment
    /// (`DIGITNET_DATA_DIR`, `DIGITNET_CACHE_DIR`, `DIGITNET_MIRRORS`, `DIGITNET_NO_VERIFY`).
    pub fn new(kind: DatasetKind) -> Self {
        Self::from_spec(kind.spec())
    }

    /// A source for any dataset in MNIST format, configured from the environment.
    pub fn from_spec(mut spec: DatasetSpec) -> Self {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(mirrors) = env(MIRRORS_ENV) {
            spec.mirrors = mirrors
                .to_string_lossy()
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
        }
        let cache_dir = env(CACHE_DIR_ENV)
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("digitnet")))
            .map(|root| root.join(&spec.slug));
        Self {
            data_dir: env(DATA_DIR_ENV).map(PathBuf::from),
            cache_dir,
            spec,
            download: true,
            verify: env(NO_VERIFY_ENV).is_none_or(|v| v != "1"),
        }
    }

    /// Reads the files from `dir` first (and downloads missing ones there).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Uses `dir` as this dataset's cache directory (the files go directly in it).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Replaces the list of mirror base URLs.
    pub fn mirrors(mut self, mirrors: Vec<String>) -> Self {
        self.spec.mirrors = mirrors;
        self
    }

    /// Allows or forbids downloading missing files (allowed by default).
    pub fn download(mut self, allowed: bool) -> Self {
        self.download = allowed;
        self
    }

    /// Whether loading and downloading refuse files whose SHA-256 differs from the published one
    /// (default true). Turn it off to use custom data in the same format.
    pub fn verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }

    /// The dataset this source serves.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// True when checksums are enforced.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// The directories searched, in order.
    pub fn search_dirs(&self) -> Vec<PathBuf> {
        self.data_dir
            .iter()
            .chain(self.cache_dir.iter())
            .chain(self.spec.system_dirs.iter())
            .cloned()
            .collect()
    }

    /// Where downloads go: the explicit data directory, else the cache directory.
    pub fn download_dir(&self) -> Result<PathBuf> {
        self.data_dir
            .clone()
            .or_else(|| self.cache_dir.clone())
            .ok_or(DataError::NoCacheDir)
    }

    /// Finds `file` in the search directories, or downloads it if allowed.
    pub fn locate(&self, file: &FileSpec, role: FileRole) -> Result<LocatedFile> {
        let dirs = self.search_dirs();
        if let Some(path) = dirs.iter().find_map(|dir| find_in(dir, &file.name)) {
            return Ok(LocatedFile {
                path,
                downloaded: false,
            });
        }
        if !self.download {
            return Err(DataError::NotFound {
                file: file.name.clone(),
                searched: describe_dirs(&dirs),
            });
        }
        let dir = self.download_dir()?;
        // Without verification a download is still validated as IDX, but any digest is accepted.
        let unverified;
        let wanted = if self.verify {
            file
        } else {
            unverified = FileSpec::unverified(file.name.clone());
            &unverified
        };
        let path = download::download(wanted, role, &self.spec.mirrors, &dir, &self.spec.name)?;
        Ok(LocatedFile {
            path,
            downloaded: true,
        })
    }

    /// Makes sure all four files are present, downloading the missing ones.
    pub fn fetch_all(&self) -> Result<Vec<LocatedFile>> {
        let spec = &self.spec;
        [
            (&spec.train.images, FileRole::Images),
            (&spec.train.labels, FileRole::Labels),
            (&spec.test.images, FileRole::Images),
            (&spec.test.labels, FileRole::Labels),
        ]
        .into_iter()
        .map(|(file, role)| self.locate(file, role))
        .collect()
    }
}

/// The file `name` or `name.gz` in `dir`, if either exists.
fn find_in(dir: &Path, name: &str) -> Option<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn describe_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directory (none configured)".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_comes_first_and_gz_is_found() {
        let explicit = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(cache.path().join("t10k-labels-idx1-ubyte"), b"c").unwrap();
        let source = DataSource::new(DatasetKind::Mnist)
            .data_dir(explicit.path())
            .cache_dir(cache.path())
            .download(false);
        let spec = source.spec().test.labels.clone();
        let found = source.locate(&spec, FileRole::Labels).unwrap();
        assert_eq!(found.path, cache.path().join("t10k-labels-idx1-ubyte"));
        std::fs::write(explicit.path().join("t10k-labels-idx1-ubyte.gz"), b"e").unwrap();
        let found = source.locate(&spec, FileRole::Labels).unwrap();
        assert_eq!(
            found.path,
            explicit.path().join("t10k-labels-idx1-ubyte.gz")
        );
        assert!(!found.downloaded);
    }

    #[test]
    fn missing_file_without_download_names_file_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let source = DataSource::new(DatasetKind::Mnist)
            .data_dir(dir.path())
            .cache_dir(dir.path().join("cache"))
            .download(false);
        let err = source
            .locate(&source.spec().train.images.clone(), FileRole::Images)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("DIGITNET_DATA_DIR"), "{msg}");
    }
}
