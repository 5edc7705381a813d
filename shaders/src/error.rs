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
    /// A size passed to [`crate::Kernel::launch`] is not one the kernel declares.
    #[error("kernel `{kernel}` has no size `{size}` (it has: {known})")]
    UnknownSize {
        /// The kernel.
        kernel: String,
        /// The size given.
        size: String,
        /// The sizes it declares.
        known: String,
    },
    /// A dynamic size was not given to [`crate::Kernel::launch`].
    #[error("kernel `{kernel}` needs a value for size `{size}`")]
    MissingSize {
        /// The kernel.
        kernel: String,
        /// The missing size.
        size: String,
    },
    /// A fixed size was given a different value at launch.
    #[error("kernel `{kernel}` was generated for {size} = {fixed}, launched with {given}")]
    FixedSizeMismatch {
        /// The kernel.
        kernel: String,
        /// The size.
        size: String,
        /// The value baked into the kernel.
        fixed: u32,
        /// The value given at launch.
        given: u32,
    },
    /// The dispatch grid does not fit the device's limit on workgroups per dimension.
    #[error("kernel `{kernel}`: dispatch of {groups} workgroups along {axis} exceeds {limit}")]
    GridTooLarge {
        /// The kernel.
        kernel: String,
        /// The axis (`x`, `y` or `z`).
        axis: char,
        /// Workgroups needed.
        groups: u64,
        /// The per-dimension limit.
        limit: u32,
    },
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
