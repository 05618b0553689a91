//! Errors raised when a model configuration cannot be built.

/// A model configuration that does not describe a valid network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range; the message names the field and the value.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),

    /// The model has a layer that the ONNX export cannot write; the message names it.
    #[error("cannot export to ONNX: {0}")]
    Export(String),

    /// A preset name that is not known.
    #[error("unknown preset '{name}' (known: {known})")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
}

pub(crate) fn check_dropout(field: &str, p: f64) -> Result<(), ModelError> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "{field} = {p}: a dropout probability must be in [0, 1)"
        )))
    }
}

pub(crate) fn check_positive(field: &str, value: usize) -> Result<(), ModelError> {
    if value > 0 {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "{field} must be at least 1"
        )))
    }
}
