//! The inference worker: one thread owns the model and answers requests in batches. Each wake-up
//! takes every request waiting (up to [`MAX_BATCH`]) and runs them as one forward pass, so under
//! load the server does fewer, larger passes instead of queueing single images.

use std::sync::mpsc;

use burn::prelude::Backend;
use digitnet::data::{IMAGE_PIXELS, MnistBatcher};
use digitnet::model::DigitModel;
use digitnet::train::{Prediction, predict};
use tokio::sync::oneshot;

/// Most images in one forward pass.
pub const MAX_BATCH: usize = 64;

/// One image to classify and where to send the answer.
pub struct Job {
    /// The 28x28 image (0 = background, 255 = ink).
    pub image: [u8; IMAGE_PIXELS],
    /// The answer goes here.
    pub reply: oneshot::Sender<Prediction>,
}

/// Starts the worker thread with `model` on `device`; it runs until every sender is dropped.
pub fn spawn<B: Backend>(
    model: DigitModel<B>,
    batcher: MnistBatcher,
    device: B::Device,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (sender, receiver) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("digitnet-inference".into())
        .spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let images: Vec<[u8; IMAGE_PIXELS]> = jobs.iter().map(|j| j.image).collect();
                let predictions = predict(&model, &images, &batcher, &device);
                for (job, p) in jobs.into_iter().zip(predictions) {
                    // The client may have gone away; nothing to do then.
                    let _ = job.reply.send(p);
                }
            }
        })?;
    Ok(sender)
}
