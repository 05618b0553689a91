//! ONNX out: every preset (and the shipped default CNN) exported with `DigitModel::to_onnx`,
//! loaded by another runtime, tract (pure Rust), and run on the sample's real test images: its
//! logits against digitnet's own, at two batch sizes through the one dynamic batch dimension;
//! `digitnet export` writes the same file.

#![cfg(feature = "flex")]

use crate::common;

use std::process::Command;

use digitnet::backend::Flex;
use digitnet::data::MnistBatcher;
use digitnet::model::{DigitModel, ModelConfig, Preset};
use tract_onnx::prelude::*;

/// The sample's first `n` test images, normalised, as digitnet's batcher gives them.
fn images(n: usize) -> (Vec<f32>, burn::tensor::Tensor<Flex, 4>) {
    let data = common::sample();
    let tensor = MnistBatcher::for_dataset(data.spec())
        .images::<Flex>(data.test().images(0..n).unwrap(), &Default::default());
    (tensor.clone().into_data().to_vec().unwrap(), tensor)
}

/// Runs the ONNX file in tract on `n` images; returns its logits.
fn tract_logits(onnx: &[u8], pixels: Vec<f32>, n: usize) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))
        .unwrap()
        .with_input_fact(0, f32::fact([n, 1, 28, 28]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input: Tensor = tract_ndarray::Array4::from_shape_vec((n, 1, 28, 28), pixels)
        .unwrap()
        .into();
    let outputs = model.run(tvec!(input.into())).unwrap();
    outputs[0]
        .to_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Exports `model` and compares tract's logits with digitnet's for batches of 1 and 100.
fn check(name: &str, model: &DigitModel<Flex>, config: &ModelConfig) -> f32 {
    let onnx = model.to_onnx(config).unwrap();
    let mut worst = 0.0f32;
    for n in [1, 100] {
        let (pixels, tensor) = images(n);
        let ours: Vec<f32> = model.forward(tensor).into_data().to_vec().unwrap();
        let theirs = tract_logits(&onnx, pixels, n);
        worst = worst.max(largest_difference(&ours, &theirs));
    }
    println!("{name}: largest logit difference, tract against digitnet: {worst:.2e}");
    worst
}

#[test]
fn every_preset_runs_in_tract_with_digitnets_logits() {
    let device = Default::default();
    let (shipped_config, shipped) = digitnet::shipped::load::<Flex>(&device).unwrap();
    let diff = check(
        "shipped cnn-bn",
        &shipped,
        shipped_config.digit_model().unwrap(),
    );
    assert!(diff < 1e-4, "{diff}");
    for preset in Preset::ALL {
        let config = preset.config();
        let model = config.init::<Flex>(&device).unwrap();
        let diff = check(preset.name(), &model, &config);
        assert!(diff < 5e-6, "{preset}: {diff}");
    }
}

#[test]
fn the_graph_declares_a_dynamic_batch_and_standard_operators() {
    let config = Preset::CnnBn.config();
    let model = config.init::<Flex>(&Default::default()).unwrap();
    let onnx = model.to_onnx(&config).unwrap();
    let graph = tract_onnx::onnx()
        .proto_model_for_read(&mut std::io::Cursor::new(&onnx))
        .unwrap();
    assert_eq!(graph.opset_import[0].version, 17);
    let graph = graph.graph.unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(
        ops,
        [
            "Conv",
            "BatchNormalization",
            "MaxPool",
            "Relu",
            "Conv",
            "BatchNormalization",
            "MaxPool",
            "Relu",
            "Conv",
            "BatchNormalization",
            "MaxPool",
            "Relu",
            "Flatten",
            "Gemm",
            "Relu",
            "Gemm"
        ]
    );
    assert_eq!(graph.input[0].name, "images");
    assert_eq!(graph.output[0].name, "logits");
    let shape = format!("{:?}", graph.input[0].r#type);
    assert!(shape.contains("DimParam(\"batch\")"), "{shape}");
}

/// Runs the `digitnet` binary and checks that it succeeded.
fn digitnet(args: &[&std::ffi::OsStr]) {
    let out = Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "digitnet {args:?}: {stderr}");
}

#[test]
fn digitnet_export_writes_the_models_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    digitnet(&["export".as_ref(), "--onnx".as_ref(), path.as_os_str()]);
    let device = Default::default();
    let (config, shipped) = digitnet::shipped::load::<Flex>(&device).unwrap();
    let expected = shipped.to_onnx(config.digit_model().unwrap()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

/// `digitnet eval --logits` (what benches/interop/check.py compares other runtimes with): one
/// row per test image, in split order, with its label and the model's own logits.
#[test]
fn digitnet_eval_writes_every_images_logits_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logits.csv");
    let sample = common::sample_dir();
    digitnet(&[
        "eval".as_ref(),
        "--offline".as_ref(),
        "--no-verify".as_ref(),
        "--data-dir".as_ref(),
        sample.as_os_str(),
        "--logits".as_ref(),
        path.as_os_str(),
    ]);
    let csv = std::fs::read_to_string(&path).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("index,label,logit_0,") && header.ends_with(",logit_9"));
    let rows: Vec<Vec<f32>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let data = common::sample();
    let labels = data.test().labels().to_vec();
    assert_eq!(rows.len(), labels.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            (row[0], row[1]),
            (i as f32, f32::from(labels[i])),
            "row {i}"
        );
    }
    let (_, shipped) = digitnet::shipped::load::<Flex>(&Default::default()).unwrap();
    let (_, tensor) = images(100);
    let ours: Vec<f32> = shipped.forward(tensor).into_data().to_vec().unwrap();
    let written: Vec<f32> = rows[..100].iter().flat_map(|r| r[2..].to_vec()).collect();
    let diff = largest_difference(&ours, &written);
    // Batches of 500 there, of 100 here: the same sums in another blocking, a few ulps apart.
    assert!(diff < 1e-5, "{diff}");
}
