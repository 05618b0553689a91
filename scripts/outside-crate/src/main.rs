//! A crate outside the workspace using only what digitnet's README shows: the quick start
//! (train the default CNN, evaluate, predict a PNG) and a user-defined model (train, load back).
use burn::backend::Autodiff;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;
use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::{DataSource, DatasetKind, Mnist, MnistBatcher};
use digitnet::model::Preset;
use digitnet::train::{
    ImageClassifier, OptimizerConfig, OptimizerKind, TrainOptions, TrainingConfig, evaluate,
    evaluate_with_logits, load_module, train,
};

#[derive(Module, Debug)]
struct TwoLayer<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
    relu: Relu,
}

impl<B: Backend> ImageClassifier<B> for TwoLayer<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.relu.forward(self.hidden.forward(images.flatten(1, 3)));
        self.out.forward(x)
    }
}

fn two_layer<B: Backend>(device: &B::Device) -> TwoLayer<B> {
    TwoLayer {
        hidden: LinearConfig::new(28 * 28, 128).init(device),
        out: LinearConfig::new(128, 10).init(device),
        relu: Relu::new(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("backend: {}", std::any::type_name::<DefaultBackend>());
    let data = Mnist::load(&DataSource::new(DatasetKind::Mnist))?;
    let config = TrainingConfig::for_preset(Preset::CnnBn).with_epochs(1);
    let device = default_device();
    let model = config
        .digit_model()?
        .init::<Autodiff<DefaultBackend>>(&device)?;
    let outcome = train(
        model,
        &config,
        &data,
        &TrainOptions::new("artifacts/cnn"),
        &device,
    )?;
    let batcher = MnistBatcher::for_dataset(data.spec());
    let test = evaluate(&outcome.model, &data.test(), &batcher, 500, &device);
    println!("quick start: test accuracy {:.4}", test.accuracy);
    let (same, logits) = evaluate_with_logits(&outcome.model, &data.test(), &batcher, 500, &device);
    println!(
        "evaluate_with_logits: {} scores, the same evaluation: {}",
        logits.len(),
        same == test
    );
    let png = std::env::args().nth(1).expect("a PNG of a digit");
    let digit = digitnet::data::preprocess::load_digit(std::path::Path::new(&png))?;
    let prediction = digitnet::train::predict(&outcome.model, &[digit], &batcher, &device);
    println!("it reads {}", prediction[0].digit);

    let config = TrainingConfig::new(OptimizerConfig::new(OptimizerKind::Adam)).with_epochs(3);
    let model = two_layer::<Autodiff<DefaultBackend>>(&device);
    let mine = train(
        model,
        &config,
        &data,
        &TrainOptions::new("artifacts/mine"),
        &device,
    )?;
    let path = std::path::Path::new("artifacts/mine/model.safetensors");
    let loaded = load_module(two_layer::<DefaultBackend>(&device), path)?;
    let a = evaluate(&mine.model, &data.test(), &batcher, 500, &device).accuracy;
    let b = evaluate(&loaded, &data.test(), &batcher, 500, &device).accuracy;
    println!("own model: test accuracy {a:.4}, reloaded {b:.4}");
    Ok(())
}
