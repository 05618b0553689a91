//! Turns [`MnistItem`]s into normalised tensors: one contiguous buffer per batch, uploaded once.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::idx::{IMAGE_PIXELS, IMAGE_SIDE};
use crate::mnist::MnistItem;
use crate::spec::DatasetSpec;

/// A batch ready for a model: images `[N, 1, 28, 28]` (normalised floats) and targets `[N]`.
#[derive(Debug, Clone)]
pub struct MnistBatch<B: Backend> {
    /// Normalised images, `(pixel / 255 - mean) / std`.
    pub images: Tensor<B, 4>,
    /// Class indices.
    pub targets: Tensor<B, 1, Int>,
}

/// Normalises pixels with a dataset's mean and standard deviation and stacks items into a batch.
#[derive(Debug, Clone)]
pub struct MnistBatcher {
    /// `lut[p]` is the normalised value of pixel value `p`.
    lut: [f32; 256],
}

impl MnistBatcher {
    /// A batcher normalising with `mean` and `std` (on the 0..1 pixel scale).
    pub fn new(mean: f32, std: f32) -> Self {
        Self {
            lut: std::array::from_fn(|p| (p as f32 / 255.0 - mean) / std),
        }
    }

    /// A batcher with the dataset's own normalisation constants.
    pub fn for_dataset(spec: &DatasetSpec) -> Self {
        Self::new(spec.mean, spec.std)
    }

    /// Normalises raw 28x28 images (each 784 bytes, concatenated) into a `[N, 1, 28, 28]` tensor.
    pub fn images<B: Backend>(&self, pixels: &[u8], device: &B::Device) -> Tensor<B, 4> {
        let n = pixels.len() / IMAGE_PIXELS;
        let values: Vec<f32> = pixels[..n * IMAGE_PIXELS]
            .iter()
            .map(|&p| self.lut[usize::from(p)])
            .collect();
        Tensor::from_data(
            TensorData::new(values, [n, 1, IMAGE_SIDE, IMAGE_SIDE]),
            device,
        )
    }
}

impl Default for MnistBatcher {
    /// Normalises with MNIST's constants (mean 0.1307, std 0.3081).
    fn default() -> Self {
        Self::new(0.1307, 0.3081)
    }
}

impl<B: Backend> Batcher<B, MnistItem, MnistBatch<B>> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &B::Device) -> MnistBatch<B> {
        let n = items.len();
        let mut values = Vec::with_capacity(n * IMAGE_PIXELS);
        let mut targets = Vec::with_capacity(n);
        for item in &items {
            values.extend(item.image.iter().map(|&p| self.lut[usize::from(p)]));
            targets.push(i64::from(item.label));
        }
        MnistBatch {
            images: Tensor::from_data(
                TensorData::new(values, [n, 1, IMAGE_SIDE, IMAGE_SIDE]),
                device,
            ),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_ndarray::NdArray;

    #[test]
    fn batches_are_normalised_and_shaped() {
        let device = Default::default();
        let batcher = MnistBatcher::new(0.5, 0.25);
        let mut a = MnistItem {
            image: [0; IMAGE_PIXELS],
            label: 3,
        };
        a.image[0] = 255;
        let b = MnistItem {
            image: [51; IMAGE_PIXELS],
            label: 9,
        };
        let batch: MnistBatch<NdArray> = batcher.batch(vec![a, b], &device);
        assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
        let images: Vec<f32> = batch.images.into_data().to_vec().unwrap();
        assert!((images[0] - 2.0).abs() < 1e-6); // (1 - 0.5) / 0.25
        assert!((images[1] + 2.0).abs() < 1e-6); // (0 - 0.5) / 0.25
        assert!((images[IMAGE_PIXELS] - (0.2 - 0.5) / 0.25).abs() < 1e-6);
        let targets: Vec<i64> = batch.targets.into_data().convert::<i64>().to_vec().unwrap();
        assert_eq!(targets, vec![3, 9]);
    }

    #[test]
    fn raw_pixels_to_tensor_matches_batcher() {
        let device = Default::default();
        let batcher = MnistBatcher::default();
        let item = MnistItem {
            image: std::array::from_fn(|i| (i % 256) as u8),
            label: 0,
        };
        let from_items: MnistBatch<NdArray> = batcher.batch(vec![item.clone()], &device);
        let direct: Tensor<NdArray, 4> = batcher.images(&item.image, &device);
        assert_eq!(from_items.images.into_data(), direct.into_data());
    }
}
