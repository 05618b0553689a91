//! The PyTorch tutorials' explicit training loop, written with Burn's optimizer API directly (no
//! Learner): forward, cross-entropy loss, backward, optimizer step, the loss printed every 100
//! batches, and the test accuracy after each epoch.
//!
//! ```text
//! DIGITNET_DATA_DIR=../shared/data/mnist cargo run --release --example custom_training_loop -- 2
//! ```
//! The optional argument is the number of epochs (default 2).

use burn::backend::Autodiff;
use burn::data::dataloader::DataLoaderBuilder;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::{DataSource, DatasetKind, Mnist, MnistBatcher};
use digitnet::model::{DigitModel, Preset};
use digitnet::train::{FusedAdam, evaluate};

type B = Autodiff<DefaultBackend>;

fn main() -> anyhow::Result<()> {
    let epochs: usize = std::env::args().nth(1).map_or(Ok(2), |a| a.parse())?;
    let learning_rate = 1e-3;
    let device = default_device();
    B::seed(&device, 42);

    let mnist = Mnist::load(&DataSource::new(DatasetKind::Mnist))?;
    let batcher = MnistBatcher::for_dataset(mnist.spec());
    let train_loader = DataLoaderBuilder::<B, _, _>::new(batcher.clone())
        .batch_size(64)
        .shuffle(42)
        .build(mnist.train());

    let mut model: DigitModel<B> = Preset::CnnB.config().init(&device)?;
    // Burn's Adam, each parameter updated in one pass on the CPU backends; PyTorch's epsilon.
    let mut optimizer = FusedAdam::new(1e-8, None).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

    for epoch in 1..=epochs {
        for (i, batch) in train_loader.iter().enumerate() {
            let logits = model.forward(batch.images);
            let loss = loss_fn.forward(logits, batch.targets);
            if i % 100 == 0 {
                let value: f32 = loss.clone().into_scalar().elem();
                println!("epoch {epoch} batch {i:>4}: loss {value:.4}");
            }
            let grads = loss.backward();
            let grads = GradientsParams::from_grads(grads, &model);
            model = optimizer.step(learning_rate, model, grads);
        }
        // Evaluation runs on the inner (non-autodiff) backend: no gradient bookkeeping.
        let test = evaluate(&model.valid(), &mnist.test(), &batcher, 1000, &device);
        println!("epoch {epoch}: test accuracy {:.4}", test.accuracy);
    }
    Ok(())
}
