//! Per-epoch metrics: a burn-train [`MetricLogger`] that aggregates each split's loss, accuracy
//! and learning rate per epoch, keeps them in memory for burn-train's checkpoint and
//! early-stopping strategies, and rewrites `metrics.csv` atomically after every epoch. It also
//! watches every batch's loss: a non-finite one stops training through the [`Interrupter`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split as BurnSplit};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

use digitnet_data::Split;

use crate::error::{Result, TrainError};

/// Burn's names of the metrics digitnet records.
pub(crate) const LOSS: &str = "Loss";
pub(crate) const ACCURACY: &str = "Accuracy";
pub(crate) const LEARNING_RATE: &str = "Learning Rate";

/// One line of `metrics.csv`: a split's averages over one epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// [`Split::Train`] or [`Split::Valid`].
    pub split: Split,
    /// Mean cross-entropy loss.
    pub loss: f64,
    /// Fraction of correct predictions, 0..1.
    pub accuracy: f64,
    /// Mean learning rate over the epoch (train only; 0 for valid).
    pub lr: f64,
    /// Wall time of the epoch's pass over this split.
    pub seconds: f64,
}

const HEADER: &str = "epoch,split,loss,accuracy,lr,seconds";

impl EpochRecord {
    fn to_csv(&self) -> String {
        format!(
            "{},{},{:.6},{:.6},{:.8},{:.2}",
            self.epoch, self.split, self.loss, self.accuracy, self.lr, self.seconds
        )
    }
}

/// Reads `metrics.csv`; a missing file is an empty history.
pub fn read_metrics_csv(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(path, "read", e)),
    };
    parse_metrics_csv(&text, path)
}

/// Parses the text of a `metrics.csv`; `path` only labels errors.
pub fn parse_metrics_csv(text: &str, path: &Path) -> Result<Vec<EpochRecord>> {
    let bad = |line: usize, why: &str| TrainError::Config {
        path: path.to_path_buf(),
        message: format!("line {line}: {why}"),
    };
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 6 {
            return Err(bad(i + 1, "expected 6 comma-separated fields"));
        }
        let num = |k: usize| {
            fields[k]
                .parse::<f64>()
                .map_err(|_| bad(i + 1, "not a number"))
        };
        records.push(EpochRecord {
            epoch: fields[0]
                .parse()
                .map_err(|_| bad(i + 1, "bad epoch number"))?,
            split: fields[1].parse().map_err(|e: String| bad(i + 1, &e))?,
            loss: num(2)?,
            accuracy: num(3)?,
            lr: num(4)?,
            seconds: num(5)?,
        });
    }
    Ok(records)
}

/// Writes `records` to `path` atomically.
pub fn write_metrics_csv(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in records {
        text.push_str(&r.to_csv());
        text.push('\n');
    }
    digitnet_data::atomic::write_atomic(path, text.as_bytes()).map_err(|e| TrainError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Called with each completed epoch record (e.g. to print a summary line).
pub type EpochCallback = Box<dyn FnMut(&EpochRecord) + Send>;

/// Where a non-finite loss stopped training.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// [`Split::Train`] or [`Split::Valid`].
    pub split: Split,
    /// 1-based epoch.
    pub epoch: usize,
    /// 1-based batch within the epoch.
    pub batch: usize,
    /// The loss value.
    pub value: f64,
}

#[derive(Default)]
struct Sums {
    /// metric name -> (sum of value * count, count)
    values: HashMap<String, (f64, f64)>,
    started: Option<Instant>,
    batches: usize,
}

/// The logger: see the module documentation.
pub struct EpochHistory {
    path: PathBuf,
    names: HashMap<MetricId, String>,
    pending: HashMap<Split, Sums>,
    records: Arc<Mutex<Vec<EpochRecord>>>,
    on_epoch: Option<EpochCallback>,
    /// The epoch in progress (the one after the last summarised).
    current_epoch: HashMap<Split, usize>,
    first_epoch: usize,
    interrupter: Option<Interrupter>,
    divergence: Arc<Mutex<Option<Divergence>>>,
}

impl EpochHistory {
    /// A logger writing `path`, starting from `previous` records (those of a resumed run).
    pub fn new(path: PathBuf, previous: Vec<EpochRecord>, on_epoch: Option<EpochCallback>) -> Self {
        let first_epoch = previous.iter().map(|r| r.epoch).max().unwrap_or(0) + 1;
        Self {
            path,
            names: HashMap::new(),
            pending: HashMap::new(),
            records: Arc::new(Mutex::new(previous)),
            on_epoch,
            current_epoch: HashMap::new(),
            first_epoch,
            interrupter: None,
            divergence: Arc::default(),
        }
    }

    /// Stops training through `interrupter` at the first non-finite loss.
    pub fn stop_on_divergence(mut self, interrupter: Interrupter) -> Self {
        self.interrupter = Some(interrupter);
        self
    }

    /// Where training diverged, if it did.
    pub fn divergence(&self) -> Arc<Mutex<Option<Divergence>>> {
        Arc::clone(&self.divergence)
    }

    /// A shared handle on the records, readable after training.
    pub fn records(&self) -> Arc<Mutex<Vec<EpochRecord>>> {
        Arc::clone(&self.records)
    }
}

fn split_of(split: &BurnSplit) -> Split {
    match split {
        BurnSplit::Train => Split::Train,
        BurnSplit::Valid => Split::Valid,
        BurnSplit::Test(_) => Split::Test,
    }
}

fn entry_sum(entry: &NumericEntry) -> (f64, f64) {
    match entry {
        NumericEntry::Value(v) => (*v, 1.0),
        NumericEntry::Aggregated {
            aggregated_value,
            count,
        } => (aggregated_value * *count as f64, *count as f64),
    }
}

impl MetricLogger for EpochHistory {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &BurnSplit) {
        let split = split_of(split);
        let epoch = *self.current_epoch.entry(split).or_insert(self.first_epoch);
        let sums = self.pending.entry(split).or_default();
        sums.started.get_or_insert_with(Instant::now);
        sums.batches += 1;
        let mut diverged = None;
        for numeric in update.entries_numeric {
            let Some(name) = self.names.get(&numeric.entry.metric_id) else {
                continue;
            };
            let (sum, count) = entry_sum(&numeric.numeric_entry);
            if name == LOSS && !sum.is_finite() {
                diverged = Some(sum / count.max(1.0));
            }
            let slot = sums.values.entry(name.clone()).or_insert((0.0, 0.0));
            slot.0 += sum;
            slot.1 += count;
        }
        if let Some(value) = diverged {
            let batch = sums.batches;
            let mut slot = self.divergence.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(Divergence {
                    split,
                    epoch,
                    batch,
                    value,
                });
                if let Some(interrupter) = &self.interrupter {
                    interrupter.stop(Some("non-finite loss"));
                }
            }
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &BurnSplit,
    ) -> Result<Vec<NumericEntry>, String> {
        let records = self.records.lock().map_err(|e| e.to_string())?;
        let split = split_of(split);
        Ok(records
            .iter()
            .filter(|r| r.epoch == epoch && r.split == split)
            .filter_map(|r| match name {
                LOSS => Some(r.loss),
                ACCURACY => Some(r.accuracy * 100.0),
                LEARNING_RATE => Some(r.lr),
                _ => None,
            })
            .map(NumericEntry::Value)
            .collect())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let split = split_of(&summary.split);
        self.current_epoch.insert(split, summary.epoch_number + 1);
        let sums = self.pending.remove(&split).unwrap_or_default();
        let mean = |name: &str| {
            sums.values
                .get(name)
                .filter(|(_, n)| *n > 0.0)
                .map_or(0.0, |(s, n)| s / n)
        };
        let record = EpochRecord {
            epoch: summary.epoch_number,
            split,
            loss: mean(LOSS),
            accuracy: mean(ACCURACY) / 100.0,
            lr: mean(LEARNING_RATE),
            seconds: sums.started.map_or(0.0, |t| t.elapsed().as_secs_f64()),
        };
        if let Ok(mut records) = self.records.lock() {
            records.retain(|r| !(r.epoch == record.epoch && r.split == record.split));
            records.push(record.clone());
            records.sort_by_key(|r| (r.epoch, r.split));
            // The in-memory history stays correct either way; a failed write is reported at once
            // and training goes on (the model and checkpoints are written elsewhere).
            if let Err(e) = write_metrics_csv(&self.path, &records) {
                eprintln!("warning: could not update metrics.csv: {e}");
            }
        }
        if let Some(callback) = &mut self.on_epoch {
            callback(&record);
        }
    }
}

/// Groups records by epoch: `epoch -> (train, valid)`.
pub fn by_epoch(
    records: &[EpochRecord],
) -> BTreeMap<usize, (Option<&EpochRecord>, Option<&EpochRecord>)> {
    let mut out: BTreeMap<usize, (Option<&EpochRecord>, Option<&EpochRecord>)> = BTreeMap::new();
    for r in records {
        let slot = out.entry(r.epoch).or_default();
        match r.split {
            Split::Train => slot.0 = Some(r),
            Split::Valid => slot.1 = Some(r),
            Split::Test => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let records = vec![
            EpochRecord {
                epoch: 1,
                split: Split::Train,
                loss: 0.5,
                accuracy: 0.9,
                lr: 0.001,
                seconds: 12.5,
            },
            EpochRecord {
                epoch: 1,
                split: Split::Valid,
                loss: 0.25,
                accuracy: 0.95,
                lr: 0.0,
                seconds: 1.0,
            },
        ];
        write_metrics_csv(&path, &records).unwrap();
        assert_eq!(read_metrics_csv(&path).unwrap(), records);
        assert!(
            read_metrics_csv(&dir.path().join("none.csv"))
                .unwrap()
                .is_empty()
        );
        std::fs::write(&path, "h\n1,train,x,1,1,1\n").unwrap();
        assert!(
            read_metrics_csv(&path)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }
}
