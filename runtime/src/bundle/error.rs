//! Why a bundle was rejected.

use thiserror::Error;

use super::format::SectionKind;

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
    #[error("bundle format version {found} is not supported (this runtime reads version {supported}; rebuild the bundle or upgrade the runtime)")]
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
    /// The manifest decodes but is inconsistent.
    #[error("bundle manifest is invalid: {0}")]
    ManifestInvalid(String),
    /// A symbolic size could not be evaluated.
    #[error("cannot evaluate size: {0}")]
    Expr(String),
}
