//! Router rules: matmuls that read the same input merged into one, and the
//! per-layer router heads of a pre-gating model (Read-ME) batched into one
//! matmul and one `route` hoisted before the layer stack.
//!
//! Both rules concatenate param weights; such a `concat` is a compile-time
//! constant (param-only, free in the cost model and folded into a packed weight
//! by [`crate::fold`]), and the slices that take the merged result apart are
//! lowered as one `split` dispatch per value and axis.

use std::collections::BTreeMap;

use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use seam_ir::{Dim, Op, RouteMode, Shape, TensorType};

use crate::optimize::analysis::{tensor_type, SeamGraph, TypeAnalysis};
use crate::optimize::language::{Leaf, SeamLang};
use crate::optimize::rules::matchers::{add_attrs, attrs, param};

/// The router rules.
pub fn rules() -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    let x = "?x".parse::<Var>().map_err(|e| e.to_string())?;
    Ok(vec![
        Rewrite::new("merge-matmuls", MergeMatMuls { x }, MergeMatMuls { x })?,
        Rewrite::new("hoist-routes", HoistRoutes { x }, HoistRoutes { x })?,
    ])
}

/// One matmul `matmul(x, @w)` of a group: its class, the weight class, the
/// param index and the weight's static output width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    param: u32,
    class: Id,
    weight: Id,
    n: u64,
}

/// Param matmuls by input class: `x ↦ uses`, each with a rank-2 param weight of
/// static output width, sorted by param and deduplicated; over every class, or
/// only the parents of `input`.
fn param_matmuls(egraph: &SeamGraph, input: Option<Id>) -> BTreeMap<Id, Vec<Use>> {
    let mut by_input: BTreeMap<Id, Vec<Use>> = BTreeMap::new();
    let classes: Vec<Id> = match input {
        Some(x) => egraph[x].parents().map(|p| egraph.find(p)).collect(),
        None => egraph.classes().map(|c| c.id).collect(),
    };
    for class in classes.into_iter().map(|c| &egraph[c]) {
        for node in &class.nodes {
            let SeamLang::MatMul(c) = node else { continue };
            let (2, Some(p)) = (c.len(), param(egraph, c[1])) else {
                continue;
            };
            let Some(w) = tensor_type(egraph, c[1]) else {
                continue;
            };
            if let [_, Dim::Static(n)] = w.shape.dims() {
                by_input.entry(egraph.find(c[0])).or_default().push(Use {
                    param: p,
                    class: egraph.find(class.id),
                    weight: egraph.find(c[1]),
                    n: *n,
                });
            }
        }
    }
    for uses in by_input.values_mut() {
        uses.sort_unstable();
        uses.dedup();
    }
    by_input
}

/// The uses of one input that can share a merged matmul: same contraction dim
/// and dtype as the first, one per param, distinct classes; the input of rank ≥ 2.
fn mergeable(egraph: &SeamGraph, x: Id, uses: &[Use]) -> Vec<Use> {
    let Some(tx) = tensor_type(egraph, x) else {
        return Vec::new();
    };
    if tx.rank() < 2 {
        return Vec::new();
    }
    let Some(first) = uses.first().and_then(|u| tensor_type(egraph, u.weight)) else {
        return Vec::new();
    };
    let mut out: Vec<Use> = Vec::new();
    for u in uses {
        let Some(t) = tensor_type(egraph, u.weight) else {
            continue;
        };
        let same = t.dtype == first.dtype && t.shape.dims()[0] == first.shape.dims()[0];
        let fresh = out.iter().all(|o| o.param != u.param && o.class != u.class);
        if same && fresh {
            out.push(*u);
        }
    }
    out
}

/// `merged = matmul(x, concat(@w_0, …, @w_{n-1}, axis=1))`, the weights in `uses` order.
fn merged_matmul(egraph: &mut SeamGraph, x: Id, uses: &[Use]) -> Id {
    let cat_attrs = add_attrs(egraph, Op::Concat { axis: 1 });
    let children: Vec<Id> = std::iter::once(cat_attrs)
        .chain(uses.iter().map(|u| u.weight))
        .collect();
    let cat = egraph.add(SeamLang::Concat(children.into()));
    egraph.add(SeamLang::MatMul(vec![x, cat].into()))
}

/// `slice(x, axis, start, end)` when it type-checks.
fn add_slice(egraph: &mut SeamGraph, x: Id, axis: usize, start: u64, end: u64) -> Option<Id> {
    let attrs = add_attrs(egraph, Op::Slice { axis, start, end });
    let slice = egraph.add(SeamLang::Slice(vec![attrs, x].into()));
    tensor_type(egraph, slice).is_some().then_some(slice)
}

/// `reshape(x) : ty`.
fn add_reshape(egraph: &mut SeamGraph, x: Id, ty: TensorType) -> Option<Id> {
    let t = egraph.add(SeamLang::Leaf(Leaf::Type(ty)));
    let r = egraph.add(SeamLang::Reshape(vec![t, x].into()));
    tensor_type(egraph, r).is_some().then_some(r)
}

/// Unions `target` with `replacement` when both have the same tensor type.
fn union_same_type(egraph: &mut SeamGraph, target: Id, replacement: Id) -> bool {
    let same = tensor_type(egraph, replacement).is_some()
        && tensor_type(egraph, replacement) == tensor_type(egraph, target);
    same && egraph.union(target, replacement)
}

/// Searches one match per input class that some rule may rewrite; the applier
/// recomputes the group from the e-graph (the match binds only `?x`).
fn matches_by_input(
    x: Var,
    inputs: impl Iterator<Item = Id>,
) -> Vec<SearchMatches<'static, SeamLang>> {
    inputs
        .map(|id| {
            let mut subst = Subst::with_capacity(1);
            subst.insert(x, id);
            SearchMatches {
                eclass: id,
                substs: vec![subst],
                ast: None,
            }
        })
        .collect()
}

/// The `Searcher` of a rule that matches once per input class: `$rule` has a
/// field `x` (the pattern variable bound to the input) and an associated
/// `groups(egraph, Option<Id>)` listing `(input, …)` for the inputs it can
/// rewrite (all of them, or only the given one).
macro_rules! searcher_by_input {
    ($rule:ty) => {
        impl Searcher<SeamLang, TypeAnalysis> for $rule {
            fn search_eclass_with_limit(
                &self,
                egraph: &SeamGraph,
                eclass: Id,
                limit: usize,
            ) -> Option<SearchMatches<'_, SeamLang>> {
                let found = !Self::groups(egraph, Some(eclass)).is_empty();
                (found && limit > 0)
                    .then(|| matches_by_input(self.x, std::iter::once(eclass)).pop())
                    .flatten()
            }

            fn search_with_limit(
                &self,
                egraph: &SeamGraph,
                limit: usize,
            ) -> Vec<SearchMatches<'_, SeamLang>> {
                let groups = Self::groups(egraph, None);
                let mut out = matches_by_input(self.x, groups.into_iter().map(|(x, _)| x));
                out.truncate(limit);
                out
            }

            fn vars(&self) -> Vec<Var> {
                vec![self.x]
            }
        }
    };
}

/// `merge-matmuls`: the matmuls `matmul(x, @w_i)` reading one input `x` become
/// `slice_i(matmul(x, concat(@w_0, …, @w_{n-1}, axis=1)))`: one dispatch reads `x`
/// once (q/k/v projections, AdaMoE's router `x·Wr` and scale adapter `x·Ws`).
///
/// Legal when every `w_i` is a distinct rank-2 param with the same contraction
/// dim and dtype and a static output width (so the slices are static), and `x`
/// has rank ≥ 2; each slice is unioned only when it has exactly the type of the
/// matmul it replaces. Only the whole group is merged (no subsets), so the
/// e-graph grows by one matmul and `n` slices per input.
#[derive(Clone)]
struct MergeMatMuls {
    x: Var,
}

impl MergeMatMuls {
    /// The groups of every input, or of `input` only.
    fn groups(egraph: &SeamGraph, input: Option<Id>) -> Vec<(Id, Vec<Use>)> {
        param_matmuls(egraph, input)
            .into_iter()
            .filter(|(x, _)| input.is_none_or(|i| i == *x))
            .map(|(x, uses)| {
                let group = mergeable(egraph, x, &uses);
                (x, group)
            })
            .filter(|(_, g)| g.len() >= 2)
            .collect()
    }
}

searcher_by_input!(MergeMatMuls);

impl Applier<SeamLang, TypeAnalysis> for MergeMatMuls {
    fn apply_one(
        &self,
        egraph: &mut SeamGraph,
        _eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<SeamLang>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let x = egraph.find(subst[self.x]);
        let Some((_, group)) = Self::groups(egraph, Some(x)).pop() else {
            return Vec::new();
        };
        let Some(axis) = tensor_type(egraph, x).map(|t| t.rank() - 1) else {
            return Vec::new();
        };
        let merged = merged_matmul(egraph, x, &group);
        let mut changed = Vec::new();
        let mut start = 0;
        for u in &group {
            if let Some(slice) = add_slice(egraph, merged, axis, start, start + u.n) {
                if union_same_type(egraph, u.class, slice) {
                    changed.push(u.class);
                }
            }
            start += u.n;
        }
        changed
    }
}

/// One router head `route(matmul(x, @w), k, mode, renorm)`: the route's tuple
/// class and its op.
#[derive(Clone, Debug)]
struct Head {
    tuple: Id,
    route: Op,
    matmul: Use,
}

/// `hoist-routes`: the per-layer router heads of a pre-gating model,
/// `ids_i, weights_i = route(matmul(x, @w_i))` for `i < L`, all reading one
/// router output `x[.., E_in]`, become one matmul against the concatenated
/// heads and one `route` over all layers:
///
/// ```text
/// logits = reshape(matmul(x, concat(@w_0, …, @w_{L-1}, axis=1))) : [.., L, E]
/// ids, weights = route(logits)                                    : [.., L, k]
/// ids_i = reshape(slice(ids, axis=rank-1, i, i+1))                 : [.., k]
/// ```
///
/// Legality, every condition required:
/// 1. the heads read the same e-class `x` and have the same `route` attributes
///    and a mode reading only logits (not `take`), and their weights are distinct
///    rank-2 params `[E_in, E]` of one shape;
/// 2. *dataflow*: `x` does not depend on the layer stack — no e-class reachable
///    from `x` (through any of its nodes, conservatively) holds a `moe`. A
///    router reading a layer's output (Mixtral's in-layer router, or any value
///    downstream of an MoE) is not hoisted: it can only run once that layer has;
/// 3. every replacement has exactly the type of the value it replaces.
///
/// `route` decides per row over the last axis, so deciding `[.., L, E]` at once
/// is `L` independent decisions, exactly the per-layer ones.
#[derive(Clone)]
struct HoistRoutes {
    x: Var,
}

/// Whether some class reachable from `x` holds a `moe` node.
fn depends_on_moe(egraph: &SeamGraph, x: Id) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![egraph.find(x)];
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        for node in &egraph[c].nodes {
            if matches!(node, SeamLang::Moe(_)) {
                return true;
            }
            stack.extend(
                egg::Language::children(node)
                    .iter()
                    .map(|&k| egraph.find(k)),
            );
        }
    }
    false
}

impl HoistRoutes {
    /// Router heads by input, legal groups of at least two; of every input, or
    /// of `input` only.
    fn groups(egraph: &SeamGraph, input: Option<Id>) -> Vec<(Id, Vec<Head>)> {
        let matmuls = param_matmuls(egraph, input);
        let routes: Vec<Id> = match input {
            // The routes reading a matmul of `input`.
            Some(_) => matmuls
                .values()
                .flatten()
                .flat_map(|u| egraph[u.class].parents().map(|p| egraph.find(p)))
                .collect(),
            None => egraph.classes().map(|c| c.id).collect(),
        };
        let mut by_input: BTreeMap<Id, Vec<Head>> = BTreeMap::new();
        for class in routes.into_iter().map(|c| &egraph[c]) {
            for node in &class.nodes {
                let SeamLang::Route(c) = node else { continue };
                let [a, logits] = c.as_ref() else { continue };
                let route = match attrs(egraph, *a) {
                    Some(op @ Op::Route { mode, .. }) if *mode != RouteMode::Take => op.clone(),
                    _ => continue,
                };
                let logits = egraph.find(*logits);
                for (&x, uses) in &matmuls {
                    for u in uses.iter().filter(|u| u.class == logits) {
                        by_input.entry(x).or_default().push(Head {
                            tuple: egraph.find(class.id),
                            route: route.clone(),
                            matmul: *u,
                        });
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (x, mut heads) in by_input {
            if input.is_some_and(|i| i != x) {
                continue;
            }
            heads.sort_by_key(|h| (h.matmul.param, h.tuple));
            heads.dedup_by_key(|h| h.tuple);
            let Some(first) = heads.first().cloned() else {
                continue;
            };
            let wty = tensor_type(egraph, first.matmul.weight).cloned();
            let mut group: Vec<Head> = Vec::new();
            for h in heads {
                let same =
                    h.route == first.route && tensor_type(egraph, h.matmul.weight).cloned() == wty;
                if same && group.iter().all(|g| g.matmul.param != h.matmul.param) {
                    group.push(h);
                }
            }
            if group.len() >= 2 && !depends_on_moe(egraph, x) {
                out.push((x, group));
            }
        }
        out
    }
}

searcher_by_input!(HoistRoutes);

impl Applier<SeamLang, TypeAnalysis> for HoistRoutes {
    fn apply_one(
        &self,
        egraph: &mut SeamGraph,
        _eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<SeamLang>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let x = egraph.find(subst[self.x]);
        let Some((_, heads)) = Self::groups(egraph, Some(x)).pop() else {
            return Vec::new();
        };
        self.batch(egraph, x, &heads).unwrap_or_default()
    }
}

impl HoistRoutes {
    /// Adds the batched form and unions each head's results with their slices.
    fn batch(&self, egraph: &mut SeamGraph, x: Id, heads: &[Head]) -> Option<Vec<Id>> {
        let uses: Vec<Use> = heads.iter().map(|h| h.matmul).collect();
        let merged = merged_matmul(egraph, x, &uses);
        let flat = tensor_type(egraph, merged)?.clone();
        let layers = heads.len() as u64;
        let e = heads[0].matmul.n;
        let mut dims = flat.shape.dims().to_vec();
        let lead = dims.len() - 1;
        dims[lead] = Dim::Static(layers);
        dims.push(Dim::Static(e));
        let logits = add_reshape(
            egraph,
            merged,
            TensorType {
                dtype: flat.dtype,
                shape: Shape(dims),
            },
        )?;
        let route_attrs = add_attrs(egraph, heads[0].route.clone());
        let route = egraph.add(SeamLang::Route(vec![route_attrs, logits].into()));
        let mut changed = Vec::new();
        for result in 0..2u32 {
            let index = egraph.add(SeamLang::Leaf(Leaf::Index(result)));
            let all = egraph.add(SeamLang::Get([index, route]));
            for (i, h) in heads.iter().enumerate() {
                let target = egraph.add(SeamLang::Get([index, h.tuple]));
                let target_ty = tensor_type(egraph, target)?.clone();
                let slice = add_slice(egraph, all, lead, i as u64, i as u64 + 1)?;
                let one = add_reshape(egraph, slice, target_ty)?;
                if union_same_type(egraph, target, one) {
                    changed.push(target);
                }
            }
        }
        Some(changed)
    }
}
