//! The e-graph optimizer: IR → e-graph ([`convert`]) → bounded equality
//! saturation with rules as data ([`rules`], [`saturate`]) → greedy extraction
//! under a device cost model ([`cost`]) → IR.
//!
//! ```ignore
//! let (optimized, report) = optimize(&model, &OptimizeOptions::new(OptLevel::O2))?;
//! println!("{report}");
//! ```

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod language;
pub mod rules;
pub mod saturate;

use seam_ir::{verify, Function, Model, VerifyError};
use thiserror::Error;

use crate::optimize::convert::{decode, encode, ConvertError, Encoded};
use crate::optimize::cost::{dag_cost, CachedCost, CostModel, ExtractCost, Extraction};
use crate::optimize::rules::{rules, RuleGroup};
pub use crate::optimize::saturate::{Limits, Report, StopReason};

/// How hard to optimize.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OptLevel {
    /// No rewriting: the model comes back unchanged.
    O0,
    /// Fusion rules only ([`RuleGroup::is_fusion`]).
    O1,
    /// Every rule group.
    O2,
}

impl OptLevel {
    /// The level for `-O<n>`, if there is one.
    pub fn from_number(n: u8) -> Option<OptLevel> {
        match n {
            0 => Some(OptLevel::O0),
            1 => Some(OptLevel::O1),
            2 => Some(OptLevel::O2),
            _ => None,
        }
    }

    /// The rule groups this level runs.
    pub fn groups(self) -> Vec<RuleGroup> {
        let all = [
            RuleGroup::Experts,
            RuleGroup::Routers,
            RuleGroup::Algebra,
            RuleGroup::Fusion,
        ];
        match self {
            OptLevel::O0 => Vec::new(),
            OptLevel::O1 => all.into_iter().filter(|g| g.is_fusion()).collect(),
            OptLevel::O2 => all.to_vec(),
        }
    }
}

/// How to optimize.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeOptions {
    /// Which rule groups run.
    pub level: OptLevel,
    /// Saturation bounds.
    pub limits: Limits,
    /// Device constants for extraction.
    pub cost: CostModel,
}

impl OptimizeOptions {
    /// Options for `level` with default limits and the lavapipe cost profile.
    pub fn new(level: OptLevel) -> Self {
        OptimizeOptions {
            level,
            limits: Limits::default(),
            cost: CostModel::lavapipe(),
        }
    }
}

/// Why optimization failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimizeError {
    /// The input does not verify.
    #[error("the model does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// A function could not be converted to or from the e-graph.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A rule could not be built (an optimizer bug).
    #[error("building the rules: {0}")]
    Rules(String),
    /// The optimized model does not verify (an optimizer bug).
    #[error("the optimized model does not verify: {0}")]
    Output(VerifyError),
}

/// Optimizes every function of `model`. The result has the same name, dims,
/// params, functions and signatures, and computes the same outputs.
pub fn optimize(model: &Model, opts: &OptimizeOptions) -> Result<(Model, Report), OptimizeError> {
    verify(model)?;
    let rules = rules(&opts.level.groups()).map_err(OptimizeError::Rules)?;
    let mut report = Report::default();
    let mut out = model.clone();
    for (i, func) in model.functions.iter().enumerate() {
        let mut encoded = encode(model, func)?;
        let before = extract(func, &encoded, &opts.cost)?.1;
        if opts.level == OptLevel::O0 {
            report.absorb(Report {
                cost_before: before,
                cost_after: before,
                ..Report::default()
            });
            continue;
        }
        let (egraph, mut fn_report) =
            saturate::saturate(std::mem::take(&mut encoded.egraph), &rules, &opts.limits);
        encoded.egraph = egraph;
        let (optimized, after) = extract(func, &encoded, &opts.cost)?;
        fn_report.cost_before = before;
        fn_report.cost_after = after;
        report.absorb(fn_report);
        out.functions[i] = optimized;
    }
    verify(&out).map_err(OptimizeError::Output)?;
    Ok((out, report))
}

/// Extracts the cheapest function from a saturated e-graph, with its cost.
fn extract(
    original: &Function,
    encoded: &Encoded,
    cost: &CostModel,
) -> Result<(Function, f64), ConvertError> {
    let egraph = &encoded.egraph;
    let ex = Extraction::new(egraph, CachedCost::new(ExtractCost::new(egraph, cost)));
    let func = decode(original, encoded, |c| ex.node(c))?;
    let total = dag_cost(egraph, cost, encoded.root, |c| ex.node(c)).ok_or_else(|| {
        ConvertError::Malformed {
            function: original.name.clone(),
            detail: "an e-class without a finite-cost node".into(),
        }
    })?;
    Ok((func, total))
}
