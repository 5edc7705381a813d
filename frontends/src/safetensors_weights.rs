//! Weights from a safetensors file, matched to a model's parameters by name.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use seam_ir::eval::tensor::f32s_from_le_bytes;
use seam_ir::{DType, Model, Tensor, Weights};
use thiserror::Error;

/// Why weights could not be read from a safetensors file.
#[derive(Debug, Error)]
pub enum WeightFileError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid safetensors (truncated, bad header).
    #[error("`{path}` is not a valid safetensors file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A parameter has no tensor in the file.
    #[error("`{path}` has no tensor `{tensor}` (needed by param `@{tensor}`)")]
    Missing {
        /// The file.
        path: String,
        /// The tensor name.
        tensor: String,
    },
    /// A tensor's shape or dtype does not fit its parameter.
    #[error("tensor `{tensor}` in `{path}` is {found}, but param `@{tensor}` is {expected}")]
    Mismatch {
        /// The file.
        path: String,
        /// The tensor name.
        tensor: String,
        /// What it is.
        found: String,
        /// What the model declares.
        expected: String,
    },
}

/// Reads every parameter of `model` from the safetensors file at `path`
/// (f32, f16 or bf16 tensors, converted to the parameter's f32; extra tensors
/// are ignored).
pub fn load_safetensors(model: &Model, path: &Path) -> Result<Weights, WeightFileError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WeightFileError::Io {
        path: shown.clone(),
        source,
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| WeightFileError::Format {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut tensors = Vec::with_capacity(model.params.len());
    for p in &model.params {
        let view = file.tensor(&p.name).map_err(|_| WeightFileError::Missing {
            path: shown.clone(),
            tensor: p.name.clone(),
        })?;
        let shape: Vec<usize> = view.shape().to_vec();
        let declared = p.sizes();
        let mismatch = |found: String| WeightFileError::Mismatch {
            path: shown.clone(),
            tensor: p.name.clone(),
            found,
            expected: p.ty.to_string(),
        };
        if shape != declared || p.ty.dtype != DType::F32 {
            return Err(mismatch(format!("{:?}{shape:?}", view.dtype())));
        }
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => f32s_from_le_bytes(data),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(mismatch(format!(
                    "{other:?}{shape:?} (expected f32, f16 or bf16)"
                )))
            }
        };
        tensors.push(Tensor::f32(shape.clone(), values).map_err(|e| mismatch(e.to_string()))?);
    }
    Weights::new(model, tensors).map_err(|e| WeightFileError::Format {
        path: shown,
        reason: e.to_string(),
    })
}
