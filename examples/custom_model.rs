//! Train a network of your own with digitnet's training: LeNet-5 (LeCun et al., 1998), defined
//! here as a plain Burn module, trained with `digitnet::train::train` (burn-train's Learner,
//! checkpoints, metrics.csv, curves), evaluated, then loaded back from its SafeTensors file.
//!
//! ```text
//! DIGITNET_DATA_DIR=../shared/data/mnist cargo run --release --example custom_model -- 2
//! ```
//! The optional argument is the number of epochs (default 2). Artifacts go to
//! `artifacts/example-lenet`.

use burn::backend::Autodiff;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::{DataSource, DatasetKind, Mnist, MnistBatcher};
use digitnet::train::artifacts::names;
use digitnet::train::{
    ImageClassifier, OptimizerConfig, OptimizerKind, TrainOptions, TrainingConfig, evaluate,
    load_module, train,
};

/// LeNet-5: two 5x5 convolutions with average pooling, then three fully connected layers, with
/// tanh activations as in the paper.
#[derive(Module, Debug)]
pub struct LeNet5<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    pool: AvgPool2d,
    fc1: Linear<B>,
    fc2: Linear<B>,
    fc3: Linear<B>,
}

impl<B: Backend> LeNet5<B> {
    /// A LeNet-5 with freshly initialised weights.
    pub fn new(device: &B::Device) -> Self {
        Self {
            // 28x28 padded to 32x32, as the paper's input.
            conv1: Conv2dConfig::new([1, 6], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            conv2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(16 * 5 * 5, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            fc3: LinearConfig::new(84, 10).init(device),
        }
    }

    /// Images `[N, 1, 28, 28]` to logits `[N, 10]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.pool.forward(self.conv1.forward(images).tanh()); // [N, 6, 14, 14]
        let x = self.pool.forward(self.conv2.forward(x).tanh()); // [N, 16, 5, 5]
        let x = self.fc1.forward(x.flatten(1, 3)).tanh();
        let x = self.fc2.forward(x).tanh();
        self.fc3.forward(x)
    }
}

/// What digitnet's training and evaluation need: images in, logits out.
impl<B: Backend> ImageClassifier<B> for LeNet5<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward(images)
    }
}

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(1).map_or(Ok(2), |a| a.parse())?;
    let data = Mnist::load(&DataSource::new(DatasetKind::Mnist))?;
    let config = TrainingConfig::new(OptimizerConfig::new(OptimizerKind::Adam)).with_epochs(epochs);
    let device = default_device();
    let artifacts = "artifacts/example-lenet";

    let model = LeNet5::<Autodiff<DefaultBackend>>::new(&device);
    let outcome = train(
        model,
        &config,
        &data,
        &TrainOptions::new(artifacts),
        &device,
    )?;
    let batcher = MnistBatcher::for_dataset(data.spec());
    let test = evaluate(&outcome.model, &data.test(), &batcher, 1000, &device);
    println!("test accuracy: {:.4}", test.accuracy);

    // The weights are in model.safetensors; a fresh LeNet-5 takes them back (every tensor's
    // name and shape is checked).
    let weights = std::path::Path::new(artifacts).join(names::SAFETENSORS);
    let loaded = load_module(LeNet5::<DefaultBackend>::new(&device), &weights)?;
    let again = evaluate(&loaded, &data.test(), &batcher, 1000, &device);
    println!(
        "reloaded from {}: test accuracy {:.4}",
        weights.display(),
        again.accuracy
    );
    Ok(())
}
