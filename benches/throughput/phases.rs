//! Where a training step's time goes: data (batching), forward (with the loss),
//! backward, optimizer step.

use std::time::{Duration, Instant};

use anyhow::Result;
use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::AutodiffBackend;
use digitnet::backend::BackendKind;
use digitnet::data::{MnistBatch, MnistBatcher, MnistItem};
use digitnet::model::Preset;

use crate::cases::Trainer;
use crate::median_secs;

/// Times each phase of training steps on `batch` for about `seconds` and prints one `PHASE` line
/// per phase (median milliseconds).
pub fn profile<B: AutodiffBackend>(
    kind: BackendKind,
    preset: Preset,
    items: &[MnistItem],
    batcher: &MnistBatcher,
    seconds: f64,
    device: &B::Device,
) -> Result<()> {
    let mut trainer = Trainer::<B>::new(preset, device)?;
    let wait = |device: &B::Device| B::sync(device).ok();
    let mut phases: [Vec<Duration>; 4] = Default::default();
    let start = Instant::now();
    let mut steps = 0;
    while steps < 4 || start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        let fresh: MnistBatch<B> = batcher.batch(items.to_vec(), device);
        wait(device);
        let t_data = t.elapsed();
        let t = Instant::now();
        let loss = trainer.forward(&fresh);
        let _ = loss.clone().into_data();
        let t_forward = t.elapsed();
        let t = Instant::now();
        let grads = trainer.backward(loss);
        wait(device);
        let t_backward = t.elapsed();
        let t = Instant::now();
        trainer.update(grads);
        let t_update = t.elapsed();
        if steps > 0 {
            for (phase, time) in phases
                .iter_mut()
                .zip([t_data, t_forward, t_backward, t_update])
            {
                phase.push(time);
            }
        }
        steps += 1;
    }
    for (name, times) in ["data", "forward", "backward", "optimizer"]
        .iter()
        .zip(&phases)
    {
        println!(
            "PHASE {kind} {preset} {name} {:.3}",
            median_secs(times) * 1e3
        );
    }
    Ok(())
}
