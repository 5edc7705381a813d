//! [`QuantError`]: why a weight could not be (de)quantized or repacked.

use thiserror::Error;

/// Why a quantization, dequantization or row-plane repacking was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantError {
    /// A GGUF tensor type id that is not one of the ggml types Seam knows.
    #[error("unknown GGUF tensor type id {0}")]
    UnknownType(u32),
    /// The type is known but this operation is not implemented for it.
    #[error("{ty} has no {op} in Seam")]
    Unsupported {
        /// The ggml type name.
        ty: &'static str,
        /// The missing operation (`"dequantizer"`, …).
        op: &'static str,
    },
    /// An element count that is not a whole number of blocks.
    #[error("{elems} elements is not a whole number of {ty} blocks of {block}")]
    NotBlockMultiple {
        /// The type or format name.
        ty: &'static str,
        /// The element count given.
        elems: u64,
        /// Elements per block.
        block: u64,
    },
    /// A row length that is zero or not a multiple of the format's block.
    #[error("a {format} row of {k} weights is not a positive multiple of {block}")]
    BadRowLength {
        /// The format name.
        format: &'static str,
        /// The row length given.
        k: u64,
        /// Elements per block.
        block: u64,
    },
    /// A buffer whose length is not the one its declared sizes imply.
    #[error("{what}: expected {expected}, got {actual}")]
    LengthMismatch {
        /// Which buffer and unit (`"ggml bytes"`, `"plane words"`, …).
        what: &'static str,
        /// The length the sizes imply.
        expected: u64,
        /// The length given.
        actual: u64,
    },
    /// Declared sizes whose byte or word count overflows.
    #[error("{what} overflows")]
    TooLarge {
        /// Which count overflowed.
        what: &'static str,
    },
}
