//! Why a model could not be lowered to kernels.

use seam_shaders::ShaderError;
use thiserror::Error;

/// A lowering failure, naming the instruction.
#[derive(Debug, Error)]
pub enum LowerError {
    /// The op or dtype has no GPU kernel yet.
    #[error("`{op}` computing `%{value}` is not supported on the GPU yet: {reason}")]
    Unsupported {
        /// The op.
        op: &'static str,
        /// The value it computes.
        value: String,
        /// What is missing.
        reason: String,
    },
    /// A kernel generator rejected its configuration.
    #[error("generating the kernel for `%{value}` failed: {error}")]
    Shader {
        /// The value computed.
        value: String,
        /// The generator's error.
        error: ShaderError,
    },
    /// A tensor is larger, at the dims' bounds, than the device can bind.
    #[error(
        "`%{value}` needs {bytes} bytes at the dims' bounds ({bounds}), more than the \
         device's {limit}-byte storage binding limit: lower those bounds (`dim NAME <= N` \
         in the model, or --max-seq-len for a checkpoint)"
    )]
    TooLarge {
        /// The tensor.
        value: String,
        /// Its size at the bounds.
        bytes: u64,
        /// The device's `max_storage_buffer_binding_size`.
        limit: u64,
        /// The model's symbolic dims and bounds, e.g. `tokens <= 4096`.
        bounds: String,
    },
}
