//! What digitnet can train: any Burn module that maps images to class logits
//! ([`ImageClassifier`]), and the wrapper that gives it burn-train's cross-entropy training and
//! validation steps.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, Module, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use digitnet_data::MnistBatch;
use digitnet_model::DigitModel;

use crate::error::{Result, TrainError};

/// A Burn module that classifies images: `[N, 1, 28, 28]` images, normalised as
/// [`MnistBatcher`](digitnet_data::MnistBatcher) does, to `[N, classes]` logits (before softmax).
///
/// Implement it for your own `#[derive(Module)]` type to train it with [`train`](crate::train)
/// and score it with [`evaluate`](crate::evaluate); digitnet's [`DigitModel`] implements it.
pub trait ImageClassifier<B: Backend>: Module<B> + ModuleDisplay {
    /// The class logits of a batch of images.
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2>;
}

impl<B: Backend> ImageClassifier<B> for DigitModel<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward(images)
    }
}

/// Runs `model` on `images` and checks that it answers `[N, classes]`: a module that is not a
/// classifier of this dataset's images is an error naming both shapes, not a panic later inside
/// Burn's loss or metrics.
pub(crate) fn check_output_shape<B: Backend, M: ImageClassifier<B>>(
    model: &M,
    images: Tensor<B, 4>,
    classes: usize,
) -> Result<()> {
    let input = images.dims();
    let expected = [input[0], classes];
    let run = std::panic::AssertUnwindSafe(|| model.logits(images).dims());
    match std::panic::catch_unwind(run) {
        Ok(actual) if actual == expected => Ok(()),
        Ok(actual) => Err(TrainError::NotAClassifier {
            input,
            expected,
            problem: format!("it returned logits of shape {actual:?}"),
        }),
        Err(panic) => Err(TrainError::NotAClassifier {
            input,
            expected,
            problem: format!("its forward pass panicked: {}", panic_message(&panic)),
        }),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// An [`ImageClassifier`] trained with cross-entropy loss: the model burn-train's `Learner`
/// sees.
#[derive(Module, Debug)]
pub(crate) struct Classifier<B: Backend, M> {
    pub model: M,
    backend: PhantomData<B>,
}

impl<B: Backend, M: ImageClassifier<B>> Classifier<B, M> {
    pub fn new(model: M) -> Self {
        Self {
            model,
            backend: PhantomData,
        }
    }

    /// Forward pass plus cross-entropy loss against the batch's targets.
    fn forward_classification(&self, batch: MnistBatch<B>) -> ClassificationOutput<B> {
        let logits = self.model.logits(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl<B, M> TrainStep for Classifier<B, M>
where
    B: AutodiffBackend,
    M: ImageClassifier<B> + AutodiffModule<B>,
    M::InnerModule: ImageClassifier<B::InnerBackend>,
{
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let output = self.forward_classification(batch);
        let grads = output.loss.backward();
        TrainOutput::new(self, grads, output)
    }
}

impl<B: Backend, M: ImageClassifier<B>> InferenceStep for Classifier<B, M> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> ClassificationOutput<B> {
        self.forward_classification(batch)
    }
}
