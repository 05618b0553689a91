//! The artifact directory of a training run and the files in it.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// File names inside an artifact directory.
pub mod names {
    /// The training configuration.
    pub const CONFIG: &str = "config.json";
    /// The trained model record (Burn named MessagePack, full precision).
    pub const MODEL: &str = "model.mpk";
    /// The trained model as SafeTensors, for other tools.
    pub const SAFETENSORS: &str = "model.safetensors";
    /// Per-epoch metrics.
    pub const METRICS: &str = "metrics.csv";
    /// Loss curves.
    pub const LOSS_PLOT: &str = "loss.png";
    /// Accuracy curves.
    pub const ACCURACY_PLOT: &str = "accuracy.png";
    /// Test-set confusion matrix.
    pub const CONFUSION_PLOT: &str = "confusion.png";
    /// Misclassified test images.
    pub const ERRORS_GRID: &str = "errors.png";
    /// burn-train's checkpoint directory.
    pub const CHECKPOINTS: &str = "checkpoint";
}

/// An artifact directory.
#[derive(Debug, Clone)]
pub struct ArtifactDir {
    root: PathBuf,
}

impl ArtifactDir {
    /// The artifact directory at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a file in it (see [`names`]).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The last epoch for which a complete checkpoint (model, optimiser and scheduler) exists.
    pub fn last_checkpoint(&self) -> Option<usize> {
        let dir = self.file(names::CHECKPOINTS);
        let entries = std::fs::read_dir(&dir).ok()?;
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("model-")?
                    .strip_suffix(".mpk")?
                    .parse::<usize>()
                    .ok()
            })
            .filter(|epoch| {
                ["optim", "scheduler"]
                    .iter()
                    .all(|kind| dir.join(format!("{kind}-{epoch}.mpk")).is_file())
            })
            .max()
    }

    /// Creates the directory and checks that it is writable (before hours of training, not after).
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| TrainError::io(&self.root, "create the artifact directory", e))?;
        let probe = tempfile::Builder::new()
            .prefix(".digitnet-write-test")
            .tempfile_in(&self.root)
            .map_err(|e| TrainError::io(&self.root, "write to the artifact directory", e))?;
        drop(probe);
        Ok(())
    }

    /// Removes what a previous run left (checkpoints, metrics, model, plots), keeping anything else.
    pub fn clear_previous_run(&self) -> Result<()> {
        let checkpoints = self.file(names::CHECKPOINTS);
        if checkpoints.exists() {
            std::fs::remove_dir_all(&checkpoints)
                .map_err(|e| TrainError::io(&checkpoints, "remove old checkpoints", e))?;
        }
        for name in [
            names::METRICS,
            names::MODEL,
            names::SAFETENSORS,
            names::LOSS_PLOT,
            names::ACCURACY_PLOT,
            names::CONFUSION_PLOT,
            names::ERRORS_GRID,
        ] {
            let path = self.file(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(TrainError::io(&path, "remove", e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_checkpoint_needs_all_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(dir.path());
        assert_eq!(artifacts.last_checkpoint(), None);
        let cp = dir.path().join(names::CHECKPOINTS);
        std::fs::create_dir_all(&cp).unwrap();
        for kind in ["model", "optim", "scheduler"] {
            std::fs::write(cp.join(format!("{kind}-1.mpk")), b"x").unwrap();
        }
        std::fs::write(cp.join("model-2.mpk"), b"x").unwrap();
        assert_eq!(artifacts.last_checkpoint(), Some(1));
    }
}
