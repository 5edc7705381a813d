//! The pipeline from a verified model and its weights to a bundle:
//! verify → optimize (at `-O1` and above) → lower → plan → bundle.

use seam_ir::{verify, Model, Weights};
use seam_runtime::bundle::BundleWriter;
use thiserror::Error;

use crate::emit::{build_bundle, EmitError};
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
    /// The model the lowering saw: the optimizer's output (`None` at `-O0`,
    /// where it is the input model).
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
    verify(model).map_err(|e| CompileError::Verify(e.to_string()))?;
    weights
        .check(model)
        .map_err(|e| CompileError::Weights(e.to_string()))?;
    let started = std::time::Instant::now();
    let level = OptLevel::from_number(options.opt_level)
        .ok_or(CompileError::OptLevel(options.opt_level))?;
    let (optimized, report) = match level {
        OptLevel::O0 => (None, None),
        _ => {
            let opts = OptimizeOptions {
                cost: CostModel::for_device(options.target.limits.class),
                ..OptimizeOptions::new(level)
            };
            let (m, r) = optimize(model, &opts)
                .map_err(|e| CompileError::Optimize(Box::new(e)))?;
            tracing::info!(elapsed = ?started.elapsed(), "optimized");
            (Some(m), Some(r))
        }
    };
    let model = optimized.as_ref().unwrap_or(model);
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
    Ok(Compiled {
        bundle,
        report,
        optimized,
    })
}
