//! The cost model: estimated microseconds per e-node as
//! `dispatch + bytes moved / bandwidth + FLOPs / throughput`, device constants in
//! one [`CostModel`].
//!
//! Two kinds of node cost nothing at run time:
//! - *param-only* nodes: a `concat`, `slice`, `reshape` or `transpose` whose
//!   operands are all params or other param-only values ([`param_only_classes`]);
//!   the compiler folds them into packed weights before lowering
//!   ([`crate::fold`]);
//! - part of a `slice`'s dispatch: the lowering copies every slice of one value
//!   along one axis in one `split` dispatch, so extraction charges each of the
//!   e-graph's sibling slices a share of it, and [`dag_cost`] one dispatch per
//!   group it would lower.
//!
//! Extraction ([`Extraction`]) is greedy and bottom-up (as egg's `Extractor`,
//! over [`ExtractCost`]), sweeping e-classes in id order with each node's own
//! cost computed once. Ties go to the first node in the e-class's node order,
//! so extraction is deterministic. A node replaces a class's choice only when
//! strictly cheaper and never costs less than its children under tree cost, so
//! the tree-cost choice is never cyclic.
//!
//! Tree cost counts a value shared by several users once per use, so a rewrite
//! whose gain is sharing (merged matmuls feeding several slices) would never
//! win. The optimizer therefore also extracts with *amortised* cost (a child's
//! cost divided by the number of its parent e-classes) and keeps whichever
//! choice has the lower [`dag_cost`] (each chosen e-class counted once), falling
//! back to the tree-cost choice on ties and if the amortised one is cyclic.

use std::collections::{BTreeMap, HashMap, HashSet};

use egg::{CostFunction, Id, Language};
use seam_ir::{Dim, Op, TensorType};
use seam_shaders::DeviceClass;

use crate::optimize::analysis::{leaf, tensor_type, ClassType, SeamGraph};
use crate::optimize::language::{Leaf, SeamLang};
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
    /// (measured; see `docs/cost-model.md`).
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

    /// Most outputs one `split` dispatch writes (the lowering's limit, one
    /// storage binding being the input).
    pub const SPLIT_OUTPUTS: usize = 7;

    /// A slice's cost as part of a `split`: its own (writing its result) and
    /// the split's (one dispatch reading the input once), µs.
    pub fn slice_cost(&self, egraph: &SeamGraph, enode: &SeamLang) -> (f64, f64) {
        let full = self.node_cost(egraph, enode);
        let input: f64 = enode
            .children()
            .iter()
            .filter_map(|&c| tensor_type(egraph, c))
            .map(|t| self.bytes(t))
            .sum();
        let group = self.dispatch_us + input / self.bytes_per_us;
        (full - group, group)
    }

    /// The cost of `enode` alone (children excluded) as its own dispatch, µs.
    pub fn node_cost(&self, egraph: &SeamGraph, enode: &SeamLang) -> f64 {
        if !enode.is_ir_op() {
            return 0.0;
        }
        // A view; and the halves of a split all-reduce, whose transfer overlaps
        // compute (a blocking `all_reduce` pays a dispatch and its bytes).
        if matches!(
            enode,
            SeamLang::Reshape(_) | SeamLang::AllReduceStart(_) | SeamLang::AllReduceWait(_)
        ) {
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
            // At most a slot's positions per query (fewer in decode).
            (SeamLang::PooledAttention(_), [q, k, ..]) => 4.0 * self.elements(q) * self.dim(k, 1),
            // Each token's row times its own matrix.
            (SeamLang::GroupedMatMul(_), [x, _, _]) => 2.0 * out_elems * self.dim(x, 1),
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

/// Whether `enode` is a movement op the compiler folds when its operands are
/// compile-time constants.
fn is_movement(enode: &SeamLang) -> bool {
    matches!(
        enode,
        SeamLang::Concat(_) | SeamLang::Slice(_) | SeamLang::Reshape(_) | SeamLang::Transpose(_)
    )
}

/// The tensor children of `enode` (metadata leaves skipped).
fn tensor_children<'n>(
    egraph: &'n SeamGraph,
    enode: &'n SeamLang,
) -> impl Iterator<Item = Id> + 'n {
    enode
        .children()
        .iter()
        .map(|&c| egraph.find(c))
        .filter(|&c| egraph[c].data != ClassType::Meta)
}

/// The e-classes holding a param or a param-only movement node (`concat`,
/// `slice`, `reshape`, `transpose` of param-only classes): values the compiler
/// computes once at compile time ([`crate::fold`]).
pub fn param_only_classes(egraph: &SeamGraph) -> HashSet<Id> {
    let mut ids: Vec<Id> = egraph.classes().map(|c| c.id).collect();
    ids.sort_unstable();
    let mut out: HashSet<Id> = ids
        .iter()
        .copied()
        .filter(|&c| matches!(leaf(egraph, c), Some(Leaf::Param(_))))
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for &id in &ids {
            if out.contains(&id) {
                continue;
            }
            let folds = egraph[id]
                .nodes
                .iter()
                .any(|n| is_movement(n) && tensor_children(egraph, n).all(|c| out.contains(&c)));
            if folds {
                out.insert(id);
                changed = true;
            }
        }
    }
    out
}

/// The source class and axis of a `slice` node.
fn slice_source(egraph: &SeamGraph, enode: &SeamLang) -> Option<(Id, usize)> {
    match enode {
        SeamLang::Slice(c) if c.len() == 2 => match attrs(egraph, c[0]) {
            Some(seam_ir::Op::Slice { axis, .. }) => Some((egraph.find(c[1]), *axis)),
            _ => None,
        },
        _ => None,
    }
}

/// A node's cost in a DAG: its own, and for a slice `(source, axis, cost of
/// the split dispatch it shares)`.
type DagNode = (f64, Option<(Id, usize, f64)>);

/// Own costs of e-nodes under a [`CostModel`]: param-only nodes are free, and a
/// slice pays its share of the `split` dispatch of its siblings. Cloning
/// reuses the whole-graph analysis (param-only classes, sibling slices).
#[derive(Clone)]
pub struct NodeCosts<'a> {
    egraph: &'a SeamGraph,
    model: &'a CostModel,
    param_only: HashSet<Id>,
    siblings: HashMap<(Id, usize), usize>,
    cache: HashMap<SeamLang, f64>,
    dag_cache: HashMap<SeamLang, DagNode>,
}

impl<'a> NodeCosts<'a> {
    /// Node costs over `egraph` with device constants `model`.
    pub fn new(egraph: &'a SeamGraph, model: &'a CostModel) -> Self {
        let mut siblings: HashMap<(Id, usize), HashSet<Id>> = HashMap::new();
        for class in egraph.classes() {
            for node in &class.nodes {
                if let Some(key) = slice_source(egraph, node) {
                    siblings.entry(key).or_default().insert(class.id);
                }
            }
        }
        NodeCosts {
            egraph,
            model,
            param_only: param_only_classes(egraph),
            siblings: siblings.into_iter().map(|(k, v)| (k, v.len())).collect(),
            cache: HashMap::new(),
            dag_cache: HashMap::new(),
        }
    }

    /// Whether `enode` is folded at compile time (a param-only movement node).
    pub fn is_folded(&self, enode: &SeamLang) -> bool {
        is_movement(enode)
            && tensor_children(self.egraph, enode).all(|c| self.param_only.contains(&c))
    }

    /// The cost of `enode` alone, µs, for extraction.
    pub fn own(&mut self, enode: &SeamLang) -> f64 {
        if let Some(c) = self.cache.get(enode) {
            return *c;
        }
        let c = if self.is_folded(enode) {
            0.0
        } else {
            match slice_source(self.egraph, enode) {
                Some(key) => {
                    let n = self.siblings.get(&key).copied().unwrap_or(1).max(1);
                    let share = n.min(CostModel::SPLIT_OUTPUTS) as f64;
                    let (own, group) = self.model.slice_cost(self.egraph, enode);
                    own + group / share
                }
                None => self.model.node_cost(self.egraph, enode),
            }
        };
        self.cache.insert(enode.clone(), c);
        c
    }
}

/// egg cost function for [`Extraction`]: a node's own cost ([`NodeCosts`]) plus
/// its children's, each divided by the child's number of parent e-classes when
/// amortised.
pub struct ExtractCost<'a> {
    costs: NodeCosts<'a>,
    /// Parent e-classes per class, when amortising.
    parents: Option<HashMap<Id, f64>>,
}

impl<'a> ExtractCost<'a> {
    /// Tree cost over `egraph` with device constants `model`.
    pub fn new(egraph: &'a SeamGraph, model: &'a CostModel) -> Self {
        Self::with_costs(NodeCosts::new(egraph, model), false)
    }

    /// Tree cost, or amortised cost (each child's cost shared among its parent
    /// e-classes), over node costs `costs`.
    pub fn with_costs(costs: NodeCosts<'a>, amortised: bool) -> Self {
        let egraph = costs.egraph;
        let parents = amortised.then(|| {
            egraph
                .classes()
                .map(|c| {
                    let distinct: HashSet<Id> = c.parents().map(|p| egraph.find(p)).collect();
                    (c.id, distinct.len().max(1) as f64)
                })
                .collect()
        });
        ExtractCost { costs, parents }
    }
}

impl CostFunction<SeamLang> for ExtractCost<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &SeamLang, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = self.costs.own(enode);
        let egraph = self.costs.egraph;
        let parents = &self.parents;
        enode.fold(own, |sum, id| {
            let share = parents
                .as_ref()
                .and_then(|p| p.get(&egraph.find(id)))
                .copied()
                .unwrap_or(1.0);
            sum + costs(id) / share
        })
    }
}

/// Most sweeps of [`Extraction`] over the e-classes (a class's choice only
/// ever gets cheaper, so stopping early keeps a valid choice).
const MAX_SWEEPS: usize = 64;

/// The cheapest node of every e-class under a cost function.
pub struct Extraction<'a> {
    egraph: &'a SeamGraph,
    /// Per canonical class: cost and index of the chosen node.
    best: HashMap<Id, (f64, usize)>,
}

impl<'a> Extraction<'a> {
    /// Chooses the cheapest node of every class of `egraph` under `cost`.
    pub fn new(egraph: &'a SeamGraph, mut cost: impl CostFunction<SeamLang, Cost = f64>) -> Self {
        let mut ids: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        ids.sort_unstable();
        let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
        let mut changed = true;
        let mut sweeps = 0;
        while changed && sweeps < MAX_SWEEPS {
            changed = false;
            sweeps += 1;
            for &id in &ids {
                for (i, node) in egraph[id].nodes.iter().enumerate() {
                    let known = node.all(|c| best.contains_key(&egraph.find(c)));
                    if !known {
                        continue;
                    }
                    let total = cost.cost(node, |c| {
                        best.get(&egraph.find(c)).map_or(f64::INFINITY, |b| b.0)
                    });
                    // A strict, relative improvement: amortised costs may
                    // otherwise creep down forever around a cycle.
                    if best.get(&id).is_none_or(|b| total < b.0 * (1.0 - 1e-9)) {
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

/// The cost of the graph `choose` selects from `root`, each e-class counted
/// once (param-only nodes free, the slices of one value along one axis one
/// `split` dispatch per [`CostModel::SPLIT_OUTPUTS`]); `None` if some reachable
/// class has no choice.
pub fn dag_cost<'a>(
    egraph: &'a SeamGraph,
    model: &CostModel,
    root: Id,
    choose: impl Fn(Id) -> Option<&'a SeamLang>,
) -> Option<f64> {
    NodeCosts::new(egraph, model).dag(root, choose)
}

impl<'a> NodeCosts<'a> {
    /// A node's run-time cost in a DAG: `(own, split)`, `split` being the cost of
    /// the `split` dispatch a slice shares with its siblings (`None` otherwise).
    fn dag_node(&mut self, enode: &SeamLang) -> DagNode {
        if self.is_folded(enode) {
            return (0.0, None);
        }
        match slice_source(self.egraph, enode) {
            Some((source, axis)) => {
                let (own, group) = self.model.slice_cost(self.egraph, enode);
                (own, Some((source, axis, group)))
            }
            None => (self.model.node_cost(self.egraph, enode), None),
        }
    }

    /// [`dag_cost`] with this cache.
    pub fn dag<'n>(
        &mut self,
        root: Id,
        choose: impl Fn(Id) -> Option<&'n SeamLang>,
    ) -> Option<f64> {
        let egraph = self.egraph;
        let mut seen = HashSet::new();
        let mut stack = vec![egraph.find(root)];
        let mut total = 0.0;
        // Per (source, axis): slices chosen and the cost of one `split` dispatch.
        let mut slices: BTreeMap<(Id, usize), (usize, f64)> = BTreeMap::new();
        while let Some(c) = stack.pop() {
            if !seen.insert(c) || leaf(egraph, c).is_some() {
                continue;
            }
            let node = choose(c)?;
            let (own, split) = match self.dag_cache.get(node) {
                Some(v) => *v,
                None => {
                    let v = self.dag_node(node);
                    self.dag_cache.insert(node.clone(), v);
                    v
                }
            };
            total += own;
            if let Some((source, axis, group)) = split {
                slices.entry((source, axis)).or_insert((0, group)).0 += 1;
            }
            stack.extend(node.children().iter().map(|&k| egraph.find(k)));
        }
        let splits: f64 = slices
            .values()
            .map(|(n, group)| n.div_ceil(CostModel::SPLIT_OUTPUTS) as f64 * group)
            .sum();
        Some(total + splits)
    }
}

/// A choice of one node (by index) per canonical e-class.
pub type Choice = HashMap<Id, usize>;

/// The choice an [`Extraction`] made, for every class it costed.
pub fn choice_of(ex: &Extraction<'_>) -> Choice {
    ex.best.iter().map(|(&c, &(_, i))| (c, i)).collect()
}

/// The node `choice` picks for class `id`.
pub fn chosen<'a>(egraph: &'a SeamGraph, choice: &Choice, id: Id) -> Option<&'a SeamLang> {
    let id = egraph.find(id);
    egraph[id].nodes.get(*choice.get(&id)?)
}

/// Whether the graph `choice` selects from `root` is acyclic (and complete).
pub fn is_acyclic(egraph: &SeamGraph, choice: &Choice, root: Id) -> bool {
    // 1: on the DFS stack, 2: done.
    let mut state: HashMap<Id, u8> = HashMap::new();
    let mut stack = vec![(egraph.find(root), false)];
    while let Some((c, exit)) = stack.pop() {
        if exit {
            state.insert(c, 2);
            continue;
        }
        match state.get(&c) {
            Some(2) => continue,
            Some(_) => return false,
            None => {}
        }
        state.insert(c, 1);
        stack.push((c, true));
        let Some(node) = chosen(egraph, choice, c) else {
            return false;
        };
        for &k in node.children() {
            let k = egraph.find(k);
            match state.get(&k) {
                Some(1) => return false,
                Some(_) => {}
                None => stack.push((k, false)),
            }
        }
    }
    true
}

/// Improves `choice` by local moves about shared values: each class reachable
/// from `root` (in id order, at most `passes` sweeps) that chose a `slice`, or
/// has a `slice` alternative, takes the first alternative node (a slice, or
/// any when it chose one) that strictly lowers the [`dag_cost`] and keeps the
/// graph acyclic; taking a
/// `slice` of a value also moves every reachable class that has a slice of the
/// same value along the same axis onto it (so q, k and v adopt a merged
/// projection together, which no single switch finds profitable). This also
/// repairs what amortised extraction gets half right. Deterministic. Returns
/// the cost.
pub fn refine(
    egraph: &SeamGraph,
    costs: &mut NodeCosts<'_>,
    root: Id,
    choice: &mut Choice,
    passes: usize,
) -> Option<f64> {
    let mut best = costs.dag(root, |c| chosen(egraph, choice, c))?;
    for _ in 0..passes {
        let mut improved = false;
        let mut reachable: Vec<Id> = reachable_classes(egraph, choice, root);
        reachable.sort_unstable();
        for &c in &reachable {
            let current = choice[&c];
            let from_view = viewed_value(egraph, choice, &egraph[c].nodes[current]).is_some();
            for alt in 0..egraph[c].nodes.len() {
                let node = &egraph[c].nodes[alt];
                if alt == current || !node.all(|k| choice.contains_key(&egraph.find(k))) {
                    continue;
                }
                // Moves onto or off views of a shared value only: the rest of
                // the choice is what greedy extraction does well.
                let key = viewed_value(egraph, choice, node);
                if !from_view && key.is_none() {
                    continue;
                }
                // Taking a view of a shared value: every reachable sibling
                // class takes its view of that value too (one move).
                let mut moves = vec![(c, alt)];
                if let Some(key) = key {
                    for &other in reachable.iter().filter(|&&o| o != c) {
                        let sibling = egraph[other]
                            .nodes
                            .iter()
                            .position(|n| viewed_value(egraph, choice, n) == Some(key));
                        if let Some(j) = sibling.filter(|&j| choice[&other] != j) {
                            moves.push((other, j));
                        }
                    }
                }
                let saved: Vec<(Id, usize)> = moves.iter().map(|&(k, _)| (k, choice[&k])).collect();
                choice.extend(moves.iter().copied());
                let cost = costs.dag(root, |id| chosen(egraph, choice, id));
                if cost.is_some_and(|x| x < best - 1e-9) && is_acyclic(egraph, choice, root) {
                    best = cost?;
                    improved = true;
                    break;
                }
                choice.extend(saved);
            }
        }
        if !improved {
            break;
        }
    }
    Some(best)
}

/// The shared value a view reads: for a `slice`, or a `reshape` of a chosen
/// `slice`, the class reached by following the chosen `slice`, `reshape` and
/// `get` nodes down to the first class another op computes (a merged matmul,
/// a batched `route`'s results). `None` for any other node.
fn viewed_value(egraph: &SeamGraph, choice: &Choice, enode: &SeamLang) -> Option<Id> {
    let is_view = |n: &SeamLang| {
        matches!(
            n,
            SeamLang::Slice(_) | SeamLang::Reshape(_) | SeamLang::Get(_)
        )
    };
    let first = |n: &SeamLang| tensor_children(egraph, n).next();
    let mut class = first(enode)?;
    let starts_at_slice = match enode {
        SeamLang::Slice(_) => true,
        SeamLang::Reshape(_) => matches!(chosen(egraph, choice, class), Some(SeamLang::Slice(_))),
        _ => false,
    };
    if !starts_at_slice {
        return None;
    }
    while let Some(n) = chosen(egraph, choice, class).filter(|n| is_view(n)) {
        class = first(n)?;
    }
    Some(class)
}

/// The classes the graph `choice` selects from `root` reaches.
fn reachable_classes(egraph: &SeamGraph, choice: &Choice, root: Id) -> Vec<Id> {
    let mut seen = HashSet::new();
    let mut stack = vec![egraph.find(root)];
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        if let Some(node) = chosen(egraph, choice, c) {
            stack.extend(node.children().iter().map(|&k| egraph.find(k)));
        }
    }
    seen.into_iter().collect()
}
