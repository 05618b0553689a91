//! `digitnet info`: what a dataset holds and whether its files are the official ones.

use std::io::Write;

use burn::data::dataset::Dataset;
use digitnet::data::{ChecksumStatus, Split};

use crate::cli::InfoArgs;

/// Prints files, checksum status, split sizes, label histograms and pixel statistics.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let mnist = args.data.load()?;
    let spec = mnist.spec();
    let mut out = std::io::stdout().lock();
    writeln!(out, "dataset: {}", spec.name)?;
    writeln!(out, "files:")?;
    for file in mnist.files() {
        let status = match &file.status {
            ChecksumStatus::Verified => "checksum OK".to_string(),
            ChecksumStatus::Mismatch { .. } => {
                format!(
                    "checksum MISMATCH (sha256 {}: not the official file)",
                    file.sha256
                )
            }
            ChecksumStatus::Unknown => format!("no published checksum (sha256 {})", file.sha256),
        };
        writeln!(
            out,
            "  {:<24} {}  {}",
            file.name,
            status,
            file.path.display()
        )?;
    }
    let train = mnist.train();
    let valid = mnist.valid();
    let test = mnist.test();
    writeln!(
        out,
        "training images: {} (train split {} + validation split {}), test images: {}",
        train.len() + valid.len(),
        train.len(),
        valid.len(),
        test.len()
    )?;
    writeln!(out, "label histogram:")?;
    write!(out, "  {:<6}", "split")?;
    for name in &spec.class_names {
        write!(out, " {:>7}", truncate(name, 7))?;
    }
    writeln!(out)?;
    for split in Split::ALL {
        let histogram = mnist.split(split).label_histogram();
        write!(out, "  {:<6}", split.name())?;
        for count in histogram {
            write!(out, " {count:>7}")?;
        }
        writeln!(out)?;
    }
    let (mean, std) = train.pixel_mean_std();
    writeln!(
        out,
        "pixel mean/std of the train split: {mean:.4} / {std:.4} (normalisation uses {:.4} / {:.4})",
        spec.mean, spec.std
    )?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
