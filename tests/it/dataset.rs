//! Loading the committed real-MNIST sample: strict verification, splits, items, batching through
//! Burn's data loader, and clear errors (naming the file) for every kind of corrupted copy.

#![cfg(feature = "ndarray")]

use crate::common;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use common::{FILES, sample_copy_with, sample_dir, sample_raw, sample_spec};
use digitnet::backend::NdArray;
use digitnet::data::{
    ChecksumStatus, DataError, DataSource, DatasetKind, IMAGE_PIXELS, Mnist, MnistBatcher, Split,
};

fn strict_sample() -> DataSource {
    DataSource::from_spec(sample_spec())
        .data_dir(sample_dir())
        .download(false)
}

fn load_copy(dir: &std::path::Path) -> Result<Mnist, DataError> {
    Mnist::load(
        &DataSource::new(DatasetKind::Mnist)
            .data_dir(dir)
            .cache_dir(dir.join("cache"))
            .download(false)
            .verify(false),
    )
}

#[test]
fn sample_loads_with_strict_checksums_and_default_validation_split() {
    let mnist = Mnist::load(&strict_sample()).unwrap();
    assert!(
        mnist
            .files()
            .iter()
            .all(|f| f.status == ChecksumStatus::Verified)
    );
    // Validation: min(5000, train/10) = 200 for the 2,000-image sample.
    assert_eq!(mnist.train().len(), 1800);
    assert_eq!(mnist.valid().len(), 200);
    assert_eq!(mnist.test().len(), 1000);
    let histogram = mnist.test().label_histogram();
    assert_eq!(histogram.iter().sum::<usize>(), 1000);
    assert!(histogram.iter().all(|&c| c > 50), "{histogram:?}");
}

#[test]
fn official_checksums_refuse_the_sample_unless_verification_is_off() {
    let official = DataSource::new(DatasetKind::Mnist)
        .data_dir(sample_dir())
        .download(false);
    let err = Mnist::load(&official).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{msg}");
    assert!(
        msg.contains("mnist-sample")
            && msg.contains("SHA-256 mismatch (expected")
            && msg.contains("--no-verify"),
        "{msg}"
    );
    let mnist = Mnist::load(&official.verify(false)).unwrap();
    assert!(
        mnist
            .files()
            .iter()
            .all(|f| matches!(f.status, ChecksumStatus::Mismatch { .. }))
    );
}

#[test]
fn items_are_the_files_bytes_and_splits_partition_the_training_set() {
    let mnist = Mnist::load(&strict_sample())
        .unwrap()
        .with_validation_size(500)
        .unwrap();
    let raw_images = sample_raw("train-images-idx3-ubyte");
    let raw_labels = sample_raw("train-labels-idx1-ubyte");
    let (train, valid) = (mnist.train(), mnist.valid());
    assert_eq!((train.len(), valid.len()), (1500, 500));
    let first_valid = valid.get(0).unwrap();
    assert_eq!(
        first_valid.image[..],
        raw_images[16 + 1500 * IMAGE_PIXELS..][..IMAGE_PIXELS]
    );
    assert_eq!(first_valid.label, raw_labels[8 + 1500]);
    let last_train = train.get(1499).unwrap();
    assert_eq!(last_train.label, raw_labels[8 + 1499]);
    assert!(train.get(1500).is_none() && valid.get(500).is_none());
    // The sample starts like MNIST itself: 5 0 4 1 9 2 1 3 1 4.
    assert_eq!(train.labels()[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(mnist.split(Split::Test).label(0), Some(7));
}

#[test]
fn validation_size_zero_is_allowed_and_too_large_is_an_error() {
    let mnist = Mnist::load(&strict_sample()).unwrap();
    let all = mnist.clone().with_validation_size(0).unwrap();
    assert_eq!((all.train().len(), all.valid().len()), (2000, 0));
    let err = mnist.with_validation_size(2000).unwrap_err();
    assert!(err.to_string().contains("validation size 2000"), "{err}");
}

#[test]
fn shuffled_batches_cover_the_split_once_with_normalised_images() {
    let mnist = Mnist::load(&strict_sample()).unwrap();
    let loader = DataLoaderBuilder::<NdArray, _, _>::new(MnistBatcher::default())
        .batch_size(64)
        .shuffle(42)
        .build(mnist.test());
    let mut seen = [0usize; 10];
    let mut batches = 0;
    let mut first_targets = None;
    for batch in loader.iter() {
        assert_eq!(batch.images.dims()[1..], [1, 28, 28]);
        let targets: Vec<i64> = batch.targets.into_data().convert::<i64>().to_vec().unwrap();
        first_targets.get_or_insert(targets.clone());
        for t in targets {
            seen[t as usize] += 1;
        }
        let values: Vec<f32> = batch.images.into_data().to_vec().unwrap();
        let min = values.iter().cloned().fold(f32::INFINITY, f32::min);
        assert!((min - (0.0 - 0.1307) / 0.3081).abs() < 1e-5);
        batches += 1;
    }
    assert_eq!(batches, 1000usize.div_ceil(64));
    assert_eq!(seen, mnist.test().label_histogram());
    // Shuffled: not the file order.
    let in_order: Vec<i64> = mnist.test().labels()[..64]
        .iter()
        .map(|&l| l.into())
        .collect();
    assert_ne!(first_targets.unwrap(), in_order);
}

#[test]
fn truncated_images_file_names_the_file() {
    let raw = sample_raw("t10k-images-idx3-ubyte");
    let dir = sample_copy_with("t10k-images-idx3-ubyte", &raw[..raw.len() - 100]);
    let msg = load_copy(dir.path()).unwrap_err().to_string();
    // 1,000 images: a 16-byte header and 784,000 pixels, less the 100 bytes cut off.
    assert!(
        msg.contains(
            "t10k-images-idx3-ubyte: truncated: the header promises 784016 bytes, the file holds 783916"
        ),
        "{msg}"
    );
}

#[test]
fn wrong_magic_names_the_file() {
    // Labels where images are expected.
    let dir = sample_copy_with(
        "train-images-idx3-ubyte",
        &sample_raw("train-labels-idx1-ubyte"),
    );
    let err = load_copy(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "train-images-idx3-ubyte: wrong magic number 0x00000801 (expected 0x00000803, an IDX images file)"
        ),
        "{err}"
    );
}

#[test]
fn count_mismatch_names_both_files() {
    let mut labels = sample_raw("t10k-labels-idx1-ubyte");
    labels.truncate(labels.len() - 1);
    labels[4..8].copy_from_slice(&999u32.to_be_bytes());
    let dir = sample_copy_with("t10k-labels-idx1-ubyte", &labels);
    let err = load_copy(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                image_count: 1000,
                label_count: 999,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("t10k-images-idx3-ubyte holds 1000 images but")
            && msg.contains("t10k-labels-idx1-ubyte holds 999 labels"),
        "{msg}"
    );
}

#[test]
fn wrong_dims_and_gzip_garbage_and_empty_files_are_errors() {
    let mut images = sample_raw("t10k-images-idx3-ubyte");
    images[8..12].copy_from_slice(&32u32.to_be_bytes());
    let dir = sample_copy_with("t10k-images-idx3-ubyte", &images);
    let err = load_copy(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::BadDims { rows: 32, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("t10k-images-idx3-ubyte: images are 32x28, expected 28x28"),
        "{err}"
    );

    let gz = common::gzip(&sample_raw("t10k-labels-idx1-ubyte"));
    let dir = sample_copy_with("t10k-labels-idx1-ubyte", &gz[..gz.len() / 2]);
    let msg = load_copy(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte"), "{msg}");
    let dir = sample_copy_with("t10k-labels-idx1-ubyte", b"\x1f\x8bnot really gzip");
    let msg = load_copy(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte: not a valid gzip stream"),
        "{msg}"
    );

    let dir = sample_copy_with("train-labels-idx1-ubyte", b"");
    let msg = load_copy(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains(
            "train-labels-idx1-ubyte: truncated header: the header promises 8 bytes, the file holds 0"
        ),
        "{msg}"
    );
}

#[test]
fn missing_file_names_it() {
    let dir = sample_copy_with(FILES[0], &sample_raw(FILES[0]));
    std::fs::remove_file(dir.path().join(FILES[3])).unwrap();
    let err = load_copy(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte not found in")
            && msg.contains("downloading is disabled")
            && msg.contains("--data-dir or DIGITNET_DATA_DIR"),
        "{msg}"
    );
}
