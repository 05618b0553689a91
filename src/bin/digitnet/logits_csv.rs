//! `digitnet eval --logits FILE`: every image's raw scores as CSV, for checks against other
//! runtimes (benches/interop) and for users who ensemble or calibrate models elsewhere.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use digitnet::data::{MnistSplit, NUM_CLASSES};

/// Writes `index,label,logit_0,...,logit_9` for each image of `split`, in split order, from
/// `logits` (`NUM_CLASSES` values per image, as `evaluate_with_logits` returns them), atomically.
pub fn write_logits(split: &MnistSplit, logits: &[f32], path: &Path) -> anyhow::Result<()> {
    let labels = split.labels();
    anyhow::ensure!(
        logits.len() == labels.len() * NUM_CLASSES,
        "{}: {} scores for {} images; the model's outputs could not all be read back",
        path.display(),
        logits.len(),
        labels.len()
    );
    let mut csv = header();
    for (index, (row, label)) in logits.chunks_exact(NUM_CLASSES).zip(labels).enumerate() {
        write!(csv, "{index},{label}")?;
        for value in row {
            // `{:?}` prints the shortest decimal that reads back as the same f32.
            write!(csv, ",{value:?}")?;
        }
        csv.push('\n');
    }
    digitnet::data::atomic::write_atomic(path, csv.as_bytes())
        .with_context(|| format!("{}: write failed", path.display()))
}

fn header() -> String {
    let mut line = String::from("index,label");
    for class in 0..NUM_CLASSES {
        line.push_str(&format!(",logit_{class}"));
    }
    line.push('\n');
    line
}
