//! Train the tutorials' MLP (784-128-64-10) on MNIST with SGD + momentum, the classic recipe.
//!
//! ```text
//! DIGITNET_DATA_DIR=../shared/data/mnist cargo run --release --example train_mlp -- 5
//! ```
//! The optional argument is the number of epochs (default 5).

use burn::backend::Autodiff;
use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::{DataSource, DatasetKind, Mnist, MnistBatcher};
use digitnet::model::Preset;
use digitnet::train::{OptimizerKind, TrainOptions, TrainingConfig, evaluate, train};

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(1).map_or(Ok(5), |a| a.parse())?;
    let mut config = TrainingConfig::for_preset(Preset::MlpA).with_epochs(epochs);
    config.optimizer.kind = OptimizerKind::Sgd;
    config.optimizer.learning_rate = 0.05;
    config.optimizer.momentum = 0.9;
    // The last 5,000 training images validate (a tenth of a smaller training set).
    let data = Mnist::load(&DataSource::new(DatasetKind::Mnist))?;
    let device = default_device();
    let model = config
        .digit_model()?
        .init::<Autodiff<DefaultBackend>>(&device)?;
    let outcome = train(
        model,
        &config,
        &data,
        &TrainOptions::new("artifacts/example-mlp"),
        &device,
    )?;
    let test = evaluate(
        &outcome.model,
        &data.test(),
        &MnistBatcher::for_dataset(data.spec()),
        1000,
        &device,
    );
    println!("test accuracy: {:.4}", test.accuracy);
    Ok(())
}
