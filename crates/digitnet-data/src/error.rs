//! The data crate's error type: every failure names the file (or URL) and what is wrong with it.

use std::path::PathBuf;

/// Everything that can go wrong while finding, downloading, verifying or parsing dataset files.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed at the OS level.
    #[error("{path}: {action} failed: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done ("open", "read", "write", ...).
        action: &'static str,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },

    /// The file starts with the gzip magic bytes but does not decompress.
    #[error("{path}: not a valid gzip stream: {source}")]
    Gzip {
        /// The file concerned.
        path: PathBuf,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },

    /// The IDX magic number is not the one expected for this kind of file.
    #[error(
        "{path}: wrong magic number 0x{found:08x} (expected 0x{expected:08x}, an IDX {what} file)"
    )]
    BadMagic {
        /// The file concerned.
        path: PathBuf,
        /// The magic number read from the file.
        found: u32,
        /// The magic number an IDX file of this kind must have.
        expected: u32,
        /// "images" or "labels".
        what: &'static str,
    },

    /// The image dimensions in the IDX header are not 28x28.
    #[error("{path}: images are {rows}x{cols}, expected 28x28")]
    BadDims {
        /// The file concerned.
        path: PathBuf,
        /// Rows per image, as stated by the header.
        rows: u32,
        /// Columns per image, as stated by the header.
        cols: u32,
    },

    /// The file is shorter than its header says, or has bytes left over after the data.
    #[error("{path}: {problem}: the header promises {expected} bytes, the file holds {actual}")]
    BadLength {
        /// The file concerned.
        path: PathBuf,
        /// "truncated" or "trailing bytes after the data".
        problem: &'static str,
        /// File size (decompressed) implied by the header.
        expected: u64,
        /// File size (decompressed) actually found, or at least this many bytes when too long.
        actual: u64,
    },

    /// A label byte is not a class index 0..=9.
    #[error("{path}: label #{index} is {value}, expected a class 0..=9")]
    BadLabel {
        /// The labels file concerned.
        path: PathBuf,
        /// Index of the offending label.
        index: usize,
        /// The value found.
        value: u8,
    },

    /// The image and label files of one split hold different numbers of items.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Number of images in it.
        image_count: usize,
        /// The labels file.
        labels: PathBuf,
        /// Number of labels in it.
        label_count: usize,
    },

    /// A file's SHA-256 (of its decompressed content) is not the published one.
    #[error(
        "{path}: SHA-256 mismatch (expected {expected}, got {actual}); the file is corrupt or is not \
         the official {dataset} file{hint}"
    )]
    ChecksumMismatch {
        /// The file (or download) concerned.
        path: PathBuf,
        /// The dataset's display name.
        dataset: String,
        /// The published digest, hex.
        expected: String,
        /// The digest of what was read, hex.
        actual: String,
        /// Extra advice, e.g. how to accept custom data.
        hint: &'static str,
    },

    /// A file is in none of the searched directories and downloading is turned off.
    #[error(
        "{file} not found in {searched}; downloading is disabled. Put the IDX files (raw or .gz) in a \
         directory and pass it with --data-dir or DIGITNET_DATA_DIR"
    )]
    NotFound {
        /// The canonical file name, e.g. `train-images-idx3-ubyte`.
        file: String,
        /// The directories searched, comma-separated.
        searched: String,
    },

    /// Every mirror failed for a file.
    #[error(
        "could not download {file}: {attempts}. To work offline, download the four IDX files of \
         {dataset} elsewhere and put them (raw or .gz) in a directory passed with --data-dir or \
         DIGITNET_DATA_DIR, or in {target}"
    )]
    DownloadFailed {
        /// The file name that was requested.
        file: String,
        /// The dataset's display name.
        dataset: String,
        /// What happened at each mirror, `url: error` joined by "; ".
        attempts: String,
        /// Where the download would have been stored.
        target: PathBuf,
    },

    /// The header announces more items than digitnet will hold in memory.
    #[error("{path}: the header announces {count} items, more than the supported {max}")]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Item count stated by the header.
        count: u64,
        /// The largest count accepted.
        max: u64,
    },

    /// No directory could be chosen to store downloads in.
    #[error("no cache directory is known on this system; pass --data-dir or set DIGITNET_DATA_DIR")]
    NoCacheDir,

    /// An augmentation bound is out of range (e.g. a negative scale, a rotation over 180).
    #[error("augmentation: {0}")]
    InvalidAugment(String),

    /// A split or range request does not fit the data (e.g. a validation split larger than train).
    #[error("{0}")]
    InvalidSplit(String),

    /// A picture to recognise cannot be used (empty, not an image, too large, undecodable, blank).
    #[error("{path}: {message}")]
    BadImage {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// Writing a PNG (e.g. a sample grid) failed.
    #[error("{path}: cannot write image: {message}")]
    Image {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl DataError {
    /// Wraps an [`std::io::Error`] with the path and the action that failed.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
