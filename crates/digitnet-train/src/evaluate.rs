//! Evaluation of a trained model on any split: accuracy, mean loss, per-class precision and
//! recall, the confusion matrix, and the misclassified images.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use digitnet_data::{MnistBatcher, MnistSplit, NUM_CLASSES};

use crate::classifier::ImageClassifier;

/// A misclassified example.
#[derive(Debug, Clone, PartialEq)]
pub struct Misclassified {
    /// Index in the evaluated split.
    pub index: usize,
    /// The true class.
    pub label: usize,
    /// The predicted class.
    pub predicted: usize,
    /// The probability the model gave its prediction.
    pub confidence: f32,
}

/// The results of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Number of examples evaluated.
    pub count: usize,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Mean cross-entropy loss.
    pub loss: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: [[usize; NUM_CLASSES]; NUM_CLASSES],
    /// Every misclassified example, in split order.
    pub misclassified: Vec<Misclassified>,
}

impl Evaluation {
    /// Of the examples predicted as `class`, the fraction that are `class` (NaN if none).
    pub fn precision(&self, class: usize) -> f64 {
        let predicted: usize = (0..NUM_CLASSES).map(|t| self.confusion[t][class]).sum();
        self.confusion[class][class] as f64 / predicted as f64
    }

    /// Of the examples of `class`, the fraction predicted as `class` (NaN if none).
    pub fn recall(&self, class: usize) -> f64 {
        let actual: usize = self.confusion[class].iter().sum();
        self.confusion[class][class] as f64 / actual as f64
    }
}

/// Runs `model` over all of `split` in batches of `batch_size`.
pub fn evaluate<B: Backend, M: ImageClassifier<B>>(
    model: &M,
    split: &MnistSplit,
    batcher: &MnistBatcher,
    batch_size: usize,
    device: &B::Device,
) -> Evaluation {
    evaluation_pass(model, split, batcher, batch_size, device, None)
}

/// [`evaluate`], also returning every image's raw scores (`count * NUM_CLASSES` values, image by
/// image in split order) from the same pass: for exporting them (`digitnet eval --logits`) or
/// ensembling, without running the model over the split twice.
pub fn evaluate_with_logits<B: Backend, M: ImageClassifier<B>>(
    model: &M,
    split: &MnistSplit,
    batcher: &MnistBatcher,
    batch_size: usize,
    device: &B::Device,
) -> (Evaluation, Vec<f32>) {
    let mut logits = Vec::with_capacity(split.labels().len() * NUM_CLASSES);
    let eval = evaluation_pass(model, split, batcher, batch_size, device, Some(&mut logits));
    (eval, logits)
}

/// The one pass over `split` behind [`evaluate`] and [`evaluate_with_logits`]; appends the raw
/// scores to `logits` when given.
fn evaluation_pass<B: Backend, M: ImageClassifier<B>>(
    model: &M,
    split: &MnistSplit,
    batcher: &MnistBatcher,
    batch_size: usize,
    device: &B::Device,
    mut logits: Option<&mut Vec<f32>>,
) -> Evaluation {
    use burn::data::dataset::Dataset;
    let batch_size = batch_size.max(1);
    let mut confusion = [[0usize; NUM_CLASSES]; NUM_CLASSES];
    let mut misclassified = Vec::new();
    let mut loss_sum = 0.0f64;
    let mut correct = 0usize;
    let labels = split.labels();
    for start in (0..split.len()).step_by(batch_size) {
        let end = (start + batch_size).min(split.len());
        let Some(pixels) = split.images(start..end) else {
            break;
        };
        let images = batcher.images::<B>(pixels, device);
        let scores = model.logits(images);
        if let Some(logits) = logits.as_deref_mut() {
            logits.extend(host_values(scores.clone()));
        }
        let log_probs = host_values(log_softmax(scores, 1));
        for (row, offset) in log_probs.chunks(NUM_CLASSES).zip(start..end) {
            let label = usize::from(labels[offset]);
            let (predicted, best) =
                row.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
                    );
            loss_sum -= f64::from(row[label]);
            confusion[label][predicted] += 1;
            if predicted == label {
                correct += 1;
            } else {
                misclassified.push(Misclassified {
                    index: offset,
                    label,
                    predicted,
                    confidence: best.exp(),
                });
            }
        }
    }
    let count = split.len();
    let n = count.max(1) as f64;
    Evaluation {
        count,
        accuracy: correct as f64 / n,
        loss: loss_sum / n,
        confusion,
        misclassified,
    }
}

/// A tensor's values on the host as `f32` (empty if they cannot be read back).
fn host_values<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}
