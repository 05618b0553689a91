//! The learning-rate scheduler: a pure function of the batch index, so resuming restores it
//! exactly from a single counter.

use burn::lr_scheduler::LrScheduler;
use burn::optim::LearningRate;
use burn::prelude::Backend;

use crate::config::LrSchedule;

/// Steps through a [`LrSchedule`] one batch at a time.
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedule: LrSchedule,
    peak: f64,
    batches_per_epoch: usize,
    total_batches: usize,
    /// Batches already stepped.
    step: usize,
}

impl Scheduler {
    /// A scheduler for `epochs` epochs of `batches_per_epoch` batches.
    pub fn new(schedule: LrSchedule, peak: f64, batches_per_epoch: usize, epochs: usize) -> Self {
        Self {
            schedule,
            peak,
            batches_per_epoch: batches_per_epoch.max(1),
            total_batches: (batches_per_epoch * epochs).max(1),
            step: 0,
        }
    }

    /// The rate for batch `index` (0-based).
    pub fn rate_at(&self, index: usize) -> f64 {
        match &self.schedule {
            LrSchedule::Constant => self.peak,
            LrSchedule::Cosine { final_fraction } => {
                let last = (self.total_batches - 1).max(1) as f64;
                let progress = (index as f64 / last).min(1.0);
                let floor = self.peak * final_fraction;
                floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            LrSchedule::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = index / self.batches_per_epoch;
                self.peak * gamma.powi((epoch / (*every_epochs).max(1)) as i32)
            }
        }
    }
}

impl LrScheduler for Scheduler {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let rate = self.rate_at(self.step);
        self.step += 1;
        rate
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.step = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_starts_at_peak_and_ends_at_the_floor() {
        let s = Scheduler::new(
            LrSchedule::Cosine {
                final_fraction: 0.1,
            },
            1.0,
            10,
            3,
        );
        assert!((s.rate_at(0) - 1.0).abs() < 1e-12);
        assert!((s.rate_at(29) - 0.1).abs() < 1e-12);
        assert!(s.rate_at(10) > s.rate_at(20));
    }

    #[test]
    fn step_decays_every_n_epochs() {
        let s = Scheduler::new(
            LrSchedule::Step {
                every_epochs: 2,
                gamma: 0.5,
            },
            0.8,
            5,
            6,
        );
        assert_eq!(s.rate_at(9), 0.8);
        assert_eq!(s.rate_at(10), 0.4);
        assert_eq!(s.rate_at(29), 0.2);
    }

    #[test]
    fn resuming_continues_where_it_stopped() {
        type B = burn_ndarray::NdArray;
        let mut a = Scheduler::new(
            LrSchedule::Cosine {
                final_fraction: 0.0,
            },
            1.0,
            4,
            2,
        );
        let first: Vec<f64> = (0..3).map(|_| a.step()).collect();
        let record = a.to_record::<B>();
        let mut b = Scheduler::new(
            LrSchedule::Cosine {
                final_fraction: 0.0,
            },
            1.0,
            4,
            2,
        )
        .load_record::<B>(record);
        assert_eq!(b.step(), a.step());
        assert_eq!(first[0], 1.0);
    }
}
