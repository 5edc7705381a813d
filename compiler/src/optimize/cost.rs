//! The cost model: estimated microseconds per e-node as
//! `dispatch + bytes moved / bandwidth + FLOPs / throughput`, device constants in
//! one [`CostModel`].
//!
//! Extraction is egg's greedy bottom-up [`egg::Extractor`] over [`ExtractCost`]
//! (tree cost: a node costs itself plus its children). Ties go to the smallest
//! node in the e-node order, so extraction is deterministic. Every op node costs
//! strictly more than zero (a `reshape`, a view, costs [`CostModel::view_us`]), so
//! a node always costs more than each child and the extracted graph is never
//! cyclic. Reported costs ([`dag_cost`]) count each chosen e-class once.

use std::collections::HashSet;

use egg::{CostFunction, Id, Language};
use seam_ir::{Dim, TensorType};

use crate::optimize::analysis::{leaf, tensor_type, ClassType, SeamGraph};
use crate::optimize::language::SeamLang;

/// Device constants of the cost model.
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    /// Cost of one kernel dispatch, µs.
    pub dispatch_us: f64,
    /// Memory bandwidth, bytes per µs.
    pub bytes_per_us: f64,
    /// Arithmetic throughput, FLOPs per µs.
    pub flops_per_us: f64,
    /// Cost of an op lowered to a view (`reshape`), µs; above zero.
    pub view_us: f64,
    /// Size assumed for every symbolic dim (`tokens`, …).
    pub symbolic_dim: u64,
}

impl CostModel {
    /// lavapipe on a 2-core CPU: ~40 µs per dispatch, ~3 GB/s, ~4.5 GFLOP/s
    /// (DESIGN.md §6a).
    pub fn lavapipe() -> Self {
        CostModel {
            dispatch_us: 40.0,
            bytes_per_us: 3_000.0,
            flops_per_us: 4_500.0,
            view_us: 0.01,
            symbolic_dim: 16,
        }
    }

    /// A discrete GPU: ~5 µs per dispatch, ~1 TB/s, ~20 TFLOP/s.
    pub fn gpu() -> Self {
        CostModel {
            dispatch_us: 5.0,
            bytes_per_us: 1.0e6,
            flops_per_us: 2.0e7,
            view_us: 0.01,
            symbolic_dim: 16,
        }
    }

    fn elements(&self, t: &TensorType) -> f64 {
        t.shape
            .dims()
            .iter()
            .map(|d| match d {
                Dim::Static(n) => *n as f64,
                Dim::Sym(_) => self.symbolic_dim as f64,
            })
            .product()
    }

    fn bytes(&self, t: &TensorType) -> f64 {
        self.elements(t) * t.dtype.size_bytes() as f64
    }

    fn dim(&self, t: &TensorType, i: usize) -> f64 {
        match t.shape.dims().get(i) {
            Some(Dim::Static(n)) => *n as f64,
            Some(Dim::Sym(_)) => self.symbolic_dim as f64,
            None => 1.0,
        }
    }

    /// The cost of `enode` alone (children excluded), µs.
    pub fn node_cost(&self, egraph: &SeamGraph, enode: &SeamLang) -> f64 {
        if !enode.is_ir_op() {
            return 0.0;
        }
        if matches!(enode, SeamLang::Reshape(_)) {
            return self.view_us;
        }
        let operands: Vec<&TensorType> = enode
            .children()
            .iter()
            .filter_map(|&c| tensor_type(egraph, c))
            .collect();
        let results: Vec<TensorType> = match egraph.lookup(enode.clone()).map(|c| &egraph[c].data) {
            Some(ClassType::Tensor(t)) => vec![t.clone()],
            Some(ClassType::Tuple(ts)) => ts.clone(),
            _ => Vec::new(),
        };
        let out_elems: f64 = results.iter().map(|t| self.elements(t)).sum();
        let mut bytes: f64 = results.iter().map(|t| self.bytes(t)).sum();
        let flops = match (enode, operands.as_slice()) {
            (SeamLang::MatMul(_), [a, _]) => {
                2.0 * out_elems * self.dim(a, a.rank().saturating_sub(1))
            }
            (SeamLang::Attention(_), [q, k, _]) => 4.0 * self.elements(q) * self.dim(k, 0),
            (SeamLang::Moe(_), [x, ids, w, experts @ ..]) => {
                let tokens_k = self.elements(ids);
                let (d, f) = experts
                    .first()
                    .map_or((1.0, 1.0), |g| (self.dim(g, 1), self.dim(g, 2)));
                let e = experts.first().map_or(1.0, |g| self.dim(g, 0));
                // Only the experts some token selects are read.
                let touched = (tokens_k / e).min(1.0);
                bytes += self.bytes(x) + self.bytes(ids) + self.bytes(w);
                bytes += experts.iter().take(3).map(|t| self.bytes(t)).sum::<f64>() * touched;
                bytes += experts.iter().skip(3).map(|t| self.bytes(t)).sum::<f64>();
                let shared = experts.get(3).map_or(0.0, |s| {
                    6.0 * self.dim(x, 0) * self.dim(s, 0) * self.dim(s, 1)
                });
                tokens_k * 6.0 * d * f + shared
            }
            _ => 4.0 * out_elems,
        };
        if !matches!(enode, SeamLang::Moe(_)) {
            bytes += operands.iter().map(|t| self.bytes(t)).sum::<f64>();
        }
        self.dispatch_us + bytes / self.bytes_per_us + flops / self.flops_per_us
    }
}

/// egg cost function: [`CostModel::node_cost`] plus the children's costs.
pub struct ExtractCost<'a> {
    /// The e-graph whose types size the nodes.
    pub egraph: &'a SeamGraph,
    /// Device constants.
    pub model: &'a CostModel,
}

impl<'a> ExtractCost<'a> {
    /// A cost function over `egraph` with device constants `model`.
    pub fn new(egraph: &'a SeamGraph, model: &'a CostModel) -> Self {
        ExtractCost { egraph, model }
    }
}

impl CostFunction<SeamLang> for ExtractCost<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &SeamLang, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = self.model.node_cost(self.egraph, enode);
        enode.fold(own, |sum, id| sum + costs(id))
    }
}

/// The cost of the graph `choose` selects from `root`, each e-class counted once.
pub fn dag_cost<'a>(
    egraph: &'a SeamGraph,
    model: &CostModel,
    root: Id,
    choose: impl Fn(Id) -> &'a SeamLang,
) -> f64 {
    let mut seen = HashSet::new();
    let mut stack = vec![egraph.find(root)];
    let mut total = 0.0;
    while let Some(c) = stack.pop() {
        if !seen.insert(c) || leaf(egraph, c).is_some() {
            continue;
        }
        let node = choose(c);
        total += model.node_cost(egraph, node);
        stack.extend(node.children().iter().map(|&k| egraph.find(k)));
    }
    total
}
