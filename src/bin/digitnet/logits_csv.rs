//! `digitnet eval --logits FILE`: every image's raw scores as CSV, for checks against other
//! runtimes (benches/interop) and for users who ensemble or calibrate models elsewhere.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use burn::data::dataset::Dataset;
use burn::prelude::Backend;
use digitnet::data::{MnistBatcher, MnistSplit, NUM_CLASSES};
use digitnet::model::DigitModel;
use digitnet::train::ImageClassifier;

/// Images per forward pass.
const BATCH: usize = 500;

/// Writes `index,label,logit_0,...,logit_9` for each image of `split`, in split order,
/// atomically, and returns how many rows it wrote.
pub fn write_logits<B: Backend>(
    model: &DigitModel<B>,
    split: &MnistSplit,
    batcher: &MnistBatcher,
    path: &Path,
    device: &B::Device,
) -> anyhow::Result<usize> {
    let mut csv = header();
    let labels = split.labels();
    for start in (0..split.len()).step_by(BATCH) {
        let end = (start + BATCH).min(split.len());
        let pixels = split
            .images(start..end)
            .with_context(|| format!("images {start}..{end} are missing from the split"))?;
        let logits: Vec<f32> = model
            .logits(batcher.images::<B>(pixels, device))
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("cannot read the logits back: {e:?}"))?;
        for (row, index) in logits.chunks_exact(NUM_CLASSES).zip(start..end) {
            write!(csv, "{index},{}", labels[index])?;
            for value in row {
                // `{:?}` prints the shortest decimal that reads back as the same f32.
                write!(csv, ",{value:?}")?;
            }
            csv.push('\n');
        }
    }
    digitnet::data::atomic::write_atomic(path, csv.as_bytes())
        .with_context(|| format!("{}: write failed", path.display()))?;
    Ok(split.len())
}

fn header() -> String {
    let mut line = String::from("index,label");
    for class in 0..NUM_CLASSES {
        line.push_str(&format!(",logit_{class}"));
    }
    line.push('\n');
    line
}
