//! The pipeline from a verified model and its weights to a bundle:
//! verify → optimize and fold param-only values (at `-O1` and above) → lower →
//! plan → bundle.

use seam_bundle::BundleWriter;
use seam_ir::{verify, Model, Weights};
use thiserror::Error;

use crate::emit::{build_bundle, EmitError};
use crate::external::ExternalWeights;
use crate::fold::{fold_params, FoldError};
use crate::lower::{lower_function, LowerError, Target};
use crate::optimize::cost::CostModel;
use crate::optimize::{optimize, OptLevel, OptimizeError, OptimizeOptions, Report};

/// Why compilation failed.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The model does not verify.
    #[error("model does not verify: {0}")]
    Verify(String),
    /// Weights do not match the model.
    #[error("weights do not match the model: {0}")]
    Weights(String),
    /// The optimization level does not exist.
    #[error("there is no optimization level {0} (levels are 0, 1 and 2)")]
    OptLevel(u8),
    /// The optimizer failed.
    #[error(transparent)]
    Optimize(Box<OptimizeError>),
    /// Lowering failed.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// Folding param-only values failed.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// Assembling the bundle failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// How to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The device the kernels are specialised for.
    pub target: Target,
    /// Optimization level (0: op-by-op lowering; 1: fusion rules; 2: all rules).
    pub opt_level: u8,
}

/// What [`compile_with_report`] produces.
#[derive(Debug)]
pub struct Compiled {
    /// The bundle, ready to write.
    pub bundle: BundleWriter,
    /// What the optimizer did (`None` at `-O0`).
    pub report: Option<Report>,
    /// The optimizer's output (`None` at `-O0`). The lowering sees it with its
    /// param-only values folded into weights ([`crate::fold`]).
    pub optimized: Option<Model>,
}

/// Compiles every function of `model` with `weights` into a bundle writer.
pub fn compile(
    model: &Model,
    weights: &Weights,
    options: &CompileOptions,
) -> Result<BundleWriter, CompileError> {
    compile_with_report(model, weights, options).map(|c| c.bundle)
}

/// [`compile`], also returning the optimizer's report and output.
pub fn compile_with_report(
    model: &Model,
    weights: &Weights,
    options: &CompileOptions,
) -> Result<Compiled, CompileError> {
    compile_with_external(model, weights, options, None)
}

/// [`compile_with_report`]; with `external`, weights that are byte ranges of
/// checkpoint files are referenced rather than copied ([`crate::external`]).
pub fn compile_with_external(
    model: &Model,
    weights: &Weights,
    options: &CompileOptions,
    external: Option<&mut ExternalWeights>,
) -> Result<Compiled, CompileError> {
    verify(model).map_err(|e| CompileError::Verify(e.to_string()))?;
    weights
        .check(model)
        .map_err(|e| CompileError::Weights(e.to_string()))?;
    let started = std::time::Instant::now();
    let level = OptLevel::from_number(options.opt_level)
        .ok_or(CompileError::OptLevel(options.opt_level))?;
    let (optimized, mut report) = match level {
        OptLevel::O0 => (None, None),
        _ => {
            let opts = OptimizeOptions {
                cost: CostModel::for_device(options.target.limits.class),
                ..OptimizeOptions::new(level)
            };
            let (m, r) = optimize(model, &opts).map_err(|e| CompileError::Optimize(Box::new(e)))?;
            tracing::info!(elapsed = ?started.elapsed(), "optimized");
            (Some(m), Some(r))
        }
    };
    // The optimizer's param-only values (merged weights) become packed weights.
    let folded = match &optimized {
        Some(m) => Some(fold_params(m, weights)?),
        None => None,
    };
    if let (Some(r), Some(f)) = (report.as_mut(), folded.as_ref()) {
        r.folded_params = f.added;
        r.folded_bytes = f.added_bytes;
    }
    let (model, weights) = folded
        .as_ref()
        .map_or((model, weights), |f| (&f.model, &f.weights));
    let lowered = model
        .functions
        .iter()
        .map(|f| lower_function(model, f, &options.target))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(elapsed = ?started.elapsed(), "lowered");
    let bundle = build_bundle(model, &lowered, weights, options.opt_level, external)?;
    tracing::info!(
        elapsed = ?started.elapsed(),
        kernels = bundle.manifest.kernels.len(),
        "bundle assembled"
    );
    Ok(Compiled {
        bundle,
        report,
        optimized,
    })
}
