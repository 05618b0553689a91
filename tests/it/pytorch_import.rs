//! PyTorch in: the `state_dict` files in `tests/fixtures/pytorch` (made by
//! `tests/fixtures/make_pytorch_models.py` with torch from PyPI: each preset's twin trained for
//! one epoch on the sample, in three naming styles and two file formats) imported with
//! `import_pytorch` and `digitnet import`, against the logits PyTorch computed; and the files
//! that must not import.

#![cfg(feature = "flex")]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use digitnet::backend::Flex;
use digitnet::data::MnistBatcher;
use digitnet::model::Preset;
use digitnet::train::{PytorchImport, import_pytorch};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// PyTorch's logits for the sample's first 100 test images, as the fixture script saved them.
fn pytorch_logits(preset: &str) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(fixture(&format!("{preset}.logits.json"))).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// The largest difference between digitnet's logits for `file` imported as `preset` and
/// PyTorch's own.
fn largest_difference(file: &str, preset: Preset) -> f32 {
    let device = Default::default();
    let model = import_pytorch::<Flex>(
        &fixture(file),
        &preset.config(),
        &PytorchImport::default(),
        &device,
    )
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    let data = common::sample();
    let images = MnistBatcher::for_dataset(data.spec())
        .images::<Flex>(data.test().images(0..100).unwrap(), &device);
    let ours: Vec<f32> = model.forward(images).into_data().to_vec().unwrap();
    let theirs = pytorch_logits(preset.name());
    assert_eq!(theirs.len(), 100);
    ours.chunks(10)
        .zip(&theirs)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn every_preset_imports_with_pytorchs_own_logits() {
    for (file, preset) in [
        ("cnn-a.pth", Preset::CnnA),
        ("cnn-b.pth", Preset::CnnB),
        ("cnn-bn.pth", Preset::CnnBn),
        ("mlp-a.pth", Preset::MlpA),
        ("mlp-a-legacy.pth", Preset::MlpA),
        ("mlp-b.pth", Preset::MlpB),
    ] {
        let diff = largest_difference(file, preset);
        println!("{file} as {preset}: largest logit difference from PyTorch {diff:.2e}");
        // Measured 1.9e-6 to 4.8e-6 (flex, 2 cores); the issue asks for 1e-4.
        assert!(diff < 2e-5, "{file}: {diff}");
    }
}

fn digitnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(args)
        .env_remove("DIGITNET_DATA_DIR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `digitnet import` writes an artifact directory that `digitnet eval` reads, and its test
/// accuracy on the sample's first 100 images is PyTorch's.
#[test]
fn an_imported_model_is_an_artifact_directory_that_eval_uses() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("imported");
    let artifacts_arg = artifacts.to_str().unwrap();
    let file = fixture("cnn-b.pth");
    let out = digitnet(&[
        "import",
        file.to_str().unwrap(),
        "--preset",
        "cnn-b",
        "--artifacts",
        artifacts_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("as cnn-b (421642 parameters) into"),
        "{}",
        text(&out.stdout)
    );
    let sample = common::sample_dir();
    let out = digitnet(&[
        "eval",
        "--artifacts",
        artifacts_arg,
        "--data-dir",
        sample.to_str().unwrap(),
        "--offline",
        "--no-verify",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let accuracy: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .parse()
        .unwrap();
    println!("cnn-b imported from PyTorch: sample test accuracy {accuracy}");
    // Measured 0.841 (PyTorch's twin after one epoch on the sample); the bar is a few points below.
    assert!(accuracy > 0.80, "{accuracy}");
}

/// A file that does not fit fails with one line naming the file and the tensor, and writes
/// nothing.
#[test]
fn files_that_do_not_fit_are_refused_with_the_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.pth");
    let bytes = std::fs::read(fixture("mlp-a.pth")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text_file = dir.path().join("notes.pth");
    std::fs::write(&text_file, "not a PyTorch file\n").unwrap();
    let cases: [(PathBuf, &str, &[&str]); 6] = [
        (
            fixture("mlp-a.pth"),
            "cnn-b",
            &[
                "another architecture",
                "0 convolution",
                "3 linear (1, 3, 5)",
            ],
        ),
        (
            fixture("mlp-a-missing.pth"),
            "mlp-a",
            &["no tensor for the model's linears.2.bias"],
        ),
        (
            fixture("mlp-a-extra.pth"),
            "mlp-a",
            &["5.scale has no place in the model"],
        ),
        (
            fixture("mlp-a-shape.pth"),
            "mlp-a",
            &["3.weight is [64, 100], the model's linears.1.weight needs [64, 128]"],
        ),
        (
            truncated.clone(),
            "mlp-a",
            &["truncated.pth: cannot import"],
        ),
        (text_file.clone(), "mlp-a", &["notes.pth: cannot import"]),
    ];
    for (file, preset, needles) in cases {
        let artifacts = dir.path().join("never");
        let out = digitnet(&[
            "import",
            file.to_str().unwrap(),
            "--preset",
            preset,
            "--artifacts",
            artifacts.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "missing {needle:?} in: {stderr}");
        }
        assert!(!artifacts.exists(), "{file:?} wrote {artifacts:?}");
    }
}
