//! Shared output of `train` and `eval`: the evaluation table, the plots, the accuracy line.

use std::path::Path;

use burn::prelude::Backend;
use digitnet::data::{Mnist, MnistBatcher, Split};
use digitnet::model::DigitModel;
use digitnet::train::{evaluate, plot_evaluation};

/// Evaluates `model` on `split`, prints accuracy, loss and per-class precision/recall, writes
/// the confusion matrix and error grid into `plots_dir` (if any) and ends with `<split> accuracy: 0.XXXX`.
pub fn evaluate_and_report<B: Backend>(
    model: &DigitModel<B>,
    data: &Mnist,
    split: Split,
    plots_dir: Option<&Path>,
    device: &B::Device,
) -> anyhow::Result<()> {
    let items = data.split(split);
    let eval = evaluate(
        model,
        &items,
        &MnistBatcher::for_dataset(data.spec()),
        500,
        device,
    );
    let names_list = &data.spec().class_names;
    println!("{split} set: {} images, loss {:.4}", eval.count, eval.loss);
    println!(
        "  {:<12} {:>9} {:>9} {:>7}",
        "class", "precision", "recall", "images"
    );
    for (class, name) in names_list.iter().enumerate() {
        println!(
            "  {:<12} {:>9.4} {:>9.4} {:>7}",
            name,
            eval.precision(class),
            eval.recall(class),
            eval.confusion[class].iter().sum::<usize>()
        );
    }
    if let Some(dir) = plots_dir {
        plot_evaluation(&eval, &items, names_list, dir)?;
        eprintln!("plots written to {}", dir.display());
    }
    println!("{split} accuracy: {:.4}", eval.accuracy);
    Ok(())
}
