//! The artifact directory of a training run and the files in it.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// File names inside an artifact directory.
pub mod names {
    /// The training configuration.
    pub const CONFIG: &str = "config.json";
    /// The trained model's weights (SafeTensors, full precision; other tools read it too).
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

    /// Where `--resume` carries on from: `Some(epoch)` after the last complete checkpoint, `None`
    /// when there is no checkpoint yet and the directory holds nothing but what a run interrupted
    /// before its first checkpoint leaves (nothing at all, `config.json`, `metrics.csv`, an
    /// incomplete `checkpoint/`, temporary files), so that the run starts afresh. Anything else
    /// there (another program's files, a trained model without checkpoints) is an error rather
    /// than something a fresh start would delete.
    pub fn resume_point(&self) -> Result<Option<usize>> {
        if let Some(epoch) = self.last_checkpoint() {
            return Ok(Some(epoch));
        }
        let refuse = |what: String| TrainError::NothingToResume {
            dir: self.root.clone(),
            reason: format!(
                "no complete checkpoint in {}/, and {what}",
                names::CHECKPOINTS
            ),
        };
        for name in entry_names(&self.root) {
            if name == names::SAFETENSORS {
                return Err(refuse(format!(
                    "it holds a trained model ({name}) that a fresh run would replace"
                )));
            }
            if !is_left_by_a_run(&name) {
                return Err(refuse(format!(
                    "it holds {name}, which digitnet train did not write"
                )));
            }
        }
        let checkpoints = self.file(names::CHECKPOINTS);
        if let Some(name) = entry_names(&checkpoints)
            .into_iter()
            .find(|name| !is_checkpoint_file(name))
        {
            return Err(refuse(format!(
                "{}/{name} is not a checkpoint file",
                names::CHECKPOINTS
            )));
        }
        Ok(None)
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

    /// Removes temporary files that a killed run left mid-write (`.digitnet-*.part`, beside the
    /// files they were to replace); the files under their real names are always complete.
    pub fn remove_stale_temporaries(&self) -> Result<()> {
        for dir in [self.root.clone(), self.file(names::CHECKPOINTS)] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".digitnet-") && name.ends_with(".part") {
                    let path = entry.path();
                    std::fs::remove_file(&path)
                        .map_err(|e| TrainError::io(&path, "remove stale temporary file", e))?;
                }
            }
        }
        Ok(())
    }

    /// Fails before training when the file system has less than `needed` bytes free.
    pub fn check_free_space(&self, needed: u64) -> Result<()> {
        let Some(available) = free_space(&self.root) else {
            return Ok(());
        };
        if available < needed {
            const MIB: f64 = 1024.0 * 1024.0;
            return Err(TrainError::DiskFull {
                dir: self.root.clone(),
                needed_mib: needed as f64 / MIB,
                available_mib: available as f64 / MIB,
            });
        }
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

/// Names of the entries of `dir` (none when it does not exist).
fn entry_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// True for the names a training run writes at the top of its artifact directory (besides the
/// final model): its config, metrics, plots, checkpoint directory and temporary files.
fn is_left_by_a_run(name: &str) -> bool {
    name.starts_with(".digitnet-")
        || [
            names::CONFIG,
            names::METRICS,
            names::CHECKPOINTS,
            names::LOSS_PLOT,
            names::ACCURACY_PLOT,
            names::CONFUSION_PLOT,
            names::ERRORS_GRID,
        ]
        .contains(&name)
}

/// True for burn-train's checkpoint files (`model-3.mpk`, `optim-3.mpk`, `scheduler-3.mpk`) and
/// the temporary files they are written through.
fn is_checkpoint_file(name: &str) -> bool {
    name.starts_with(".digitnet-")
        || ["model-", "optim-", "scheduler-"].iter().any(|kind| {
            name.strip_prefix(kind)
                .and_then(|rest| rest.strip_suffix(".mpk"))
                .is_some_and(|epoch| epoch.parse::<usize>().is_ok())
        })
}

/// Bytes a run writes at most at once for a model of `params` f32 parameters: burn-train keeps
/// two epochs' checkpoints and writes a third before deleting the oldest, each the model plus
/// the optimiser state (`optimizer_copies` tensors per parameter: 2 for Adam, 1 for SGD with
/// momentum); then the final model twice (MessagePack and SafeTensors) with one temporary copy;
/// plus 4 MiB for metrics and plots.
pub fn bytes_needed(params: usize, optimizer_copies: usize) -> u64 {
    let model = params as u64 * 4;
    3 * model * (1 + optimizer_copies as u64) + 3 * model + 4 * 1024 * 1024
}

/// Free bytes for unprivileged users on the file system holding `dir` (`None` where unknown).
#[cfg(unix)]
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded, so it filled the struct (zeroed before in any case).
    let stat = unsafe { stat.assume_init() };
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::useless_conversion)]
    let (blocks, block_size) = (u64::from(stat.f_bavail), u64::from(stat.f_frsize));
    Some(blocks.saturating_mul(block_size))
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> Option<u64> {
    None
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

    #[test]
    fn an_interrupted_run_before_its_first_checkpoint_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(dir.path().join("run"));
        // Not even created yet, then empty.
        assert_eq!(artifacts.resume_point().unwrap(), None);
        std::fs::create_dir_all(artifacts.file(names::CHECKPOINTS)).unwrap();
        assert_eq!(artifacts.resume_point().unwrap(), None);
        // config.json, a temporary file, an incomplete checkpoint.
        std::fs::write(artifacts.file(names::CONFIG), b"{}").unwrap();
        std::fs::write(artifacts.file(".digitnet-abc.part"), b"half").unwrap();
        let cp = artifacts.file(names::CHECKPOINTS);
        std::fs::write(cp.join("model-1.mpk"), b"x").unwrap();
        std::fs::write(cp.join(".digitnet-x.part"), b"x").unwrap();
        assert_eq!(artifacts.resume_point().unwrap(), None);
        // Completed, it is a resume point.
        std::fs::write(cp.join("optim-1.mpk"), b"x").unwrap();
        std::fs::write(cp.join("scheduler-1.mpk"), b"x").unwrap();
        assert_eq!(artifacts.resume_point().unwrap(), Some(1));
    }

    #[test]
    fn resume_refuses_a_directory_with_other_files_or_a_finished_model() {
        for (file, needle) in [
            ("notes.txt", "notes.txt, which digitnet train did not write"),
            (names::SAFETENSORS, "trained model (model.safetensors)"),
            (
                "checkpoint/backup.tar",
                "checkpoint/backup.tar is not a checkpoint file",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let artifacts = ArtifactDir::new(dir.path());
            std::fs::create_dir_all(artifacts.file(names::CHECKPOINTS)).unwrap();
            std::fs::write(artifacts.file(names::CONFIG), b"{}").unwrap();
            std::fs::write(artifacts.file(file), b"x").unwrap();
            let err = artifacts.resume_point().unwrap_err().to_string();
            assert!(err.contains("nothing to resume"), "{err}");
            assert!(err.contains(needle), "{file}: {err}");
        }
    }

    #[test]
    fn free_space_is_checked_against_the_need() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(dir.path());
        let free = free_space(dir.path()).expect("statvfs works on the temp dir");
        assert!(free > 0);
        artifacts.check_free_space(1).unwrap();
        let err = artifacts
            .check_free_space(free * 2 + (1 << 30))
            .unwrap_err();
        assert!(
            err.to_string().contains("not enough free disk space"),
            "{err}"
        );
        // The default CNN with Adam: about 15 MiB.
        let need = bytes_needed(242_218, 2) as f64 / (1024.0 * 1024.0);
        assert!((10.0..20.0).contains(&need), "{need}");
    }

    #[test]
    fn stale_temporaries_are_removed_and_real_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(dir.path());
        let cp = dir.path().join(names::CHECKPOINTS);
        std::fs::create_dir_all(&cp).unwrap();
        std::fs::write(cp.join(".digitnet-abc.part"), b"half").unwrap();
        std::fs::write(dir.path().join(".digitnet-xyz.part"), b"half").unwrap();
        std::fs::write(cp.join("model-1.mpk"), b"whole").unwrap();
        artifacts.remove_stale_temporaries().unwrap();
        let left: Vec<_> = walk(dir.path());
        assert_eq!(left, vec!["checkpoint", "checkpoint/model-1.mpk"]);
    }

    fn walk(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }
}
