//! The run's pictures: loss and accuracy curves (train vs valid per epoch), the confusion matrix,
//! and a grid of misclassified images. Drawn with `plotters` into memory, written atomically.

use std::path::Path;
use std::sync::Once;

use digitnet_data::grid::{self, ALERT, GridCell};
use digitnet_data::{MnistSplit, NUM_CLASSES};
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::error::{Result, TrainError};
use crate::evaluate::Evaluation;
use crate::history::{EpochRecord, by_epoch};

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

fn register() {
    REGISTER_FONT.call_once(|| {
        // The font is compiled in, so this cannot fail at run time for a valid build.
        let _ = register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// Which curve to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// Mean cross-entropy loss.
    Loss,
    /// Accuracy in percent.
    Accuracy,
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn save(path: &Path, width: u32, height: u32, buffer: Vec<u8>) -> Result<()> {
    let img = RgbImage::from_raw(width, height, buffer)
        .ok_or_else(|| plot_error(path, "bitmap size mismatch"))?;
    grid::save_png(&img, path).map_err(|e| plot_error(path, e))
}

/// Writes an evaluation's pictures into `dir`: `confusion.png` (the confusion matrix) and
/// `errors.png` (up to 100 misclassified images of `split`, each with its label and the
/// prediction). [`train`](crate::train) draws the loss and accuracy curves itself.
pub fn plot_evaluation(
    eval: &Evaluation,
    split: &MnistSplit,
    class_names: &[String],
    dir: &Path,
) -> Result<()> {
    use crate::artifacts::names;
    plot_confusion(eval, class_names, &dir.join(names::CONFUSION_PLOT))?;
    plot_errors(eval, split, 100, &dir.join(names::ERRORS_GRID))
}

/// Draws `curve` for the train and valid splits, epoch by epoch, to `path` (PNG).
pub fn plot_curve(records: &[EpochRecord], curve: Curve, path: &Path) -> Result<()> {
    register();
    let (w, h) = (800u32, 500u32);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    let epochs = by_epoch(records);
    let value = |r: &EpochRecord| match curve {
        Curve::Loss => r.loss,
        Curve::Accuracy => r.accuracy * 100.0,
    };
    let series = |valid: bool| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .filter_map(|(&e, (t, v))| {
                let r = if valid { v } else { t };
                r.map(|r| (e as f64, value(r)))
            })
            .filter(|(_, y)| y.is_finite())
            .collect()
    };
    let (train, valid) = (series(false), series(true));
    let all = train.iter().chain(valid.iter());
    let (mut lo, mut hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), &(_, y)| {
        (lo.min(y), hi.max(y))
    });
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let last_epoch = epochs.keys().last().copied().unwrap_or(1).max(2) as f64;
    let (title, y_label) = match curve {
        Curve::Loss => ("Loss per epoch", "cross-entropy loss"),
        Curve::Accuracy => ("Accuracy per epoch", "accuracy (%)"),
    };
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(1.0..last_epoch, (lo - pad)..(hi + pad))
            .map_err(|e| plot_error(path, e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_label)
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        for (points, color, name) in [(&train, BLUE, "train"), (&valid, RED, "valid")] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| plot_error(path, e))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| plot_error(path, e))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .label_font((FONT, 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save(path, w, h, buffer)
}

/// Draws the confusion matrix (rows: true class, columns: predicted) with counts, to `path`.
pub fn plot_confusion(eval: &Evaluation, class_names: &[String], path: &Path) -> Result<()> {
    register();
    let (w, h) = (760u32, 720u32);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    let max_off_diagonal = (0..NUM_CLASSES)
        .flat_map(|t| {
            (0..NUM_CLASSES)
                .filter(move |&p| p != t)
                .map(move |p| (t, p))
        })
        .map(|(t, p)| eval.confusion[t][p])
        .max()
        .unwrap_or(0)
        .max(1);
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let title = format!(
            "Confusion matrix: {} images, accuracy {:.2}%",
            eval.count,
            eval.accuracy * 100.0
        );
        // Segmented axes put each class label at the centre of its cell; rows are drawn top
        // down (true class 0 first), so row `t` sits at segment `9 - t`.
        let last = NUM_CLASSES - 1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(90)
            // A segmented `0..last` range has one segment per value of `0..=last`.
            .build_cartesian_2d((0..last).into_segmented(), (0..last).into_segmented())
            .map_err(|e| plot_error(path, e))?;
        let label = |v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < NUM_CLASSES => {
                let class = if flip { last - i } else { *i };
                class_names
                    .get(class)
                    .cloned()
                    .unwrap_or_else(|| class.to_string())
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(NUM_CLASSES)
            .y_labels(NUM_CLASSES)
            .x_label_formatter(&|v| label(v, false))
            .y_label_formatter(&|v| label(v, true))
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        let cells = (0..NUM_CLASSES).flat_map(|t| (0..NUM_CLASSES).map(move |p| (t, p)));
        chart
            .draw_series(cells.clone().map(|(t, p)| {
                let count = eval.confusion[t][p];
                let color = if t == p {
                    RGBColor(46, 139, 87).mix(if count > 0 { 0.85 } else { 0.1 })
                } else {
                    let share = count as f64 / max_off_diagonal as f64;
                    RGBColor(200, 30, 30).mix(if count > 0 { 0.15 + 0.85 * share } else { 0.0 })
                };
                let row = last - t;
                Rectangle::new(
                    [
                        (SegmentValue::Exact(p), SegmentValue::Exact(row + 1)),
                        (SegmentValue::Exact(p + 1), SegmentValue::Exact(row)),
                    ],
                    color.filled(),
                )
            }))
            .map_err(|e| plot_error(path, e))?;
        let centred = (FONT, 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series(cells.map(|(t, p)| {
                Text::new(
                    eval.confusion[t][p].to_string(),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(last - t)),
                    centred.clone(),
                )
            }))
            .map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save(path, w, h, buffer)
}

/// Draws up to `max` misclassified images of `split`, captioned `true->predicted`, to `path`.
pub fn plot_errors(eval: &Evaluation, split: &MnistSplit, max: usize, path: &Path) -> Result<()> {
    let cells: Vec<GridCell> = eval
        .misclassified
        .iter()
        .take(max)
        .filter_map(|m| {
            Some(GridCell {
                pixels: split.image(m.index)?,
                caption: format!("{}>{}", m.label, m.predicted),
                color: ALERT,
            })
        })
        .collect();
    let img = grid::render_grid(&cells, 10, 2);
    grid::save_png(&img, path).map_err(|e| plot_error(path, e))
}
