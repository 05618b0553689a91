//! Arithmetic per image, and the machine's measured peak rate, so that a throughput can be read
//! as a share of what the cores can do.
//!
//! A model's forward pass costs 2 FLOPs per multiply-add of its convolutions and fully connected
//! layers (pooling, ReLU and batch norm are left out: they are a few percent). A training step
//! is counted as 3 forward passes (forward, input gradient, weight gradient), the usual
//! convention.

use anyhow::Result;
use burn::prelude::*;
use digitnet::model::{ModelConfig, Preset};

use crate::time_repeated;

/// FLOPs of one image's forward pass through `preset`.
pub fn forward_flops(preset: Preset) -> Result<f64> {
    let mut macs = 0usize;
    let (features, hidden, classes) = match preset.config() {
        ModelConfig::Cnn(cnn) => {
            for layer in crate::layers::conv_layers(preset) {
                let out = layer.side + 2 * layer.padding + 1 - layer.k;
                macs += out * out * layer.co * layer.c * layer.k * layer.k;
            }
            (cnn.flat_features()?, cnn.hidden.clone(), cnn.num_classes)
        }
        ModelConfig::Mlp(mlp) => (mlp.input_size, mlp.hidden.clone(), mlp.num_classes),
    };
    let mut width = features;
    for &next in hidden.iter().chain([&classes]) {
        macs += width * next;
        width = next;
    }
    Ok(2.0 * macs as f64)
}

/// The best rate, in GFLOP/s, of a 2048 x 2048 x 2048 single-precision matrix product on
/// backend `B` (on the CPU backends: every thread of rayon's pool), timed for about `seconds`.
pub fn peak_gflops<B: Backend>(seconds: f64, device: &B::Device) -> f64 {
    const N: usize = 2048;
    let a = Tensor::<B, 2>::ones([N, N], device);
    let b = Tensor::<B, 2>::ones([N, N], device);
    let times = time_repeated(seconds, || {
        let _ = a.clone().matmul(b.clone()).into_data();
    });
    let best = times.iter().min().copied().unwrap_or_default();
    2.0 * (N * N * N) as f64 / best.as_secs_f64().max(f64::MIN_POSITIVE) / 1e9
}
