//! Why a GGUF file could not be imported.

use std::path::PathBuf;

use thiserror::Error;

use super::quant::{GgmlType, QuantError};
use crate::builder::BuildError;

/// What is wrong with a GGUF container's bytes: every count, length, offset
/// and type is checked against the bytes present and the reader's limits
/// before anything is allocated or looped over.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file (the first four bytes are {found:02x?}, not `GGUF`)")]
    Magic {
        /// The first bytes.
        found: Vec<u8>,
    },
    /// A version this reader does not know (big-endian files read as huge versions).
    #[error("GGUF version {version} is not supported (2 and 3 are, little-endian)")]
    Version {
        /// The version field.
        version: u32,
    },
    /// The file ends inside an item.
    #[error("truncated: {what} needs {needed} bytes at offset {offset}, {available} are left")]
    Truncated {
        /// The item being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A count or length is larger than the reader accepts, or than the bytes left could hold.
    #[error("{what} = {value} exceeds the limit {limit}")]
    TooLarge {
        /// The count or length.
        what: String,
        /// Its value.
        value: u64,
        /// The largest value accepted here.
        limit: u64,
    },
    /// A string is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    Utf8 {
        /// The string.
        what: String,
    },
    /// A metadata value type id that GGUF does not define.
    #[error("{what} has unknown value type {id}")]
    ValueType {
        /// The value.
        what: String,
        /// The type id.
        id: u32,
    },
    /// Arrays nested deeper than the reader accepts.
    #[error("{what}: arrays are nested deeper than {limit} levels")]
    Nesting {
        /// The value.
        what: String,
        /// The deepest nesting accepted.
        limit: u32,
    },
    /// Two metadata entries with one key.
    #[error("metadata key `{key}` appears twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// Two tensors with one name.
    #[error("tensor `{name}` appears twice")]
    DuplicateTensor {
        /// The name.
        name: String,
    },
    /// A tensor with no dims or more than ggml's four.
    #[error("tensor `{name}` has {n_dims} dims; 1 to 4 are allowed")]
    Dims {
        /// The tensor.
        name: String,
        /// Its dim count.
        n_dims: u32,
    },
    /// A tensor dim of zero, a shape whose product overflows, or a first dim
    /// that is not a whole number of its type's blocks.
    #[error("tensor `{name}` has shape {dims:?} (ggml order): {problem}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its dims, fastest-varying first.
        dims: Vec<u64>,
        /// What is wrong.
        problem: String,
    },
    /// A tensor type id that is unknown or not supported.
    #[error("tensor `{name}` has type id {id}, which this reader does not support")]
    TensorType {
        /// The tensor.
        name: String,
        /// The type id.
        id: u32,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error("`general.alignment` = {value} must be a power of two")]
    Alignment {
        /// Its value.
        value: u64,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    #[error(
        "tensor `{name}`: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Unaligned {
        /// The tensor.
        name: String,
        /// Its offset in the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's bytes lie (partly) past the end of the file.
    #[error(
        "tensor `{name}`: {bytes} bytes at data offset {offset} run past the data section's {data} bytes"
    )]
    PastEnd {
        /// The tensor.
        name: String,
        /// Its offset in the data section.
        offset: u64,
        /// Its size in bytes.
        bytes: u64,
        /// Bytes in the data section.
        data: u64,
    },
}

/// Why a GGUF file could not be imported. Every variant names the file and,
/// where it applies, the metadata key or tensor at fault.
#[derive(Debug, Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The container is malformed.
    #[error("`{}` is not a valid GGUF file: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: FormatError,
    },
    /// A metadata key the architecture needs is absent.
    #[error("`{}`: metadata key `{key}` is missing", path.display())]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A metadata value has the wrong type or an impossible value.
    #[error("`{}`: metadata key `{key}` {problem}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A metadata size or count is beyond what any model holds.
    #[error("`{}`: metadata key `{key}` = {value} exceeds the limit {limit}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Its value.
        value: u64,
        /// The largest value accepted.
        limit: u64,
    },
    /// A metadata count (layers, experts) exceeds what the file's tensors hold.
    #[error("`{}`: `{key}` = {value}, but the file holds {held} {what}", path.display())]
    CountMismatch {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Its value.
        value: u64,
        /// How many the tensors hold.
        held: u64,
        /// What is counted.
        what: String,
    },
    /// `general.architecture` names an architecture this importer does not know.
    #[error("`{}`: unsupported architecture `{architecture}`; supported: {supported}", path.display())]
    UnknownArchitecture {
        /// The file.
        path: PathBuf,
        /// `general.architecture`.
        architecture: String,
        /// The supported ones.
        supported: String,
    },
    /// A metadata value (or tensor) that changes the math in a way not implemented.
    #[error("`{}`: unsupported `{key}`: {why}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The key or tensor.
        key: String,
        /// What is not implemented.
        why: String,
    },
    /// A tensor the architecture needs is absent.
    #[error(
        "`{}`: the tensor for `{hf_name}`{} is missing",
        path.display(),
        tensor.as_deref().map_or_else(String::new, |t| format!(" (`{t}`)"))
    )]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The GGUF name, where the Hugging Face name maps to one.
        tensor: Option<String>,
        /// The Hugging Face name the graph asked for.
        hf_name: String,
    },
    /// A tensor has the wrong shape for the metadata.
    #[error(
        "`{}`: tensor `{tensor}` has shape {found:?} (torch order), but the metadata implies {expected:?}",
        path.display()
    )]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The GGUF name (with the expert index for a slice of fused experts).
        tensor: String,
        /// Its shape, slowest-varying first.
        found: Vec<u64>,
        /// The shape the metadata implies.
        expected: Vec<usize>,
    },
    /// A tensor's blocks could not be decoded or re-encoded.
    #[error("`{}`: tensor `{tensor}` ({ty:?}): {source}", path.display())]
    Quant {
        /// The file.
        path: PathBuf,
        /// The GGUF name.
        tensor: String,
        /// Its type.
        ty: GgmlType,
        /// What failed.
        source: QuantError,
    },
    /// The model graph could not be built.
    #[error("cannot build the model graph: {0}")]
    Build(#[from] BuildError),
    /// The converted weights do not fit the graph (an importer bug).
    #[error("converted weights do not fit the model: {0}")]
    Weights(#[from] seam_ir::WeightsError),
    /// A weight's blocks do not fit its parameter (an importer bug).
    #[error("encoded weights do not fit the model: {0}")]
    Encoding(#[from] seam_ir::EncodingError),
}
