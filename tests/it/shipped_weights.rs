//! The weights shipped in the binary: they load with no artifacts and no download, and they
//! read handwritten digits from PNG files the way a user makes them (enlarged, black ink on
//! white paper).

#![cfg(feature = "flex")]

use crate::common;

use std::process::Command;

use burn::module::Module;
use digitnet::backend::Flex;
use digitnet::data::preprocess::load_digit;
use digitnet::data::{DataSource, IMAGE_PIXELS, Mnist, MnistBatcher};
use digitnet::model::Preset;
use digitnet::train::{ImageClassifier, evaluate, evaluate_with_logits, predict};

/// Test image `index` of the sample, enlarged `scale` times and inverted to black on white.
fn user_style_png(index: usize, scale: u32, dir: &std::path::Path) -> (std::path::PathBuf, usize) {
    let images = common::sample_raw("t10k-images-idx3-ubyte");
    let labels = common::sample_raw("t10k-labels-idx1-ubyte");
    let pixels = &images[16 + index * IMAGE_PIXELS..16 + (index + 1) * IMAGE_PIXELS];
    let small = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([255 - pixels[(y * 28 + x) as usize]])
    });
    let big = image::imageops::resize(
        &small,
        28 * scale,
        28 * scale,
        image::imageops::FilterType::Triangle,
    );
    let path = dir.join(format!("digit-{index}.png"));
    big.save(&path).unwrap();
    (path, usize::from(labels[8 + index]))
}

#[test]
fn shipped_model_is_the_default_cnn_and_is_accurate_on_the_sample() {
    let device = Default::default();
    let (config, model) = digitnet::shipped::load::<Flex>(&device).unwrap();
    assert_eq!(config.model, Some(Preset::CnnBn.config()));
    assert_eq!(model.num_params(), 242_218);
    let data = Mnist::load(
        &DataSource::from_spec(common::sample_spec())
            .data_dir(common::sample_dir())
            .download(false),
    )
    .unwrap();
    let eval = evaluate(
        &model,
        &data.test(),
        &MnistBatcher::for_dataset(data.spec()),
        500,
        &device,
    );
    assert!(
        eval.accuracy > 0.985,
        "shipped model: {} on the sample test set",
        eval.accuracy
    );
    // The same pass, keeping the raw scores: the same evaluation, and the model's own logits.
    let batcher = MnistBatcher::for_dataset(data.spec());
    let (again, logits) = evaluate_with_logits(&model, &data.test(), &batcher, 500, &device);
    assert_eq!(again, eval);
    assert_eq!(logits.len(), eval.count * 10);
    let first: Vec<f32> = model
        .logits(batcher.images::<Flex>(data.test().images(0..500).unwrap(), &device))
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(logits[..5000], first[..]);
}

#[test]
fn enlarged_inverted_pngs_of_test_images_are_read_correctly() {
    let device = Default::default();
    let (_, model) = digitnet::shipped::load::<Flex>(&device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<_> = (0..20).map(|i| user_style_png(i, 10, dir.path())).collect();
    let digits: Vec<_> = cases.iter().map(|(p, _)| load_digit(p).unwrap()).collect();
    let predictions = predict(&model, &digits, &MnistBatcher::default(), &device);
    for ((path, label), p) in cases.iter().zip(&predictions) {
        assert_eq!(
            p.digit,
            *label,
            "{} read as {} ({:?})",
            path.display(),
            p.digit,
            p.probabilities
        );
    }
}

#[test]
fn cli_predict_without_artifacts_uses_the_shipped_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (png, label) = user_style_png(0, 8, dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .arg("predict")
        .arg(&png)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = stdout.trim().split(' ').collect();
    assert_eq!(fields[1], label.to_string(), "{stdout}");
    assert!(fields[2].parse::<f64>().unwrap() > 0.5, "{stdout}");
}
