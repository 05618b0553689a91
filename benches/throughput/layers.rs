//! Where a CNN's convolution time goes: each convolutional block's convolution (fused with its
//! 2x2 max-pool where the model fuses them) on 64 images, forward pass and backward pass timed
//! apart, through the same `digitnet_kernels` calls the model makes.

use std::time::{Duration, Instant};

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use digitnet::backend::BackendKind;
use digitnet::model::{ModelConfig, Preset};

use crate::{median_secs, time_parts};

/// Images per timed call, as in `train@64`.
const BATCH: usize = 64;

/// One convolution of a CNN: `c -> co` channels on `side x side` images, a `k x k` kernel.
pub struct ConvLayer {
    pub c: usize,
    pub co: usize,
    pub side: usize,
    pub k: usize,
    pub padding: usize,
    bias: bool,
    pooled: bool,
}

/// Prints a `LAYER <backend> <model> conv<i> <c>-><co> <side>x<side> k<k> <pass> <ms>` line per
/// pass (`forward`, `backward`) of each convolution of `preset` (none for an MLP): the medians of
/// repetitions timed for about `seconds` each.
pub fn profile<B: AutodiffBackend>(
    kind: BackendKind,
    preset: Preset,
    seconds: f64,
    device: &B::Device,
) {
    for (i, layer) in conv_layers(preset).iter().enumerate() {
        let label = format!(
            "LAYER {kind} {preset} conv{} {}->{} {}x{} k{}",
            i + 1,
            layer.c,
            layer.co,
            layer.side,
            layer.side,
            layer.k
        );
        let (forward, backward) = time_layer::<B>(layer, i > 0, seconds, device);
        println!("{label} forward {:.3}", median_secs(&forward) * 1e3);
        println!("{label} backward {:.3}", median_secs(&backward) * 1e3);
    }
}

/// The convolutions of `preset`, with the input each one sees.
pub fn conv_layers(preset: Preset) -> Vec<ConvLayer> {
    let ModelConfig::Cnn(cnn) = preset.config() else {
        return Vec::new();
    };
    let (mut side, mut c) = (cnn.image_size, cnn.in_channels);
    let mut layers = Vec::new();
    for block in &cnn.blocks {
        layers.push(ConvLayer {
            c,
            co: block.out_channels,
            side,
            k: block.kernel_size,
            padding: block.padding,
            bias: !block.batch_norm,
            pooled: block.max_pool && !block.batch_norm,
        });
        side = side + 2 * block.padding + 1 - block.kernel_size;
        if block.max_pool {
            side /= 2;
        }
        c = block.out_channels;
    }
    layers
}

/// The forward pass timed on the inner backend (no graph kept) and the backward pass timed on
/// its own after an untimed forward pass on `B` (it includes the `sum`'s backward, a fill of the
/// output's shape). The input gets a gradient except for the first layer, as in training.
fn time_layer<B: AutodiffBackend>(
    layer: &ConvLayer,
    input_grad: bool,
    seconds: f64,
    device: &B::Device,
) -> (Vec<Duration>, Vec<Duration>) {
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<B, 4>::random([BATCH, layer.c, layer.side, layer.side], normal, device);
    let w = Tensor::<B, 4>::random([layer.co, layer.c, layer.k, layer.k], normal, device);
    let b = layer
        .bias
        .then(|| Tensor::<B, 1>::random([layer.co], normal, device));
    let (xi, wi, bi) = (
        x.clone().inner(),
        w.clone().inner(),
        b.clone().map(|b| b.inner()),
    );
    let forward = time_parts(seconds, || {
        let start = Instant::now();
        let _ = convolve(layer, xi.clone(), wi.clone(), bi.clone()).into_data();
        start.elapsed()
    });
    let (x, w, b) = (
        x.set_require_grad(input_grad),
        w.require_grad(),
        b.map(Tensor::require_grad),
    );
    let backward = time_parts(seconds, || {
        let loss = convolve(layer, x.clone(), w.clone(), b.clone()).sum();
        B::sync(device).ok();
        let start = Instant::now();
        let grads = loss.backward();
        let _ = w.grad(&grads).map(Tensor::into_data);
        start.elapsed()
    });
    (forward, backward)
}

/// The layer's convolution as its block computes it: fused with the max-pool after it when the
/// block has no batch norm.
fn convolve<B: Backend>(
    layer: &ConvLayer,
    x: Tensor<B, 4>,
    w: Tensor<B, 4>,
    b: Option<Tensor<B, 1>>,
) -> Tensor<B, 4> {
    match layer.pooled {
        true => digitnet_kernels::conv2d_max_pool2x2(x, w, b, layer.padding),
        false => digitnet_kernels::conv2d(x, w, b, layer.padding),
    }
}
