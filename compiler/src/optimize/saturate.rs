//! Bounded equality saturation and its [`Report`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use egg::{BackoffScheduler, Rewrite, Runner};

use crate::optimize::analysis::{SeamGraph, TypeAnalysis};
use crate::optimize::language::SeamLang;
use crate::optimize::rules::fusion;

/// Bounds on saturation; it stops at whichever is hit first.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Most e-nodes.
    pub nodes: usize,
    /// Most iterations (each applies every rule once).
    pub iterations: usize,
    /// Most wall-clock time. Hitting it makes the result depend on machine speed.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nodes: 500_000,
            iterations: 32,
            time: Duration::from_secs(20),
        }
    }
}

/// Why saturation stopped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopReason {
    /// No rule changed the e-graph (or there was nothing to run).
    Saturated,
    /// The iteration limit was hit.
    IterationLimit,
    /// The node limit was hit.
    NodeLimit,
    /// The time limit was hit.
    TimeLimit,
    /// egg stopped for another reason.
    Other(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Saturated => f.write_str("saturated"),
            StopReason::IterationLimit => f.write_str("iteration limit"),
            StopReason::NodeLimit => f.write_str("node limit"),
            StopReason::TimeLimit => f.write_str("time limit"),
            StopReason::Other(s) => f.write_str(s),
        }
    }
}

/// What the optimizer did, summed over the model's functions.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// How often each rule changed the e-graph.
    pub rules_fired: BTreeMap<String, usize>,
    /// E-nodes at the end of saturation.
    pub egraph_nodes: usize,
    /// E-classes at the end of saturation.
    pub egraph_classes: usize,
    /// Iterations run (the most of any function).
    pub iterations: usize,
    /// Why saturation stopped (the first function that did not saturate, else `Saturated`).
    pub stop_reason: StopReason,
    /// Time spent saturating.
    pub saturation_time: Duration,
    /// Estimated cost of the input, µs (see [`crate::optimize::cost`]).
    pub cost_before: f64,
    /// Estimated cost of the output, µs.
    pub cost_after: f64,
    /// Run-time instructions scheduled between an `all_reduce_start` and its
    /// wait (compute overlapping reductions; see [`crate::optimize::schedule`]).
    pub comm_overlap: usize,
    /// Params the compiler added by folding param-only values (filled in by
    /// [`crate::compile`], which folds after optimizing).
    pub folded_params: usize,
    /// Bytes of those params.
    pub folded_bytes: u64,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            rules_fired: BTreeMap::new(),
            egraph_nodes: 0,
            egraph_classes: 0,
            iterations: 0,
            stop_reason: StopReason::Saturated,
            saturation_time: Duration::ZERO,
            cost_before: 0.0,
            cost_after: 0.0,
            comm_overlap: 0,
            folded_params: 0,
            folded_bytes: 0,
        }
    }
}

impl Report {
    /// Adds another function's report to this one.
    pub fn absorb(&mut self, other: Report) {
        for (rule, n) in other.rules_fired {
            *self.rules_fired.entry(rule).or_default() += n;
        }
        self.egraph_nodes += other.egraph_nodes;
        self.egraph_classes += other.egraph_classes;
        self.iterations = self.iterations.max(other.iterations);
        if self.stop_reason == StopReason::Saturated {
            self.stop_reason = other.stop_reason;
        }
        self.saturation_time += other.saturation_time;
        self.cost_before += other.cost_before;
        self.cost_after += other.cost_after;
        self.comm_overlap += other.comm_overlap;
        self.folded_params += other.folded_params;
        self.folded_bytes += other.folded_bytes;
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "e-graph: {} nodes, {} classes after {} iteration(s) ({}, {:.1} ms)",
            self.egraph_nodes,
            self.egraph_classes,
            self.iterations,
            self.stop_reason,
            self.saturation_time.as_secs_f64() * 1e3
        )?;
        writeln!(
            f,
            "estimated cost: {:.1} µs → {:.1} µs",
            self.cost_before, self.cost_after
        )?;
        if self.rules_fired.is_empty() {
            writeln!(f, "no rule fired")?;
        }
        for (rule, n) in &self.rules_fired {
            writeln!(f, "  {rule}: fired {n}×")?;
        }
        if self.rules_fired.contains_key("split-all-reduce") {
            writeln!(
                f,
                "all-reduce schedule: {} instruction(s) run while a reduction is in flight",
                self.comm_overlap
            )?;
        }
        if self.folded_params > 0 {
            writeln!(
                f,
                "folded {} param-only value(s) into packed weights ({} bytes)",
                self.folded_params, self.folded_bytes
            )?;
        }
        Ok(())
    }
}

/// Saturates `egraph` with `rules` within `limits`; returns the e-graph and a
/// report with everything but the costs filled in.
pub fn saturate(
    egraph: SeamGraph,
    rules: &[Rewrite<SeamLang, TypeAnalysis>],
    limits: &Limits,
) -> (SeamGraph, Report) {
    // egg's default scheduler, except that rules linear in the e-graph are never banned.
    let scheduler = fusion::NAMES
        .iter()
        .fold(BackoffScheduler::default(), |s, name| s.do_not_ban(*name));
    let runner = Runner::<SeamLang, TypeAnalysis>::default()
        .with_scheduler(scheduler)
        .with_egraph(egraph)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(rules);
    let mut rules_fired = BTreeMap::new();
    for it in &runner.iterations {
        for (rule, n) in &it.applied {
            *rules_fired.entry(rule.to_string()).or_default() += n;
        }
    }
    let stop_reason = match &runner.stop_reason {
        None | Some(egg::StopReason::Saturated) => StopReason::Saturated,
        Some(egg::StopReason::IterationLimit(_)) => StopReason::IterationLimit,
        Some(egg::StopReason::NodeLimit(_)) => StopReason::NodeLimit,
        Some(egg::StopReason::TimeLimit(_)) => StopReason::TimeLimit,
        Some(egg::StopReason::Other(s)) => StopReason::Other(s.clone()),
    };
    let report = Report {
        rules_fired,
        egraph_nodes: runner.egraph.total_number_of_nodes(),
        egraph_classes: runner.egraph.number_of_classes(),
        iterations: runner.iterations.len(),
        stop_reason,
        saturation_time: runner
            .iterations
            .iter()
            .map(|i| Duration::from_secs_f64(i.total_time))
            .sum(),
        ..Report::default()
    };
    (runner.egraph, report)
}
