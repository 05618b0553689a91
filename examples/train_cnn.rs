//! Train the default CNN on MNIST with burn-train's Learner, then report the test accuracy.
//!
//! ```text
//! DIGITNET_DATA_DIR=../shared/data/mnist cargo run --release --example train_cnn -- 3
//! ```
//! The optional argument is the number of epochs (default 3). Artifacts go to
//! `artifacts/example-cnn` (config, checkpoints, metrics.csv, model, curves).

use burn::backend::Autodiff;
use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::{DataSource, DatasetKind, Mnist, MnistBatcher};
use digitnet::model::Preset;
use digitnet::train::{TrainOptions, TrainingConfig, evaluate, train};

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(1).map_or(Ok(3), |a| a.parse())?;
    let config = TrainingConfig::for_preset(Preset::CnnBn).with_epochs(epochs);
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
        &TrainOptions::new("artifacts/example-cnn"),
        &device,
    )?;
    let test = evaluate(
        &outcome.model,
        &data.test(),
        &MnistBatcher::for_dataset(data.spec()),
        500,
        &device,
    );
    println!("test accuracy: {:.4}", test.accuracy);
    Ok(())
}
