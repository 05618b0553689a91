//! The loaded dataset: train / validation / test splits as Burn [`Dataset`]s over shared `u8`
//! pixel buffers (the 60,000 training images take 47 MB; no split copies them).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use burn::data::dataset::Dataset;

use crate::download::FileRole;
use crate::error::{DataError, Result};
use crate::idx::{self, IMAGE_PIXELS, NUM_CLASSES};
use crate::source::DataSource;
use crate::spec::{DatasetSpec, FileSpec, SplitFiles};

/// Default number of training images held out (from the end of the training set) for validation.
pub const DEFAULT_VALIDATION_SIZE: usize = 5_000;

/// One example: a 28x28 image (row-major, 0 = background) and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistItem {
    /// Pixel values, 0..=255.
    pub image: [u8; IMAGE_PIXELS],
    /// Class index, 0..=9.
    pub label: u8,
}

/// The three splits of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    /// The training images minus the validation hold-out.
    Train,
    /// The hold-out carved from the end of the training images.
    Valid,
    /// The official test set.
    Test,
}

impl Split {
    /// Every split, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// Lowercase name: `train`, `valid` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown split '{s}' (expected train, valid or test)"))
    }
}

/// How a file's content compared with its published checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// The SHA-256 matches the published one.
    Verified,
    /// The SHA-256 differs (only possible when verification is off).
    Mismatch {
        /// The published digest.
        expected: String,
    },
    /// No published digest is known for this file.
    Unknown,
}

/// What was read from one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file's canonical name.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Hex SHA-256 of the decompressed content.
    pub sha256: String,
    /// Comparison with the published digest.
    pub status: ChecksumStatus,
}

/// A dataset in memory: the full training set, the test set, and a validation size.
#[derive(Debug, Clone)]
pub struct Mnist {
    spec: DatasetSpec,
    train: SplitData,
    test: SplitData,
    validation_size: usize,
    files: Vec<FileReport>,
}

#[derive(Debug, Clone)]
struct SplitData {
    images: Arc<[u8]>,
    labels: Arc<[u8]>,
}

impl SplitData {
    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl Mnist {
    /// Finds (or downloads), parses and verifies the four files of `source`'s dataset.
    ///
    /// The validation split is the last [`DEFAULT_VALIDATION_SIZE`] training images, or fewer
    /// when the training set is small (never more than a tenth of it); change it with
    /// [`Mnist::with_validation_size`].
    pub fn load(source: &DataSource) -> Result<Self> {
        let spec = source.spec();
        let (train, test) = std::thread::scope(|s| {
            let train = s.spawn(|| load_split(source, &spec.train));
            let test = load_split(source, &spec.test);
            let train = train
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (train, test)
        });
        let (train, mut files) = train?;
        let (test, test_files) = test?;
        files.extend(test_files);
        let validation_size = DEFAULT_VALIDATION_SIZE.min(train.len() / 10);
        Ok(Self {
            spec: spec.clone(),
            train,
            test,
            validation_size,
            files,
        })
    }

    /// Holds out the last `size` training images as the validation split (0 allowed).
    pub fn with_validation_size(mut self, size: usize) -> Result<Self> {
        if size >= self.train.len() {
            return Err(DataError::InvalidSplit(format!(
                "validation size {size} must be smaller than the training set ({} images)",
                self.train.len()
            )));
        }
        self.validation_size = size;
        Ok(self)
    }

    /// The dataset's description.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// What was read from each of the four files, with checksum status.
    pub fn files(&self) -> &[FileReport] {
        &self.files
    }

    /// Number of training images held out for validation.
    pub fn validation_size(&self) -> usize {
        self.validation_size
    }

    /// One split as a Burn dataset (cheap: shares the loaded buffers).
    pub fn split(&self, split: Split) -> MnistSplit {
        let train_len = self.train.len() - self.validation_size;
        let (data, start, len) = match split {
            Split::Train => (&self.train, 0, train_len),
            Split::Valid => (&self.train, train_len, self.validation_size),
            Split::Test => (&self.test, 0, self.test.len()),
        };
        MnistSplit {
            split,
            images: Arc::clone(&data.images),
            labels: Arc::clone(&data.labels),
            start,
            len,
        }
    }

    /// The training split (the training images minus the validation hold-out).
    pub fn train(&self) -> MnistSplit {
        self.split(Split::Train)
    }

    /// The validation split.
    pub fn valid(&self) -> MnistSplit {
        self.split(Split::Valid)
    }

    /// The test split.
    pub fn test(&self) -> MnistSplit {
        self.split(Split::Test)
    }
}

fn load_split(source: &DataSource, files: &SplitFiles) -> Result<(SplitData, Vec<FileReport>)> {
    let images_path = source.locate(&files.images, FileRole::Images)?.path;
    let labels_path = source.locate(&files.labels, FileRole::Labels)?.path;
    let images = idx::read_images(&images_path)?;
    let labels = idx::read_labels(&labels_path)?;
    if images.count != labels.labels.len() {
        return Err(DataError::CountMismatch {
            images: images_path,
            image_count: images.count,
            labels: labels_path,
            label_count: labels.labels.len(),
        });
    }
    let reports = vec![
        check(source, &files.images, images_path, &images.sha256)?,
        check(source, &files.labels, labels_path, &labels.sha256)?,
    ];
    let data = SplitData {
        images: images.pixels.into(),
        labels: labels.labels.into(),
    };
    Ok((data, reports))
}

fn check(
    source: &DataSource,
    file: &FileSpec,
    path: PathBuf,
    digest: &idx::Sha256Digest,
) -> Result<FileReport> {
    let actual = idx::hex(digest);
    let status = match &file.sha256 {
        None => ChecksumStatus::Unknown,
        Some(expected) if expected.eq_ignore_ascii_case(&actual) => ChecksumStatus::Verified,
        Some(expected) if source.verifies() => {
            return Err(DataError::ChecksumMismatch {
                path,
                dataset: source.spec().name.clone(),
                expected: expected.clone(),
                actual,
                hint: " (to use custom data in this format, pass --no-verify / DataSource::verify(false))",
            });
        }
        Some(expected) => ChecksumStatus::Mismatch {
            expected: expected.clone(),
        },
    };
    Ok(FileReport {
        name: file.name.clone(),
        path,
        sha256: actual,
        status,
    })
}

/// One split of a dataset, implementing Burn's [`Dataset`] over [`MnistItem`]s.
#[derive(Debug, Clone)]
pub struct MnistSplit {
    split: Split,
    images: Arc<[u8]>,
    labels: Arc<[u8]>,
    start: usize,
    len: usize,
}

impl MnistSplit {
    /// Which split this is.
    pub fn kind(&self) -> Split {
        self.split
    }

    /// The pixels of image `index` (784 bytes), without copying.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        (index < self.len).then(|| {
            let at = (self.start + index) * IMAGE_PIXELS;
            &self.images[at..at + IMAGE_PIXELS]
        })
    }

    /// The pixels of images `range` (784 bytes each, contiguous), without copying.
    pub fn images(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        (range.start <= range.end && range.end <= self.len).then(|| {
            &self.images
                [(self.start + range.start) * IMAGE_PIXELS..(self.start + range.end) * IMAGE_PIXELS]
        })
    }

    /// The class of item `index`.
    pub fn label(&self, index: usize) -> Option<u8> {
        (index < self.len).then(|| self.labels[self.start + index])
    }

    /// All labels of this split, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels[self.start..self.start + self.len]
    }

    /// How many items of each class this split holds.
    pub fn label_histogram(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &label in self.labels() {
            counts[usize::from(label)] += 1;
        }
        counts
    }

    /// Mean and standard deviation of all pixels, on the 0..1 scale (the normalisation constants).
    pub fn pixel_mean_std(&self) -> (f64, f64) {
        let pixels =
            &self.images[self.start * IMAGE_PIXELS..(self.start + self.len) * IMAGE_PIXELS];
        let mut histogram = [0u64; 256];
        for &p in pixels {
            histogram[usize::from(p)] += 1;
        }
        let n = pixels.len().max(1) as f64;
        let mean = histogram
            .iter()
            .enumerate()
            .map(|(v, &c)| v as f64 / 255.0 * c as f64)
            .sum::<f64>()
            / n;
        let var = histogram
            .iter()
            .enumerate()
            .map(|(v, &c)| (v as f64 / 255.0 - mean).powi(2) * c as f64)
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }
}

impl Dataset<MnistItem> for MnistSplit {
    fn get(&self, index: usize) -> Option<MnistItem> {
        let pixels = self.image(index)?;
        let mut image = [0u8; IMAGE_PIXELS];
        image.copy_from_slice(pixels);
        Some(MnistItem {
            image,
            label: self.labels[self.start + index],
        })
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_round_trip() {
        for s in Split::ALL {
            assert_eq!(s.name().parse::<Split>().unwrap(), s);
        }
        assert!("validation".parse::<Split>().is_err());
    }
}
