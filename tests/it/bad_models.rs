//! Loading a model record that does not fit: another model, another preset, other sizes, a
//! truncated file, a file that is not a model at all, another format version. Each is one clear
//! error naming the file, never a panic and never a silently wrong model.

#![cfg(feature = "ndarray")]

use std::path::{Path, PathBuf};

use digitnet::backend::NdArray;
use digitnet::model::Preset;
use digitnet::train::{TrainingConfig, model_io};

const NAME: &str = "under-test.safetensors";

fn shipped_config() -> TrainingConfig {
    digitnet::shipped::config().unwrap()
}

/// Loads `bytes` (written to a file) as `config`'s model; returns the error text.
fn load_error(config: &TrainingConfig, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join(NAME);
    std::fs::write(&path, bytes).unwrap();
    let err = model_io::load_weights::<NdArray>(config, &path, &Default::default())
        .expect_err("the record must be refused");
    let text = err.to_string();
    assert!(text.contains(NAME), "error without the file name: {text}");
    text
}

fn config_with(json_edit: impl Fn(String) -> String) -> TrainingConfig {
    let json = std::fs::read_to_string("weights/cnn-bn/config.json").unwrap();
    model_io::parse_config(&json_edit(json), Path::new("edited.json")).unwrap()
}

#[test]
fn the_shipped_record_loads_with_its_own_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    std::fs::write(&path, digitnet::shipped::weights()).unwrap();
    model_io::load_weights::<NdArray>(&shipped_config(), &path, &Default::default()).unwrap();
}

#[test]
fn another_model_kind_is_refused() {
    let mlp = TrainingConfig::for_preset(Preset::MlpA);
    let text = load_error(&mlp, digitnet::shipped::weights());
    assert!(text.contains("does not match the mlp model"), "{text}");
}

#[test]
fn another_preset_of_the_same_kind_is_refused() {
    let cnn_b = TrainingConfig::for_preset(Preset::CnnB);
    let text = load_error(&cnn_b, digitnet::shipped::weights());
    assert!(
        text.contains(
            "under-test.safetensors: cannot load the model record: it does not match the cnn model"
        ),
        "{text}"
    );
}

#[test]
fn other_layer_sizes_are_refused() {
    let wider = config_with(|j| j.replacen("\"out_channels\": 64", "\"out_channels\": 48", 1));
    let text = load_error(&wider, digitnet::shipped::weights());
    assert!(text.contains("does not match"), "{text}");
    let hidden = config_with(|j| j.replacen("128\n      ]", "100\n      ]", 1));
    let text = load_error(&hidden, digitnet::shipped::weights());
    assert!(text.contains("does not match"), "{text}");
}

#[test]
fn truncated_records_are_refused_at_every_cut() {
    let weights = digitnet::shipped::weights();
    let config = shipped_config();
    for cut in [0, 4, 8, 100, weights.len() / 2, weights.len() - 1] {
        let text = load_error(&config, &weights[..cut]);
        assert!(
            text.contains("not a SafeTensors") || text.contains("not a readable"),
            "cut at {cut}: {text}"
        );
    }
}

#[test]
fn files_that_are_not_models_are_refused() {
    let config = shipped_config();
    let mut png = std::io::Cursor::new(Vec::new());
    image::GrayImage::new(28, 28)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    for bytes in [
        b"".to_vec(),
        b"hello, world".to_vec(),
        png,
        vec![0xff; 4096],
    ] {
        let text = load_error(&config, &bytes);
        assert!(text.contains("not a SafeTensors"), "{text}");
    }
}

/// Rewrites the shipped file's metadata (the SafeTensors header is JSON after an 8-byte length).
fn with_metadata_edit(edit: impl Fn(&str) -> String) -> Vec<u8> {
    let weights = digitnet::shipped::weights();
    let n = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&weights[8..8 + n]).unwrap();
    let new_header = edit(header);
    // SafeTensors pads the header with spaces to keep the data aligned; keep its length.
    assert!(new_header.len() <= n, "edited header grew");
    let mut out = (n as u64).to_le_bytes().to_vec();
    out.extend_from_slice(new_header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', n - new_header.len()));
    out.extend_from_slice(&weights[8 + n..]);
    out
}

#[test]
fn another_format_version_or_a_foreign_safetensors_file_is_refused() {
    let config = shipped_config();
    let version_key = "\"digitnet.format_version\":\"1\"";
    let header_has_key = {
        let bytes = digitnet::shipped::weights();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        String::from_utf8_lossy(&bytes[8..8 + n]).contains(version_key)
    };
    assert!(
        header_has_key,
        "the shipped file carries the format version"
    );

    let future =
        with_metadata_edit(|h| h.replace(version_key, "\"digitnet.format_version\":\"9\""));
    let text = load_error(&config, &future);
    assert!(
        text.contains("format 9") && text.contains("format 1"),
        "{text}"
    );

    let foreign = with_metadata_edit(|h| h.replace(version_key, "\"made.by\":\"someone-else\""));
    let text = load_error(&config, &foreign);
    assert!(text.contains("not one saved by digitnet"), "{text}");
}
