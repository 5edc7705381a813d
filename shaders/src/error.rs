//! Errors from generating, binding, validating or emitting a kernel.

use thiserror::Error;

/// Why a kernel could not be generated, launched, validated or emitted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShaderError {
    /// The generator's configuration is not supported (a zero size, a tile that
    /// does not fit the device limits, an unsupported combination of options).
    #[error("kernel `{kernel}`: invalid configuration: {reason}")]
    InvalidConfig {
        /// The kernel family or name.
        kernel: String,
        /// What is wrong.
        reason: String,
    },
    /// A kernel could not be launched with the given sizes.
    #[error(transparent)]
    Launch(#[from] seam_core::LaunchError),
    /// naga could not parse the generated WGSL (a generator bug).
    #[error("kernel `{kernel}`: WGSL parse error:\n{message}")]
    Parse {
        /// The kernel.
        kernel: String,
        /// naga's rendered diagnostic.
        message: String,
    },
    /// naga rejected the generated module (a generator bug).
    #[error("kernel `{kernel}`: WGSL validation error:\n{message}")]
    Validation {
        /// The kernel.
        kernel: String,
        /// naga's rendered diagnostic.
        message: String,
    },
    /// A naga back end failed to translate the module.
    #[error("kernel `{kernel}`: emitting {target} failed: {message}")]
    Emit {
        /// The kernel.
        kernel: String,
        /// The target language.
        target: String,
        /// The back end's message.
        message: String,
    },
}

impl ShaderError {
    /// Shorthand for [`ShaderError::InvalidConfig`].
    pub fn config(kernel: &str, reason: impl Into<String>) -> Self {
        ShaderError::InvalidConfig {
            kernel: kernel.to_string(),
            reason: reason.into(),
        }
    }
}
