#![cfg(feature = "flex")]
//! Results do not depend on where a model's work runs: the kernels move each operation onto
//! rayon's pool themselves, so a batch and its images one by one give the same logits.

use burn::prelude::*;
use digitnet::backend::Flex;
use digitnet::burn;
use digitnet::model::{DigitModel, Preset};

fn model<B: Backend>(preset: Preset) -> DigitModel<B> {
    preset.config().init::<B>(&Default::default()).unwrap()
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
