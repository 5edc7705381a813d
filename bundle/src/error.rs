//! Why a bundle was rejected.

use thiserror::Error;

use crate::format::SectionKind;

/// A bundle that cannot be used, with the reason. Every check runs before any
/// GPU work.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The file could not be read or written.
    #[error("cannot access bundle `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start with the bundle magic bytes.
    #[error("not a Seam bundle (bad magic bytes)")]
    BadMagic,
    /// The file is written in a format version this runtime does not read.
    #[error("bundle format version {found} is not supported (this runtime reads versions 1 to {supported}; rebuild the bundle or upgrade the runtime)")]
    UnsupportedVersion {
        /// The file's version.
        found: u32,
        /// The version this runtime reads.
        supported: u32,
    },
    /// The file is shorter than its header says, or than the header itself.
    #[error("bundle is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The header says the file is shorter than it is.
    #[error("bundle has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Bytes beyond the declared length.
        extra: u64,
    },
    /// The header or section table does not match its checksum.
    #[error("bundle header is corrupt (checksum mismatch)")]
    HeaderChecksum,
    /// A section's bytes do not match their checksum.
    #[error("bundle section `{0}` is corrupt (checksum mismatch)")]
    SectionChecksum(SectionKind),
    /// The section table is malformed.
    #[error("bundle section table is invalid: {0}")]
    SectionTable(String),
    /// The manifest cannot be decoded.
    #[error("bundle manifest cannot be decoded: {0}")]
    ManifestDecode(String),
    /// The generation-metadata section is malformed or over its bounds.
    #[error("bundle generation metadata is invalid: {0}")]
    GenerationInvalid(String),
    /// The manifest decodes but is inconsistent.
    #[error("bundle manifest is invalid: {0}")]
    ManifestInvalid(String),
    /// An entry point declares more dispatches than [`crate::MAX_DISPATCHES_PER_ENTRY`].
    #[error("entry point `{entry}` declares {count} dispatches; the limit is {limit} (no real model comes near it: the bundle is corrupt or hostile)")]
    TooManyDispatches {
        /// The entry point.
        entry: String,
        /// Dispatches declared.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Two weight entries cover overlapping (or the same) bytes of the
    /// weights section.
    #[error("weight {second} `{second_name}` overlaps weight {first} `{first_name}` in the weights section: embedded weight entries must not overlap or repeat")]
    WeightOverlap {
        /// The earlier weight's index.
        first: usize,
        /// Its name.
        first_name: String,
        /// The overlapping weight's index.
        second: usize,
        /// Its name.
        second_name: String,
    },
    /// Two weight buffers hold the same weight.
    #[error("buffers {first} and {second} both hold weight {weight}: every weight buffer must hold a distinct weight")]
    WeightBufferRepeated {
        /// The weight's index.
        weight: u32,
        /// The first buffer holding it.
        first: usize,
        /// The second buffer holding it.
        second: usize,
    },
    /// The bundle has external weights but was given as bytes, with no folder
    /// to find them relative to.
    #[error("the bundle reads weights from {count} external file(s) (e.g. `{first}`), found relative to the bundle's folder: load it from its path, or give that folder (`BundleReader::from_bytes_in`)")]
    ExternalNeedsBaseDir {
        /// How many external files.
        count: usize,
        /// The first one's path as recorded.
        first: String,
    },
    /// An external weight file's path is not allowed.
    #[error("external weight file path `{path}` is not allowed: {reason}")]
    ExternalPath {
        /// The path as recorded.
        path: String,
        /// Why.
        reason: String,
    },
    /// An external weight file's path leads outside the bundle's folder and
    /// the allowed folders (or through a symbolic link that does). Refused
    /// before the file is looked at: says nothing of whether it exists.
    #[error("external weight file `{path}` is outside the bundle's folder and the folders allowed with --allow-weights-from (`LoadOptions::allowed_weight_dirs`)")]
    ExternalOutside {
        /// The path as recorded.
        path: String,
    },
    /// An external weight file is not a regular file (a device, FIFO, socket
    /// or folder).
    #[error("external weight file `{path}` (recorded as `{reference}`) is not a regular file (a device, FIFO, socket or folder)")]
    ExternalNotRegular {
        /// The path tried.
        path: String,
        /// The path as recorded.
        reference: String,
    },
    /// A folder allowed to hold external weight files cannot be used.
    #[error("cannot use folder `{path}` for external weight files: {source}")]
    WeightDir {
        /// The folder as given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An external weight file is missing or cannot be read.
    #[error("cannot read external weight file `{path}` (recorded as `{reference}`, relative to the bundle's folder): {source}")]
    ExternalIo {
        /// The path tried.
        path: String,
        /// The path as recorded.
        reference: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An external weight file's length differs from the recorded one.
    #[error("external weight file `{path}` has {found} bytes but the bundle was compiled against {expected} (the checkpoint changed: recompile the bundle)")]
    ExternalLength {
        /// The file.
        path: String,
        /// Bytes recorded.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// An external weight file's contents differ from the recorded checksum.
    #[error("external weight file `{path}` does not match the checksum the bundle was compiled against (the checkpoint changed: recompile the bundle)")]
    ExternalChecksum {
        /// The file.
        path: String,
    },
    /// A symbolic size could not be evaluated.
    #[error("cannot evaluate size: {0}")]
    SizeExpr(#[from] seam_core::SizeExprError),
}
