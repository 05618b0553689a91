//! What a dataset is made of: its four IDX files with their published checksums, its class
//! names, its normalisation constants and where to download it from.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// One IDX file of a dataset: its canonical name and the SHA-256 of its decompressed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Canonical file name without `.gz`, e.g. `train-images-idx3-ubyte`.
    pub name: String,
    /// Lowercase hex SHA-256 of the decompressed file; `None` means "not verified".
    pub sha256: Option<String>,
}

impl FileSpec {
    /// A file with a known checksum.
    pub fn new(name: impl Into<String>, sha256: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sha256: Some(sha256.into()),
        }
    }

    /// A file whose content is not checked against a digest.
    pub fn unverified(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sha256: None,
        }
    }
}

/// The two IDX files of one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitFiles {
    /// The images file (magic 2051).
    pub images: FileSpec,
    /// The labels file (magic 2049).
    pub labels: FileSpec,
}

/// A complete description of an MNIST-format dataset.
///
/// The built-in ones come from [`DatasetKind::spec`]; any other dataset in the same format
/// (28x28 `u8` images, 10 classes, IDX files) can be described with one of these too.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    /// Display name, e.g. `MNIST`.
    pub name: String,
    /// Short name used for the cache subdirectory, e.g. `mnist`.
    pub slug: String,
    /// The training split's files.
    pub train: SplitFiles,
    /// The test split's files.
    pub test: SplitFiles,
    /// The 10 class names, in label order.
    pub class_names: Vec<String>,
    /// Mean pixel value of the training set, on the 0..1 scale.
    pub mean: f32,
    /// Standard deviation of the training pixels, on the 0..1 scale.
    pub std: f32,
    /// Base URLs the `.gz` files are downloaded from, tried in order.
    pub mirrors: Vec<String>,
    /// Directories where the system may already hold the files (e.g. a Debian package).
    pub system_dirs: Vec<PathBuf>,
}

impl DatasetSpec {
    /// All four files: train images, train labels, test images, test labels.
    pub fn files(&self) -> [&FileSpec; 4] {
        [
            &self.train.images,
            &self.train.labels,
            &self.test.images,
            &self.test.labels,
        ]
    }
}

/// The datasets digitnet knows out of the box.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Handwritten digits 0-9 (LeCun, Cortes, Burges).
    #[default]
    Mnist,
    /// Zalando's clothing images, a drop-in replacement for MNIST.
    FashionMnist,
}

impl DatasetKind {
    /// Every built-in dataset.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// The name used on the command line and for the cache directory.
    pub fn slug(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The full description of this dataset.
    pub fn spec(self) -> DatasetSpec {
        match self {
            DatasetKind::Mnist => mnist(),
            DatasetKind::FashionMnist => fashion_mnist(),
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for DatasetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.slug() == s)
            .ok_or_else(|| format!("unknown dataset '{s}' (expected mnist or fashion-mnist)"))
    }
}

fn split(images: (&str, &str), labels: (&str, &str)) -> SplitFiles {
    SplitFiles {
        images: FileSpec::new(images.0, images.1),
        labels: FileSpec::new(labels.0, labels.1),
    }
}

fn mnist() -> DatasetSpec {
    DatasetSpec {
        name: "MNIST".into(),
        slug: "mnist".into(),
        train: split(
            (
                "train-images-idx3-ubyte",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            (
                "train-labels-idx1-ubyte",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
        ),
        test: split(
            (
                "t10k-images-idx3-ubyte",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
        class_names: (0..10).map(|d| d.to_string()).collect(),
        mean: 0.1307,
        std: 0.3081,
        mirrors: vec![
            "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
            "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
        ],
        system_dirs: vec![],
    }
}

fn fashion_mnist() -> DatasetSpec {
    DatasetSpec {
        name: "Fashion-MNIST".into(),
        slug: "fashion-mnist".into(),
        train: split(
            (
                "train-images-idx3-ubyte",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            (
                "train-labels-idx1-ubyte",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
        ),
        test: split(
            (
                "t10k-images-idx3-ubyte",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        ),
        class_names: [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        mean: 0.2860,
        std: 0.3530,
        mirrors: vec![
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into(),
            "https://ossci-datasets.s3.amazonaws.com/fashion-mnist/".into(),
        ],
        // Debian's `dataset-fashion-mnist` package.
        system_dirs: vec![PathBuf::from("/usr/share/datasets/fashion-mnist")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_slugs() {
        for kind in DatasetKind::ALL {
            assert_eq!(kind.slug().parse::<DatasetKind>().unwrap(), kind);
            let spec = kind.spec();
            assert_eq!(spec.slug, kind.slug());
            assert_eq!(spec.class_names.len(), 10);
            assert!(
                spec.files()
                    .iter()
                    .all(|f| f.sha256.as_ref().unwrap().len() == 64)
            );
        }
        assert!("emnist".parse::<DatasetKind>().is_err());
    }
}
