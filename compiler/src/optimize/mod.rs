//! The e-graph optimizer: IR → e-graph ([`convert`]) → bounded equality
//! saturation with rules as data ([`mod@rules`], [`saturate`]) → greedy, DAG-refined
//! extraction under a device cost model ([`cost`]) → IR → all-reduce
//! scheduling ([`schedule`], with the comm group).
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
pub mod schedule;

use seam_ir::{verify, Function, Model, VerifyError};
use thiserror::Error;

use crate::optimize::convert::{decode, encode, ConvertError, Encoded};
use crate::optimize::cost::{
    choice_of, chosen, dag_cost, is_acyclic, refine, Choice, CostModel, ExtractCost, Extraction,
    NodeCosts,
};
use crate::optimize::rules::{rules, RuleGroup};
pub use crate::optimize::saturate::{Limits, Report, StopReason};

/// How hard to optimize.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OptLevel {
    /// No rewriting: the model comes back unchanged.
    O0 = 0,
    /// Fusion rules only ([`RuleGroup::is_fusion`]).
    O1 = 1,
    /// Every rule group.
    O2 = 2,
}

/// The digit of `-O<n>`.
impl std::fmt::Display for OptLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// `-O0`, `-O1`, `-O2` on the command line: the digit alone.
impl std::str::FromStr for OptLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<u8>()
            .ok()
            .and_then(OptLevel::from_number)
            .ok_or_else(|| format!("there is no optimization level `{s}` (levels are 0, 1 and 2)"))
    }
}

impl OptLevel {
    /// `n` in `-O<n>`.
    pub fn number(self) -> u8 {
        self as u8
    }

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
            RuleGroup::Comm,
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
        let before = input_cost(func, &encoded, &opts.cost)?;
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
        let (mut optimized, after) = extract(func, &encoded, &opts.cost)?;
        if opts.level.groups().contains(&RuleGroup::Comm) {
            optimized = schedule::schedule_comm(&optimized);
            fn_report.comm_overlap = schedule::overlap(&optimized);
        }
        fn_report.cost_before = before;
        fn_report.cost_after = after;
        report.absorb(fn_report);
        out.functions[i] = optimized;
    }
    verify(&out).map_err(OptimizeError::Output)?;
    Ok((out, report))
}

/// The DAG cost of the function as encoded (before any rule: one node per class).
fn input_cost(
    original: &Function,
    encoded: &Encoded,
    cost: &CostModel,
) -> Result<f64, ConvertError> {
    let egraph = &encoded.egraph;
    let tree = Extraction::new(egraph, ExtractCost::new(egraph, cost));
    dag_cost(egraph, cost, encoded.root, |c| tree.node(c)).ok_or_else(|| ConvertError::Malformed {
        function: original.name.clone(),
        detail: "an e-class without a finite-cost node".into(),
    })
}

/// Single-switch refinement sweeps after extraction (see [`cost::refine`]).
const REFINE_PASSES: usize = 3;

/// Extracts the cheapest function from a saturated e-graph, with its cost:
/// the tree-cost and the amortised choice are each refined by single-class
/// switches ([`cost::refine`]) and the one with the lower DAG cost is kept
/// (tree on ties); the plain tree-cost choice if that does not decode.
fn extract(
    original: &Function,
    encoded: &Encoded,
    cost: &CostModel,
) -> Result<(Function, f64), ConvertError> {
    let egraph = &encoded.egraph;
    let malformed = || ConvertError::Malformed {
        function: original.name.clone(),
        detail: "an e-class without a finite-cost node".into(),
    };
    let root = encoded.root;
    let base = NodeCosts::new(egraph, cost);
    let tree = Extraction::new(egraph, ExtractCost::with_costs(base.clone(), false));
    let tree_cost = base
        .clone()
        .dag(root, |c| tree.node(c))
        .ok_or_else(malformed)?;
    let shared = Extraction::new(egraph, ExtractCost::with_costs(base.clone(), true));
    let mut best: Option<(Choice, f64)> = None;
    for start in [choice_of(&tree), choice_of(&shared)] {
        let mut choice = start;
        if !is_acyclic(egraph, &choice, root) {
            continue;
        }
        if let Some(c) = refine(egraph, &mut base.clone(), root, &mut choice, REFINE_PASSES) {
            if best.as_ref().is_none_or(|(_, b)| c < *b) {
                best = Some((choice, c));
            }
        }
    }
    if let Some((choice, c)) = best.filter(|(_, c)| *c <= tree_cost) {
        if let Ok(func) = decode(original, encoded, |id| chosen(egraph, &choice, id)) {
            return Ok((func, c));
        }
    }
    Ok((decode(original, encoded, |c| tree.node(c))?, tree_cost))
}
