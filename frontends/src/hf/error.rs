//! Why a Hugging Face checkpoint could not be imported.

use std::path::PathBuf;

use thiserror::Error;

use crate::builder::BuildError;

/// Why a checkpoint folder could not be imported. Every variant names the file
/// (and where it applies the field or tensor) at fault.
#[derive(Debug, Error)]
pub enum HfError {
    /// The folder has no `config.json`.
    #[error("`{}` has no config.json (is it a Hugging Face checkpoint folder?)", dir.display())]
    MissingConfig {
        /// The checkpoint folder.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON.
    #[error("`{}` is not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (with line and column).
        source: serde_json::Error,
    },
    /// A config field is missing or has the wrong kind of value.
    #[error("`{}`: field `{field}` {problem}", path.display())]
    Field {
        /// The config file.
        path: PathBuf,
        /// The field (dotted for nested ones).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A config size or count is beyond what any checkpoint holds.
    #[error("`{}`: field `{field}` = {value} exceeds the limit {limit}", path.display())]
    TooLarge {
        /// The config file.
        path: PathBuf,
        /// The field (dotted for nested ones).
        field: String,
        /// Its value.
        value: u64,
        /// The largest value accepted.
        limit: u64,
    },
    /// A config count (layers, experts) exceeds what the checkpoint's tensors hold.
    #[error(
        "`{}`: `{field}` = {value}, but the checkpoint holds {held} {what}",
        path.display()
    )]
    CountMismatch {
        /// The config file.
        path: PathBuf,
        /// The field.
        field: String,
        /// Its value.
        value: u64,
        /// How many the checkpoint's tensor names hold.
        held: u64,
        /// What is counted (`layers`, `experts in layer 0`, …).
        what: String,
    },
    /// The config names an architecture this importer does not know.
    #[error(
        "`{}`: unsupported architecture `{architecture}` (model_type `{model_type}`); \
         supported: {supported}", path.display()
    )]
    UnknownArchitecture {
        /// The config file.
        path: PathBuf,
        /// `architectures[0]`, or `?` when absent.
        architecture: String,
        /// `model_type`, or `?` when absent.
        model_type: String,
        /// The supported architectures.
        supported: String,
    },
    /// A config field has a value that changes the math in a way not implemented.
    #[error("`{}`: unsupported `{field}` = {value}: {why}", path.display())]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// The field.
        field: String,
        /// Its value, as JSON.
        value: String,
        /// What is not implemented.
        why: String,
    },
    /// The folder has no `*.safetensors` file.
    #[error("`{}` has no *.safetensors weights", dir.display())]
    NoWeights {
        /// The checkpoint folder.
        dir: PathBuf,
    },
    /// A safetensors file is malformed (truncated, bad header).
    #[error("`{}` is not a valid safetensors file: {reason}", path.display())]
    BadSafetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the architecture needs is in no weight file.
    #[error("tensor `{tensor}` is missing from `{}`", file.display())]
    MissingTensor {
        /// The tensor name.
        tensor: String,
        /// The file that should hold it (the shard the index names, or the folder).
        file: PathBuf,
    },
    /// A tensor has the wrong shape for the config.
    #[error(
        "tensor `{tensor}` in `{}` has shape {found:?}, but the config implies {expected:?}",
        file.display()
    )]
    WrongShape {
        /// The tensor name.
        tensor: String,
        /// The file holding it.
        file: PathBuf,
        /// Its shape.
        found: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// A tensor has a dtype that cannot be converted to f32.
    #[error("tensor `{tensor}` in `{}` is {dtype}; only F32, F16 and BF16 are supported", file.display())]
    WrongDtype {
        /// The tensor name.
        tensor: String,
        /// The file holding it.
        file: PathBuf,
        /// Its dtype.
        dtype: String,
    },
    /// The model graph could not be built (an importer bug or an inconsistent config).
    #[error("cannot build the model graph: {0}")]
    Build(#[from] BuildError),
    /// The converted weights do not fit the graph (an importer bug).
    #[error("converted weights do not fit the model: {0}")]
    Weights(#[from] seam_ir::WeightsError),
    /// A weight's encoded blocks do not fit its parameter (an importer bug).
    #[error("encoded weights do not fit the model: {0}")]
    Encoding(#[from] seam_ir::EncodingError),
}
