//! Atomic file writes: the content goes to a temporary file in the target's directory, is flushed
//! to disk, and is renamed over the target, so readers see the old file or the new one, never half.

use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{DataError, Result};

/// Creates a temporary file next to `target`, removed automatically unless persisted.
pub fn temp_beside(target: &Path) -> Result<NamedTempFile> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, "create directory", e))?;
    tempfile::Builder::new()
        .prefix(".digitnet-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| DataError::io(dir, "create temporary file in", e))
}

/// Flushes `file` to disk and renames it to `target`, readable by others like a file created
/// the ordinary way (temporary files start private).
pub fn persist(file: NamedTempFile, target: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| DataError::io(file.path(), "set permissions of", e))?;
    }
    file.as_file()
        .sync_all()
        .map_err(|e| DataError::io(file.path(), "sync", e))?;
    file.persist(target)
        .map_err(|e| DataError::io(target, "rename into place", e.error))?;
    Ok(())
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = temp_beside(target)?;
    file.write_all(bytes)
        .map_err(|e| DataError::io(file.path(), "write", e))?;
    persist(file, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_whole_file_and_leave_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.bin");
        write_atomic(&target, b"first version").unwrap();
        write_atomic(&target, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
    }

    #[test]
    fn unwritable_target_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        // A directory cannot be created under a regular file.
        let err = write_atomic(&blocker.join("out.bin"), b"data").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
