//! The presets reproduce the tutorials' architectures exactly, every config builds a model that
//! maps `[N, 1, 28, 28]` to `[N, 10]`, and configs survive a JSON round trip.

use crate::{
    CnnConfig, ConvBlockConfig, DigitModel, MlpConfig, ModelConfig, ModelError, ModelKind, Preset,
    probabilities,
};
use burn::config::Config;
use burn::module::Module;
use burn::prelude::*;
use burn_ndarray::NdArray;

type B = NdArray;

fn build(config: &ModelConfig) -> DigitModel<B> {
    config.init::<B>(&Default::default()).expect("valid config")
}

#[test]
fn presets_have_the_tutorials_parameter_counts() {
    let expected = [
        (Preset::CnnA, 95_882),
        (Preset::CnnB, 421_642),
        (Preset::MlpA, 109_386),
        (Preset::MlpB, 218_058),
    ];
    for (preset, params) in expected {
        assert_eq!(build(&preset.config()).num_params(), params, "{preset}");
        assert_eq!(preset.config().num_params().unwrap(), params, "{preset}");
    }
}

#[test]
fn default_cnn_has_batch_norm_and_dropout() {
    let ModelConfig::Cnn(config) = Preset::default_for(ModelKind::Cnn).config() else {
        panic!("default CNN preset is not a CNN");
    };
    assert!(config.blocks.iter().all(|b| b.batch_norm));
    assert!(config.dropout > 0.0);
    // 3 blocks of (conv without bias + BN gamma, beta and the two running statistics, which
    // Burn counts as parameters) + 1152->128 + 128->10.
    let params = (9 * 32 + 4 * 32)
        + (32 * 9 * 64 + 4 * 64)
        + (64 * 9 * 128 + 4 * 128)
        + (128 * 3 * 3 * 128 + 128)
        + (128 * 10 + 10);
    let config = ModelConfig::Cnn(config);
    assert_eq!(build(&config).num_params(), params);
    assert_eq!(config.num_params().unwrap(), params);
}

#[test]
fn every_preset_maps_images_to_ten_logits() {
    let device = Default::default();
    for preset in Preset::ALL {
        let model = build(&preset.config());
        for n in [1, 3] {
            let images = Tensor::<B, 4>::random(
                [n, 1, 28, 28],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let logits = model.forward(images.clone());
            assert_eq!(logits.dims(), [n, 10], "{preset}");
            let probs: Vec<f32> = model.probabilities(images).into_data().to_vec().unwrap();
            for row in probs.chunks(10) {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "{preset}: row sums to {sum}");
                assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
            }
        }
    }
}

#[test]
fn probabilities_is_a_softmax() {
    let device = Default::default();
    let logits = Tensor::<B, 2>::from_floats([[0.0, 0.0], [1.0, 0.0]], &device);
    let p: Vec<f32> = probabilities(logits).into_data().to_vec().unwrap();
    let e = std::f32::consts::E;
    assert!((p[0] - 0.5).abs() < 1e-6);
    assert!((p[2] - e / (e + 1.0)).abs() < 1e-6);
}

#[test]
fn configs_round_trip_through_json() {
    let dir = tempfile::tempdir().unwrap();
    for preset in Preset::ALL {
        let config = preset.config();
        let path = dir.path().join(format!("{preset}.json"));
        config.save(&path).unwrap();
        let loaded = ModelConfig::load(&path).unwrap();
        assert_eq!(loaded, config, "{preset}");
        assert_eq!(build(&loaded).num_params(), build(&config).num_params());
    }
}

#[test]
fn custom_sizes_are_configurable() {
    let cnn = CnnConfig::new(vec![
        ConvBlockConfig::new(8).with_kernel_size(5).with_padding(0),
        ConvBlockConfig::new(4)
            .with_max_pool(false)
            .with_dropout(0.1),
    ])
    .with_hidden(vec![16, 12])
    .with_dropout(0.2);
    // 28 -5+1 = 24, pool -> 12; 3x3 pad 1 keeps 12.
    assert_eq!(cnn.flat_features().unwrap(), 4 * 12 * 12);
    let config = ModelConfig::Cnn(cnn);
    let model = build(&config);
    assert_eq!(config.num_params().unwrap(), model.num_params());
    let out = model.forward(Tensor::zeros([2, 1, 28, 28], &Default::default()));
    assert_eq!(out.dims(), [2, 10]);
    let mlp = MlpConfig::new(vec![]).with_num_classes(3);
    let model = build(&ModelConfig::Mlp(mlp));
    assert_eq!(model.num_params(), 784 * 3 + 3);
}

#[test]
fn invalid_configs_are_errors_not_panics() {
    let cases = [
        ModelConfig::Cnn(CnnConfig::new(vec![ConvBlockConfig::new(0)])),
        ModelConfig::Cnn(CnnConfig::new(vec![ConvBlockConfig::new(8); 6])),
        ModelConfig::Cnn(CnnConfig::new(vec![
            ConvBlockConfig::new(8).with_kernel_size(40).with_padding(0),
        ])),
        ModelConfig::Cnn(CnnConfig::new(vec![]).with_dropout(1.0)),
        ModelConfig::Mlp(MlpConfig::new(vec![0])),
        ModelConfig::Mlp(MlpConfig::new(vec![4]).with_dropout(-0.1)),
        ModelConfig::Mlp(MlpConfig::new(vec![4]).with_num_classes(0)),
    ];
    for config in cases {
        let err = config.init::<B>(&Default::default()).unwrap_err();
        assert!(matches!(err, ModelError::InvalidConfig(_)), "{config:?}");
    }
}

#[test]
fn preset_names_parse_and_unknown_names_list_the_known_ones() {
    for preset in Preset::ALL {
        assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
    }
    let err = "resnet".parse::<Preset>().unwrap_err().to_string();
    assert!(err.contains("resnet") && err.contains("cnn-b"), "{err}");
}
