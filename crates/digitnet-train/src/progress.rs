//! Training progress for people: a live bar (loss, accuracy, images/s, ETA) on a terminal, one
//! plain line per interval otherwise (CI logs, pipes), and nothing when quiet. It implements
//! burn-train's renderer traits and runs on the learner's event thread, off the training loop.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use burn::train::LearnerSummary;
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::history::{ACCURACY, LOSS};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always the live bar.
    Bar,
    /// Plain lines every few seconds.
    Lines,
    /// Epoch summaries only.
    Quiet,
    /// Burn's full-screen TUI on a terminal (needs the `tui` cargo feature; it keeps a core busy).
    Tui,
}

/// Where progress goes: the bar (if any) or plain stderr lines. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Console {
    /// A console for `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        let bar_wanted = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Bar => true,
            ProgressMode::Lines | ProgressMode::Quiet | ProgressMode::Tui => false,
        };
        let bar = bar_wanted.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            lines: matches!(mode, ProgressMode::Auto | ProgressMode::Lines) && !bar_wanted,
        }
    }

    /// Prints a whole line (above the bar, if there is one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[derive(Default)]
struct SplitState {
    epoch: usize,
    started: Option<Instant>,
    last_line: Option<Instant>,
    first_done: Option<usize>,
    loss: (f64, f64),
    correct: (f64, f64),
}

/// The renderer given to burn-train's `SupervisedTraining`.
pub struct ProgressRenderer {
    console: Console,
    interval: Duration,
    names: HashMap<MetricId, String>,
    train: SplitState,
    valid: SplitState,
}

impl ProgressRenderer {
    /// A renderer printing to `console`, one plain line at most every `interval`.
    pub fn new(console: Console, interval: Duration) -> Self {
        Self {
            console,
            interval,
            names: HashMap::new(),
            train: SplitState::default(),
            valid: SplitState::default(),
        }
    }

    fn record(&mut self, valid: bool, state: MetricState) {
        let MetricState::Numeric(entry, value) = state else {
            return;
        };
        let Some(name) = self.names.get(&entry.metric_id).cloned() else {
            return;
        };
        let (sum, count) = match value {
            NumericEntry::Value(v) => (v, 1.0),
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => (aggregated_value * count as f64, count as f64),
        };
        let split = if valid {
            &mut self.valid
        } else {
            &mut self.train
        };
        match name.as_str() {
            LOSS => {
                split.loss.0 += sum;
                split.loss.1 += count;
            }
            ACCURACY => {
                split.correct.0 += sum;
                split.correct.1 += count;
            }
            _ => {}
        }
    }

    fn render(&mut self, valid: bool, item: &TrainingProgress) {
        let epoch = item.global_progress.items_processed;
        let epochs = item.global_progress.items_total;
        let console = self.console.clone();
        let interval = self.interval;
        let split = if valid {
            &mut self.valid
        } else {
            &mut self.train
        };
        if split.epoch != epoch {
            *split = SplitState {
                epoch,
                ..SplitState::default()
            };
        }
        let now = Instant::now();
        let started = *split.started.get_or_insert(now);
        let Some(progress) = &item.progress else {
            return;
        };
        let (done, total) = (progress.items_processed, progress.items_total);
        // The clock starts at the first batch, so the rate counts the batches after it.
        let first = *split.first_done.get_or_insert(done);
        let elapsed = now.duration_since(started).as_secs_f64();
        let speed = if elapsed > 0.2 && done > first {
            let rate = (done - first) as f64 / elapsed;
            let eta = total.saturating_sub(done) as f64 / rate;
            format!("{rate:.0} img/s ETA {}", format_duration(eta))
        } else {
            "-- img/s".to_string()
        };
        let mean = |(s, n): (f64, f64), decimals: usize| {
            if n > 0.0 {
                format!("{:.*}", decimals, s / n)
            } else {
                "--".to_string()
            }
        };
        let name = if valid { "valid" } else { "train" };
        let message = format!(
            "loss {} acc {}% {speed}",
            mean(split.loss, 4),
            mean(split.correct, 2)
        );
        if let Some(bar) = &console.bar {
            bar.set_prefix(format!("{name} {epoch}/{epochs}"));
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(message);
        } else if console.lines {
            let due = split
                .last_line
                .is_none_or(|t| now.duration_since(t) >= interval);
            if due || done == total {
                split.last_line = Some(now);
                console.println(&format!(
                    "{name} epoch {epoch}/{epochs} [{done}/{total}] {message}"
                ));
            }
        }
    }
}

/// `75` -> `1m15s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(false, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(true, state);
    }

    fn render_train(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        self.render(false, &item);
    }

    fn render_valid(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        self.render(true, &item);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.console.finish();
        Ok(())
    }
}

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.record(true, state);
    }

    fn render_test(&mut self, item: EvaluationProgress, _indicators: Vec<ProgressType>) {
        self.render(true, &TrainingProgress::from(&item));
    }

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.console.finish();
        Ok(())
    }
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {
        self.console.finish();
    }

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(5.4), "5s");
        assert_eq!(format_duration(75.0), "1m15s");
        assert_eq!(format_duration(3725.0), "1h02m");
    }
}
