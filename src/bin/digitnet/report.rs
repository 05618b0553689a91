//! Shared output of `train` and `eval`: the evaluation table, the plots, the accuracy line.

use std::path::Path;

use burn::prelude::Backend;
use digitnet::data::{Mnist, MnistBatcher, Split};
use digitnet::model::DigitModel;
use digitnet::train::{evaluate, evaluate_with_logits, plot_evaluation};

use crate::logits_csv;

/// Evaluates `model` on `split`, prints accuracy, loss and per-class precision/recall, writes
/// the confusion matrix and error grid into `plots_dir` (if any), every image's raw scores into
/// `logits_path` (if any), from the same pass, and ends with `<split> accuracy: 0.XXXX`.
pub fn evaluate_and_report<B: Backend>(
    model: &DigitModel<B>,
    data: &Mnist,
    split: Split,
    plots_dir: Option<&Path>,
    logits_path: Option<&Path>,
    device: &B::Device,
) -> anyhow::Result<()> {
    let items = data.split(split);
    let batcher = MnistBatcher::for_dataset(data.spec());
    let eval = match logits_path {
        Some(path) => {
            let (eval, logits) = evaluate_with_logits(model, &items, &batcher, 500, device);
            logits_csv::write_logits(&items, &logits, path)?;
            eprintln!(
                "logits of {} images written to {}",
                eval.count,
                path.display()
            );
            eval
        }
        None => evaluate(model, &items, &batcher, 500, device),
    };
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
