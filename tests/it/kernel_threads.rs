#![cfg(all(feature = "flex", feature = "ndarray"))]
//! Where a model's work runs: a CNN on flex moves its forward pass (and, through
//! `DigitModel::on_kernel_threads`, a training step) onto the kernels' thread pool; an MLP, and
//! any model on another backend, stays on the caller's thread. Results are the same either way.

use burn::backend::Autodiff;
use burn::prelude::*;
use digitnet::backend::{Flex, NdArray};
use digitnet::burn;
use digitnet::model::{DigitModel, Preset};
use std::thread::{self, ThreadId};

fn runs_elsewhere<B: Backend>(model: &DigitModel<B>) -> bool {
    let caller: ThreadId = thread::current().id();
    model.on_kernel_threads(|| thread::current().id()) != caller
}

fn model<B: Backend>(preset: Preset) -> DigitModel<B> {
    preset.config().init::<B>(&Default::default()).unwrap()
}

#[test]
fn only_a_cnn_on_flex_moves_to_the_kernel_threads() {
    assert!(runs_elsewhere(&model::<Flex>(Preset::CnnB)));
    assert!(runs_elsewhere(&model::<Autodiff<Flex>>(Preset::CnnBn)));
    assert!(!runs_elsewhere(&model::<Flex>(Preset::MlpA)));
    assert!(!runs_elsewhere(&model::<NdArray>(Preset::CnnB)));
}

#[test]
fn a_single_image_gives_the_same_logits_alone_and_in_a_batch() {
    // Alone, CNN B's second convolution splits its GEMM across threads; in a batch of 4, each
    // image is one thread's work. Same weights, same image: the same logits.
    let device = Default::default();
    let model = model::<Flex>(Preset::CnnB);
    let batch = Tensor::<Flex, 4>::random(
        [4, 1, 28, 28],
        burn::tensor::Distribution::Uniform(-0.5, 2.8),
        &device,
    );
    let together = model.forward(batch.clone());
    for i in 0..4 {
        let alone = model.forward(batch.clone().narrow(0, i, 1));
        let diff = (alone - together.clone().narrow(0, i, 1))
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-4, "image {i}: logits differ by {diff}");
    }
}
