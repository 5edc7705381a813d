//! The pipeline from a verified model and its weights to a bundle:
//! verify → lower → plan → bundle (the optimizer joins between verify and lower).

use seam_ir::{verify, Model, Weights};
use seam_runtime::bundle::BundleWriter;
use thiserror::Error;

use crate::emit::{build_bundle, EmitError};
use crate::lower::{lower_function, LowerError, Target};

/// Why compilation failed.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The model does not verify.
    #[error("model does not verify: {0}")]
    Verify(String),
    /// Weights do not match the model.
    #[error("weights do not match the model: {0}")]
    Weights(String),
    /// Lowering failed.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// Assembling the bundle failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// How to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The device the kernels are specialised for.
    pub target: Target,
    /// Optimization level (0: op-by-op lowering).
    pub opt_level: u8,
}

/// Compiles every function of `model` with `weights` into a bundle writer.
pub fn compile(
    model: &Model,
    weights: &Weights,
    options: &CompileOptions,
) -> Result<BundleWriter, CompileError> {
    verify(model).map_err(|e| CompileError::Verify(e.to_string()))?;
    weights
        .check(model)
        .map_err(|e| CompileError::Weights(e.to_string()))?;
    let started = std::time::Instant::now();
    let lowered = model
        .functions
        .iter()
        .map(|f| lower_function(model, f, &options.target))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(elapsed = ?started.elapsed(), "lowered");
    let bundle = build_bundle(model, &lowered, weights, options.opt_level)?;
    tracing::info!(
        elapsed = ?started.elapsed(),
        kernels = bundle.manifest.kernels.len(),
        "bundle assembled"
    );
    Ok(bundle)
}
