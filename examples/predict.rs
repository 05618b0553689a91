//! Recognise your own handwritten digits: PNG or JPEG files, any size, dark ink on light paper
//! or the reverse. Uses a trained artifact directory.
//!
//! ```text
//! cargo run --release --example predict -- artifacts/cnn-bn my-digit.png another.jpg
//! ```

use std::path::{Path, PathBuf};

use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::MnistBatcher;
use digitnet::data::preprocess::load_digit;
use digitnet::train::{ArtifactDir, model_io, predict};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let artifacts = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: predict ARTIFACT_DIR IMAGE..."))?;
    let images: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let device = default_device();
    let (config, model) =
        model_io::load_model::<DefaultBackend>(&ArtifactDir::new(Path::new(&artifacts)), &device)?;
    let kind = config.dataset;
    let digits = images
        .iter()
        .map(|p| load_digit(p))
        .collect::<Result<Vec<_>, _>>()?;
    let predictions = predict(
        &model,
        &digits,
        &MnistBatcher::for_dataset(&kind.spec()),
        &device,
    );
    for (path, p) in images.iter().zip(predictions) {
        println!("{} {} {:.4}", path.display(), p.digit, p.confidence());
    }
    Ok(())
}
