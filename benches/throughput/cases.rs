//! The in-process figures for one backend: training and inference throughput per model and batch
//! size, single-image latency, batcher throughput, and the per-phase profile of a training step.

use anyhow::Result;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use digitnet::backend::{BackendJob, BackendKind};
use digitnet::data::{AugmentConfig, Augmenter, Mnist, MnistBatch, MnistBatcher, MnistItem};
use digitnet::model::{DigitModel, Preset};
use digitnet::train::FusedAdam;

use crate::{Args, median_secs, result, time_repeated};

/// Every in-process figure for one backend.
pub struct Cases {
    /// What to measure.
    pub args: Args,
    /// The images.
    pub mnist: Mnist,
    /// The backend being measured (for the output lines).
    pub kind: BackendKind,
}

impl BackendJob for Cases {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Result<()> {
        let device = &devices[0];
        let Cases { args, mnist, kind } = self;
        let batcher = MnistBatcher::for_dataset(mnist.spec());
        let items: Vec<MnistItem> = (0..mnist.train().len().min(1000))
            .filter_map(|i| mnist.train().get(i))
            .collect();
        let batch_of = |n: usize| -> MnistBatch<B> {
            let batch: Vec<MnistItem> = items.iter().cycle().take(n).cloned().collect();
            batcher.batch(batch, device)
        };

        let times = time_repeated(args.seconds, || {
            let _: MnistBatch<B> = batcher.batch(items[..64].to_vec(), device);
        });
        result(kind, "-", "batcher@64", 64.0 / median_secs(&times));
        let augmenter = Augmenter::new(AugmentConfig::new(), 42)?;
        let mut draw = 0;
        let times = time_repeated(args.seconds, || {
            for (i, item) in items[..64].iter().enumerate() {
                std::hint::black_box(augmenter.augment(&item.image, i, draw));
            }
            draw += 1;
        });
        result(kind, "-", "augment@64", 64.0 / median_secs(&times));
        if args.peak {
            let peak = crate::flops::peak_gflops::<B::InnerBackend>(args.seconds, device);
            result(kind, "-", "peak-gflops", peak);
        }

        for &preset in &args.models {
            let name = preset.name();
            result(
                kind,
                name,
                "flops-per-image",
                crate::flops::forward_flops(preset)?,
            );
            B::seed(device, 42);
            for &n in &args.train_batches {
                let batch = batch_of(n);
                let mut trainer = Trainer::<B>::new(preset, device)?;
                let times = time_repeated(args.seconds, || trainer.step(&batch));
                result(
                    kind,
                    name,
                    &format!("train@{n}"),
                    n as f64 / median_secs(&times),
                );
            }
            let items64: Vec<MnistItem> = items.iter().cycle().take(64).cloned().collect();
            crate::phases::profile::<B>(kind, preset, &items64, &batcher, args.seconds, device)?;
            if args.layers {
                crate::layers::profile::<B>(kind, preset, args.seconds, device);
            }

            let model = preset.config().init::<B>(device)?.valid();
            for &n in &args.infer_batches {
                let images = batch_of(n).images.inner();
                let times = time_repeated(args.seconds, || {
                    let logits = model.forward(images.clone());
                    let _ = logits.into_data();
                });
                let secs = median_secs(&times);
                if n == 1 {
                    result(kind, name, "latency", secs * 1e3);
                }
                result(kind, name, &format!("infer@{n}"), n as f64 / secs);
            }
        }
        Ok(())
    }
}

/// A model, its Adam optimizer (PyTorch's settings: lr 1e-3, epsilon 1e-8) and its loss: the
/// training step every figure times.
pub struct Trainer<B: AutodiffBackend> {
    model: Option<DigitModel<B>>,
    optimizer: burn::optim::adaptor::OptimizerAdaptor<FusedAdam, DigitModel<B>, B>,
    loss: burn::nn::loss::CrossEntropyLoss<B>,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// A freshly initialised `preset` on `device`.
    pub fn new(preset: Preset, device: &B::Device) -> Result<Self> {
        Ok(Self {
            model: Some(preset.config().init(device)?),
            optimizer: FusedAdam::new(1e-8, None).init(),
            loss: CrossEntropyLossConfig::new().init(device),
        })
    }

    /// The loss of `batch` under the current model (the forward pass, kept for backward).
    pub fn forward(&self, batch: &MnistBatch<B>) -> Tensor<B, 1> {
        let model = self
            .model
            .as_ref()
            .expect("model is only taken inside step");
        self.loss
            .forward(model.forward(batch.images.clone()), batch.targets.clone())
    }

    /// The gradients of `loss` with respect to the model's parameters.
    pub fn backward(&self, loss: Tensor<B, 1>) -> GradientsParams {
        let model = self
            .model
            .as_ref()
            .expect("model is only taken inside step");
        let grads = loss.backward();
        GradientsParams::from_grads(grads, model)
    }

    /// One optimizer step with `grads`; waits until the new parameters exist.
    pub fn update(&mut self, grads: GradientsParams) {
        let model = self.model.take().expect("model is only taken inside step");
        let model = self.optimizer.step(1e-3, model, grads);
        B::sync(&model.devices()[0]).ok();
        self.model = Some(model);
    }

    /// Forward, backward and optimizer step on `batch`; reads the loss back (as a training loop
    /// that prints it does), which also waits for an asynchronous backend.
    pub fn step(&mut self, batch: &MnistBatch<B>) {
        let loss = self.forward(batch);
        let _ = loss.clone().into_data();
        let grads = self.backward(loss);
        self.update(grads);
    }
}
