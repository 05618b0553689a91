//! `digitnet show`: a PNG grid of samples with their labels (the "look at the data" step).

use anyhow::{Context, bail};
use burn::data::dataset::Dataset;
use digitnet::data::grid::{self, GridCell, INK};
use digitnet::data::{Augmenter, IMAGE_PIXELS};

use crate::cli::ShowArgs;

/// Draws `count` samples of a split, starting at `start`, to `out`.
pub fn run(args: &ShowArgs) -> anyhow::Result<()> {
    let mnist = args.data.load()?;
    let split = mnist.split(args.split);
    if args.start >= split.len() {
        bail!(
            "--start {} is past the end of the {} split ({} images)",
            args.start,
            args.split,
            split.len()
        );
    }
    let end = (args.start + args.count as usize).min(split.len());
    let names = &mnist.spec().class_names;
    let augmenter = match &args.augment {
        Some(config) => Some(Augmenter::new(config.clone(), args.seed)?),
        None => None,
    };
    let images: Vec<[u8; IMAGE_PIXELS]> = (args.start..end)
        .filter_map(|i| {
            let pixels = split.image(i)?;
            Some(match &augmenter {
                Some(augmenter) => augmenter.augment(pixels, i, 0),
                None => pixels.try_into().ok()?,
            })
        })
        .collect();
    let cells: Vec<GridCell> = (args.start..end)
        .zip(&images)
        .filter_map(|(i, pixels)| {
            let label = usize::from(split.label(i)?);
            Some(GridCell {
                pixels,
                caption: names[label].clone(),
                color: INK,
            })
        })
        .collect();
    let image = grid::render_grid(&cells, args.columns as usize, args.scale);
    grid::save_png(&image, &args.out).with_context(|| "writing the sample grid")?;
    println!(
        "wrote {} ({} {}{} samples, #{}..#{})",
        args.out.display(),
        cells.len(),
        if augmenter.is_some() {
            "augmented "
        } else {
            ""
        },
        args.split,
        args.start,
        end - 1
    );
    Ok(())
}
