//! Loading a model file: read, parse and verify, with diagnostics that name the file.

use std::path::Path;

use seam_ir::text::{self, Diagnostic};
use seam_ir::Model;
use thiserror::Error;

/// Why a model file could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not parse or verify.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

/// Reads, parses and verifies a model in the text format.
pub fn load_model(path: &Path) -> Result<Model, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: shown.clone(),
        source,
    })?;
    tracing::debug!(path = %shown, bytes = bytes.len(), "loading model");
    let (model, _) = text::parse_bytes_and_verify(&shown, &bytes).map_err(LoadError::Invalid)?;
    Ok(model)
}
