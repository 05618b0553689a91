//! The model as burn-train sees it: a [`DigitModel`] with a cross-entropy training step and an
//! inference step, for any backend.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use digitnet_data::MnistBatch;
use digitnet_model::DigitModel;

/// A [`DigitModel`] trained with cross-entropy loss.
#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    /// The network.
    pub model: DigitModel<B>,
}

impl<B: Backend> Classifier<B> {
    /// Forward pass plus cross-entropy loss against the batch's targets.
    pub fn forward_classification(&self, batch: MnistBatch<B>) -> ClassificationOutput<B> {
        let logits = self.model.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl<B: AutodiffBackend> TrainStep for Classifier<B> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    /// Forward and backward run where the model starts fastest
    /// ([`DigitModel::on_kernel_threads`]).
    fn step(&self, batch: MnistBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let (output, grads) = self.model.on_kernel_threads(|| {
            let output = self.forward_classification(batch);
            let grads = output.loss.backward();
            (output, grads)
        });
        TrainOutput::new(self, grads, output)
    }
}

impl<B: Backend> InferenceStep for Classifier<B> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> ClassificationOutput<B> {
        self.forward_classification(batch)
    }
}
