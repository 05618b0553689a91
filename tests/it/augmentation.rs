//! Augmentation through the product's paths: `digitnet_train::train` distorts the training
//! images only (the Learner's validation figures equal an evaluation of the plain hold-out), the
//! identity setting changes nothing, `digitnet train --augment SPEC` saves the spec and resumes
//! with it, bad specs are one clear line, and `digitnet show --augment` draws exactly what the
//! first training epoch sees.

#![cfg(feature = "flex")]

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use burn::backend::Autodiff;
use digitnet::backend::Flex;
use digitnet::data::grid::{self, GridCell, INK};
use digitnet::data::{AugmentConfig, Augmenter, MnistBatcher, Split};
use digitnet::model::Preset;
use digitnet::train::{EpochRecord, ProgressMode, TrainOptions, TrainingConfig, evaluate, train};

type AD = Autodiff<Flex>;

fn digitnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(args)
        .args(["--offline", "--no-verify", "--data-dir"])
        .arg(common::sample_dir())
        .env_remove("DIGITNET_DATA_DIR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Two epochs of MLP A on 1,000 sample images with `augment`; the run's records and the
/// plain hold-out's evaluation by the trained model.
fn run(augment: Option<AugmentConfig>, dir: &Path) -> (Vec<EpochRecord>, f64) {
    let data = common::sample();
    let config = TrainingConfig::for_preset(Preset::MlpA)
        .with_epochs(2)
        .with_limit_train(Some(1000))
        .with_augment(augment);
    let mut options = TrainOptions::new(dir);
    options.progress = ProgressMode::Quiet;
    let model = config
        .digit_model()
        .unwrap()
        .init(&Default::default())
        .unwrap();
    let outcome = train::<AD, _>(model, &config, &data, &options, &Default::default()).unwrap();
    // The config leaves the hold-out to the data's default, so the run validated on `data.valid()`.
    let valid = evaluate(
        &outcome.model,
        &data.valid(),
        &MnistBatcher::for_dataset(data.spec()),
        500,
        &Default::default(),
    );
    (outcome.history, valid.accuracy)
}

/// The augmentation in the artifact directory's config.json.
fn saved_augment(dir: &str) -> Option<AugmentConfig> {
    digitnet::train::model_io::load_config(&digitnet::train::ArtifactDir::new(dir))
        .unwrap()
        .augment
}

fn figures(history: &[EpochRecord], split: Split) -> Vec<(f64, f64)> {
    history
        .iter()
        .filter(|r| r.split == split)
        .map(|r| (r.loss, r.accuracy))
        .collect()
}

#[test]
fn training_distorts_the_training_images_only_and_the_identity_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, _) = run(None, &dir.path().join("plain"));
    let (identity, _) = run(
        Some(AugmentConfig::identity()),
        &dir.path().join("identity"),
    );
    let (augmented, valid) = run(Some(AugmentConfig::new()), &dir.path().join("augmented"));
    assert_eq!(
        figures(&plain, Split::Train),
        figures(&identity, Split::Train)
    );
    assert_eq!(
        figures(&plain, Split::Valid),
        figures(&identity, Split::Valid)
    );
    let (plain_train, augmented_train) = (
        figures(&plain, Split::Train),
        figures(&augmented, Split::Train),
    );
    println!("train loss, accuracy: plain {plain_train:?}, augmented {augmented_train:?}");
    // Distorted digits are harder to fit: the augmented run's training loss is higher.
    assert!(
        augmented_train[1].0 > plain_train[1].0,
        "{augmented_train:?} {plain_train:?}"
    );
    // The Learner's last validation accuracy is that of the undistorted hold-out.
    let last = figures(&augmented, Split::Valid)[1].1;
    assert!((last - valid).abs() < 1e-9, "{last} vs {valid}");
}

#[test]
fn train_saves_the_augment_spec_and_a_bad_one_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("run");
    let artifacts = artifacts.to_str().unwrap();
    let args = [
        "train",
        "--model",
        "mlp",
        "--limit-train",
        "640",
        "--epochs",
        "1",
    ];
    let spec = [
        "--augment",
        "rotation=15,scale=0.8:1.2,elastic=34:3",
        "--artifacts",
        artifacts,
    ];
    let out = digitnet(&[&args[..], &spec[..], &["--progress", "quiet"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = AugmentConfig::new()
        .with_rotation(15.0)
        .with_scale_min(0.8)
        .with_scale_max(1.2)
        .with_elastic_alpha(34.0)
        .with_elastic_sigma(3.0);
    assert_eq!(saved_augment(artifacts), Some(expected.clone()));
    let resumed = digitnet(&[
        "train",
        "--resume",
        "--epochs",
        "2",
        "--artifacts",
        artifacts,
        "--progress",
        "quiet",
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(saved_augment(artifacts), Some(expected));

    for (spec, expected) in [
        ("rotation=200", "rotation must be 0 to 180 degrees"),
        ("scale=-1:1", "scale_min must be above 0"),
        ("zoom=2", "unknown key `zoom`"),
        ("shear=big", "`big` is not a number"),
        ("rotation", "`rotation`: expected key=value"),
    ] {
        let out = digitnet(&[
            "train",
            "--model",
            "mlp",
            "--augment",
            spec,
            "--artifacts",
            artifacts,
        ]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{spec}");
        assert!(stderr.contains(expected), "{spec}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn show_augment_draws_what_the_first_epoch_sees() {
    let dir = tempfile::tempdir().unwrap();
    let draw = |name: &str, augment: &[&str]| -> Vec<u8> {
        let png = dir.path().join(name);
        let args = [
            "show",
            "--count",
            "6",
            "--start",
            "4",
            "--columns",
            "3",
            "--scale",
            "1",
        ];
        let out = digitnet(&[&args[..], augment, &["--out", png.to_str().unwrap()]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::read(png).unwrap()
    };
    let plain = draw("plain.png", &[]);
    let identity = draw(
        "identity.png",
        &["--augment", "rotation=0,translation=0,scale=1,shear=0"],
    );
    let augmented = draw("augmented.png", &["--augment"]);
    assert_eq!(plain, identity);
    assert_ne!(plain, augmented);

    let data = common::sample();
    let train = data.train();
    let augmenter = Augmenter::new(AugmentConfig::new(), 42).unwrap();
    let images: Vec<_> = (4..10)
        .map(|i| augmenter.augment(train.image(i).unwrap(), i, 0))
        .collect();
    let cells: Vec<GridCell> = (4..10)
        .zip(&images)
        .map(|(i, pixels)| GridCell {
            pixels,
            caption: data.spec().class_names[usize::from(train.label(i).unwrap())].clone(),
            color: INK,
        })
        .collect();
    let expected = grid::render_grid(&cells, 3, 1);
    let drawn = image::load_from_memory(&augmented).unwrap().to_rgb8();
    assert_eq!(drawn, expected);
}
