//! The recorder for model records and checkpoints: Burn's named MessagePack format at full
//! precision (not half, like Burn's `CompactRecorder`), written atomically.
//!
//! Burn's own `NamedMpkFileRecorder` deletes the old file, then streams the new one through a
//! `BufWriter` whose final flush error is dropped: a crash or a full disk mid-write leaves a torn
//! checkpoint under the real name. This recorder encodes the record in memory, writes it to a
//! temporary file beside the target, syncs it and renames it into place, and reports every I/O
//! error. Files it writes load with Burn's recorder and vice versa.

use std::path::PathBuf;

use burn::prelude::Backend;
use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder, Recorder, RecorderError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Full-precision named MessagePack, saved atomically (see the module documentation).
#[derive(Debug, Default, Clone)]
pub struct ModelRecorder {
    reader: NamedMpkFileRecorder<FullPrecisionSettings>,
}

impl ModelRecorder {
    /// A new recorder.
    pub fn new() -> Self {
        Self::default()
    }
}

const EXTENSION: &str = "mpk";

impl<B: Backend> Recorder<B> for ModelRecorder {
    type Settings = FullPrecisionSettings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, mut file: PathBuf) -> Result<(), RecorderError> {
        file.set_extension(EXTENSION);
        let mut bytes = Vec::new();
        rmp_serde::encode::write_named(&mut bytes, &item)
            .map_err(|e| RecorderError::Unknown(format!("{}: {e}", file.display())))?;
        digitnet_data::atomic::write_atomic(&file, &bytes)
            .map_err(|e| RecorderError::Unknown(e.to_string()))
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        Recorder::<B>::load_item(&self.reader, file)
    }
}

impl<B: Backend> FileRecorder<B> for ModelRecorder {
    fn file_extension() -> &'static str {
        EXTENSION
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    type B = burn_ndarray::NdArray;

    #[test]
    fn saves_atomically_and_loads_back_identical_weights() {
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let layer: Linear<B> = LinearConfig::new(3, 2).init(&device);
        // Parameters initialise lazily: read them before cloning, so that clones share them.
        let expected = layer.weight.val().into_data();
        let path = dir.path().join("checkpoint/model-1");
        // Overwrite an existing (e.g. torn) file: the new content replaces it whole.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path.with_extension("mpk"), b"torn").unwrap();
        layer
            .clone()
            .save_file(&path, &ModelRecorder::new())
            .unwrap();
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["model-1.mpk"], "no temporary file left behind");

        let loaded: Linear<B> = LinearConfig::new(3, 2)
            .init(&device)
            .load_file(&path, &ModelRecorder::new(), &device)
            .unwrap();
        assert_eq!(loaded.weight.val().into_data(), expected);
        // Burn's own recorder reads it too.
        let by_burn: Linear<B> = LinearConfig::new(3, 2)
            .init(&device)
            .load_file(
                &path,
                &NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
                &device,
            )
            .unwrap();
        assert_eq!(by_burn.weight.val().into_data(), expected);
    }

    #[test]
    fn a_write_error_is_reported_not_swallowed() {
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let layer: Linear<B> = LinearConfig::new(3, 2).init(&device);
        // The parent "directory" is a file: creating the temporary file fails.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").unwrap();
        let err = layer
            .save_file(blocker.join("model-1"), &ModelRecorder::new())
            .unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
