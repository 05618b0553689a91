//! Load MNIST, look at it, batch it, and push a batch through an (untrained) CNN: the first steps
//! of every MNIST tutorial.
//!
//! ```text
//! DIGITNET_DATA_DIR=../shared/data/mnist cargo run --release --example explore_data
//! ```
//! Without `DIGITNET_DATA_DIR`, the files are read from (or downloaded into) the cache directory.

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::module::Module;
use digitnet::backend::{DefaultBackend, default_device};
use digitnet::data::grid::{self, GridCell, INK};
use digitnet::data::{DataSource, DatasetKind, Mnist, MnistBatcher};
use digitnet::model::Preset;

fn main() -> anyhow::Result<()> {
    // Chosen by cargo feature: flex by default, ndarray with `--no-default-features --features
    // ndarray`, wgpu with `--features wgpu`.
    println!("backend: {}", std::any::type_name::<DefaultBackend>());
    let mnist = Mnist::load(&DataSource::new(DatasetKind::Mnist))?;
    let (train, valid, test) = (mnist.train(), mnist.valid(), mnist.test());
    println!(
        "train {} / valid {} / test {} images",
        train.len(),
        valid.len(),
        test.len()
    );
    println!("train label histogram: {:?}", train.label_histogram());

    // Look at the data: the first 16 training images with their labels.
    let cells: Vec<GridCell> = (0..16)
        .filter_map(|i| {
            Some(GridCell {
                pixels: train.image(i)?,
                caption: train.label(i)?.to_string(),
                color: INK,
            })
        })
        .collect();
    grid::save_png(&grid::render_grid(&cells, 8, 3), "samples.png".as_ref())?;
    println!("wrote samples.png");

    // Shuffle and batch, normalising with MNIST's mean and std.
    let device = default_device();
    let loader =
        DataLoaderBuilder::<DefaultBackend, _, _>::new(MnistBatcher::for_dataset(mnist.spec()))
            .batch_size(64)
            .shuffle(42)
            .build(train);
    let batch = loader
        .iter()
        .next()
        .expect("the training split is not empty");
    println!(
        "one batch: images {:?}, targets {:?}",
        batch.images.dims(),
        batch.targets.dims()
    );

    // A forward pass through CNN B (untrained, so about 10% of the guesses are right).
    let model = Preset::CnnB.config().init::<DefaultBackend>(&device)?;
    let logits = model.forward(batch.images);
    println!(
        "CNN B has {} parameters; logits {:?}",
        model.num_params(),
        logits.dims()
    );
    Ok(())
}
