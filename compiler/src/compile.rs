//! The pipeline from a verified model and its weights to a bundle:
//! verify → optimize and fold param-only values (at `-O1` and above) → lower →
//! plan → bundle.

use std::fmt;
use std::sync::Arc;

use seam_bundle::BundleWriter;
use seam_ir::{verify, Model, VerifyError, Weights, WeightsError};
use thiserror::Error;

use crate::emit::{build_bundle, EmitError};
use crate::external::ExternalWeights;
use crate::fold::{fold_params, FoldError};
use crate::formats::{assign_formats, FormatError, FormatReport, WeightPolicy};
use crate::lower::{lower_function, LowerError, Target};
use crate::optimize::cost::CostModel;
use crate::optimize::{optimize, OptLevel, OptimizeError, OptimizeOptions, Report};

/// Why compilation failed.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The model does not verify.
    #[error("model does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// Weights do not match the model.
    #[error("weights do not match the model: {0}")]
    Weights(#[from] WeightsError),
    /// The optimizer failed.
    #[error(transparent)]
    Optimize(Box<OptimizeError>),
    /// Lowering failed.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// Folding param-only values failed.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// Encoding weights in their storage formats failed.
    #[error(transparent)]
    Formats(#[from] FormatError),
    /// Assembling the bundle failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// How to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The device the kernels are specialised for.
    pub target: Target,
    /// Optimization level (`-O0`: op-by-op lowering; `-O1`: fusion rules; `-O2`: all rules).
    pub level: OptLevel,
    /// Where weights that are byte ranges of checkpoint files may be referenced
    /// instead of copied ([`crate::external`]); `None` embeds every weight.
    pub external: Option<ExternalWeights>,
    /// The storage format of product weights ([`crate::formats`]).
    pub weights: WeightPolicy,
    /// Called as weights are encoded: `(done, total)`.
    pub progress: Option<ProgressHook>,
}

/// A progress callback shared by the compile stages that take long on big
/// checkpoints (weight encoding): `(done, total)`.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(usize, usize) + Send + Sync>);

impl fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressHook")
    }
}

impl CompileOptions {
    /// Every weight embedded, at `level`, for `target`.
    pub fn new(target: Target, level: OptLevel) -> Self {
        CompileOptions {
            target,
            level,
            external: None,
            weights: WeightPolicy::default(),
            progress: None,
        }
    }
}

/// What [`compile`] produces.
#[derive(Debug)]
pub struct Compiled {
    /// The bundle, ready to write.
    pub bundle: BundleWriter,
    /// What the optimizer did (`None` at `-O0`).
    pub report: Option<Report>,
    /// The optimizer's output (`None` at `-O0`). The lowering sees it with its
    /// param-only values folded into weights ([`crate::fold`]).
    pub optimized: Option<Model>,
    /// The storage formats the weights got.
    pub formats: FormatReport,
}

/// Compiles every function of `model` with `weights` into a bundle, with the
/// optimizer's report and output.
pub fn compile(
    model: &Model,
    weights: &Weights,
    options: &CompileOptions,
) -> Result<Compiled, CompileError> {
    verify(model)?;
    weights.check(model)?;
    let started = std::time::Instant::now();
    let level = options.level;
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
    let mut progress = |done, total| {
        if let Some(p) = &options.progress {
            (p.0)(done, total);
        }
    };
    let (model, weights, formats) =
        assign_formats(model, weights, &options.weights, &mut progress)?;
    tracing::info!(elapsed = ?started.elapsed(), "weights encoded");
    let (model, weights) = (&model, &weights);
    let lowered = model
        .functions
        .iter()
        .map(|f| lower_function(model, f, &options.target))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(elapsed = ?started.elapsed(), "lowered");
    let mut external = options.external.clone();
    let bundle = build_bundle(model, &lowered, weights, level.number(), external.as_mut())?;
    tracing::info!(
        elapsed = ?started.elapsed(),
        kernels = bundle.manifest.kernels.len(),
        "bundle assembled"
    );
    Ok(Compiled {
        bundle,
        report,
        optimized,
        formats,
    })
}
