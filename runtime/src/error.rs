//! Runtime errors. Device failures (no adapter, out of memory, validation,
//! device loss, failed maps) become values of [`RuntimeError`]; nothing panics.

use thiserror::Error;

/// Why a runtime operation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuntimeError {
    /// No adapter matched the options.
    #[error("no GPU adapter found for backends {backends}{}", filter.as_ref().map(|f| format!(" with a name containing `{f}`")).unwrap_or_default())]
    NoAdapter {
        /// The backends searched.
        backends: String,
        /// The name filter, if any.
        filter: Option<String>,
    },
    /// The adapter refused to create a device.
    #[error("could not create a device on `{adapter}`: {message}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// The device ran out of memory.
    #[error("out of device memory during {context}: {message}")]
    OutOfMemory {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// wgpu reported a validation error (a bug in Seam or misuse of the API).
    #[error("validation error during {context}: {message}")]
    Validation {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// wgpu reported an internal error (e.g. a shader the driver could not compile).
    #[error("internal device error during {context}: {message}")]
    Internal {
        /// What was being done.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// The device was lost; it cannot be used any more.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// Mapping a buffer for reading failed, or waiting for the device failed.
    #[error("reading back `{label}` failed: {message}")]
    Readback {
        /// The buffer's label.
        label: String,
        /// What went wrong.
        message: String,
    },
    /// A kernel could not be launched with the given sizes.
    #[error(transparent)]
    Launch(#[from] seam_core::LaunchError),
    /// The buffers passed to a dispatch do not match the kernel's bindings.
    #[error("kernel `{kernel}`: {message}")]
    Binding {
        /// The kernel.
        kernel: String,
        /// What is wrong.
        message: String,
    },
    /// A buffer request was invalid (too large, size not a multiple of 4, data
    /// that does not fit).
    #[error("buffer `{label}`: {message}")]
    Buffer {
        /// The buffer's label.
        label: String,
        /// What is wrong.
        message: String,
    },
}

impl RuntimeError {
    /// Converts a wgpu error caught by an error scope.
    pub(crate) fn from_wgpu(context: &str, e: wgpu::Error) -> Self {
        let context = context.to_string();
        match e {
            wgpu::Error::OutOfMemory { source } => RuntimeError::OutOfMemory {
                context,
                message: source.to_string(),
            },
            wgpu::Error::Validation { description, .. } => RuntimeError::Validation {
                context,
                message: description,
            },
            wgpu::Error::Internal { description, .. } => RuntimeError::Internal {
                context,
                message: description,
            },
        }
    }
}
