//! The cost model: estimated microseconds per e-node as
//! `dispatch + bytes moved / bandwidth + FLOPs / throughput`, device constants in
//! one [`CostModel`].
//!
//! Extraction ([`Extraction`]) is greedy and bottom-up with tree cost (a node costs
//! itself plus its children, as egg's `Extractor`, over [`ExtractCost`]), but
//! sweeps e-classes in id order with each node's own cost computed once, so deep
//! graphs settle in a few sweeps. Ties go to the first node in the e-class's
//! node order, so extraction is deterministic. Every op node costs strictly more
//! than zero (a `reshape`, a view, costs [`CostModel::view_us`]), so a node
//! always costs more than each child and the extracted graph is never cyclic.
//! Reported costs ([`dag_cost`]) count each chosen e-class once.
//!
//! Tree cost counts a shared value once per use, so a rewrite whose gain is
//! sharing (merging matmuls) never wins; DAG-aware extraction is future work.

use std::collections::{HashMap, HashSet};

use egg::{CostFunction, Id, Language};
use seam_ir::{Dim, Op, TensorType};
use seam_shaders::DeviceClass;

use crate::optimize::analysis::{leaf, tensor_type, ClassType, SeamGraph};
use crate::optimize::language::SeamLang;
use crate::optimize::rules::matchers::attrs;

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

    /// The profile for a class of device: lavapipe's for CPU implementations,
    /// the GPU one otherwise.
    pub fn for_device(class: DeviceClass) -> Self {
        match class {
            DeviceClass::Cpu => CostModel::lavapipe(),
            DeviceClass::DiscreteGpu | DeviceClass::IntegratedGpu | DeviceClass::Other => {
                CostModel::gpu()
            }
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
            // Two products and the activation epilogue, one dispatch.
            (SeamLang::GatedMatMul(_), [a, _, _]) => {
                4.0 * out_elems * self.dim(a, a.rank().saturating_sub(1)) + 8.0 * out_elems
            }
            // The product and one add per element, one dispatch.
            (SeamLang::MatMulAdd(_), [a, _, _]) => {
                (2.0 * self.dim(a, a.rank().saturating_sub(1)) + 1.0) * out_elems
            }
            // One pass: every operand read once, the result written once.
            (SeamLang::Fused(c), _) => match c.first().and_then(|&l| attrs(egraph, l)) {
                Some(Op::Fused { expr }) => 4.0 * expr.ops().max(1) as f64 * out_elems,
                _ => 4.0 * out_elems,
            },
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

/// The cheapest node of every e-class under a cost function.
pub struct Extraction<'a> {
    egraph: &'a SeamGraph,
    /// Per canonical class: tree cost and index of the chosen node.
    best: HashMap<Id, (f64, usize)>,
}

impl<'a> Extraction<'a> {
    /// Chooses the cheapest node of every class of `egraph` under `cost`.
    pub fn new(egraph: &'a SeamGraph, mut cost: impl CostFunction<SeamLang, Cost = f64>) -> Self {
        let mut ids: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        ids.sort_unstable();
        let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
        let mut changed = true;
        while changed {
            changed = false;
            for &id in &ids {
                for (i, node) in egraph[id].nodes.iter().enumerate() {
                    let known = node.all(|c| best.contains_key(&egraph.find(c)));
                    if !known {
                        continue;
                    }
                    let total = cost.cost(node, |c| {
                        best.get(&egraph.find(c)).map_or(f64::INFINITY, |b| b.0)
                    });
                    if best.get(&id).is_none_or(|b| total < b.0) {
                        best.insert(id, (total, i));
                        changed = true;
                    }
                }
            }
        }
        Extraction { egraph, best }
    }

    /// The chosen node of class `id`, if it has a finite-cost one.
    pub fn node(&self, id: Id) -> Option<&'a SeamLang> {
        let id = self.egraph.find(id);
        let (_, i) = self.best.get(&id)?;
        self.egraph[id].nodes.get(*i)
    }
}

/// [`ExtractCost`] with each node's own cost computed once.
pub struct CachedCost<'a> {
    inner: ExtractCost<'a>,
    own: HashMap<SeamLang, f64>,
}

impl<'a> CachedCost<'a> {
    /// Caches `inner`'s node costs.
    pub fn new(inner: ExtractCost<'a>) -> Self {
        CachedCost {
            inner,
            own: HashMap::new(),
        }
    }
}

impl CostFunction<SeamLang> for CachedCost<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &SeamLang, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = match self.own.get(enode) {
            Some(c) => *c,
            None => {
                let c = self.inner.model.node_cost(self.inner.egraph, enode);
                self.own.insert(enode.clone(), c);
                c
            }
        };
        enode.fold(own, |sum, id| sum + costs(id))
    }
}

/// The cost of the graph `choose` selects from `root`, each e-class counted
/// once; `None` if some reachable class has no choice.
pub fn dag_cost<'a>(
    egraph: &'a SeamGraph,
    model: &CostModel,
    root: Id,
    choose: impl Fn(Id) -> Option<&'a SeamLang>,
) -> Option<f64> {
    let mut seen = HashSet::new();
    let mut stack = vec![egraph.find(root)];
    let mut total = 0.0;
    while let Some(c) = stack.pop() {
        if !seen.insert(c) || leaf(egraph, c).is_some() {
            continue;
        }
        let node = choose(c)?;
        total += model.node_cost(egraph, node);
        stack.extend(node.children().iter().map(|&k| egraph.find(k)));
    }
    Some(total)
}
