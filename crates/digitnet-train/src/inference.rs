//! Predictions from a trained model: the digit and the 10 class probabilities per image.

use burn::prelude::*;
use digitnet_data::{IMAGE_PIXELS, MnistBatcher, NUM_CLASSES};
use digitnet_model::DigitModel;

/// A model's answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable class.
    pub digit: usize,
    /// Probability of each class (they sum to 1).
    pub probabilities: [f32; NUM_CLASSES],
}

impl Prediction {
    /// The probability of the predicted class.
    pub fn confidence(&self) -> f32 {
        self.probabilities[self.digit]
    }
}

/// Predicts the class of each 28x28 image (MNIST layout: 0 = background, 255 = ink), in one
/// batch, normalised by `batcher`.
pub fn predict<B: Backend>(
    model: &DigitModel<B>,
    images: &[[u8; IMAGE_PIXELS]],
    batcher: &MnistBatcher,
    device: &B::Device,
) -> Vec<Prediction> {
    if images.is_empty() {
        return Vec::new();
    }
    let pixels: Vec<u8> = images.iter().flatten().copied().collect();
    let probabilities: Vec<f32> = model
        .probabilities(batcher.images::<B>(&pixels, device))
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap_or_default();
    probabilities
        .chunks_exact(NUM_CLASSES)
        .map(|row| {
            let mut p = [0f32; NUM_CLASSES];
            p.copy_from_slice(row);
            let digit = (0..NUM_CLASSES)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .unwrap_or(0);
            Prediction {
                digit,
                probabilities: p,
            }
        })
        .collect()
}
