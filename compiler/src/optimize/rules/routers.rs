//! Merging matmuls that read the same input (router logits and score adapters,
//! as in AdaMoE's `x·Wr`, `x·Ws`): `matmul(x, W1)`, `matmul(x, W2)` become
//! `slice(matmul(x, concat(W1, W2, axis=1)))`, one dispatch reading `x` once.
//!
//! Legal when `W1` and `W2` are distinct params of rank 2 with the same `K` and
//! dtype and static `N` (so the slices are static), and `x` has rank ≥ 2; the
//! rule checks that each slice has exactly the type of the matmul it replaces.
//!
//! `concat` of params is a compile-time constant, but the lowering does not fold
//! it yet: it costs a concat dispatch per run, so the cost model (which also
//! counts the merged matmul once per use under tree-cost extraction) does not
//! pick the merged form today. The rule fires in saturation and the extraction
//! decides; once the lowering folds constant concats, the cost model should give
//! `concat` of params no dispatch.

use std::collections::BTreeMap;

use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use seam_ir::{Dim, Op};

use crate::optimize::analysis::{tensor_type, SeamGraph, TypeAnalysis};
use crate::optimize::language::SeamLang;
use crate::optimize::rules::matchers::{add_attrs, param};

/// The router rules.
pub fn rules() -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    let vars = |s: &str| s.parse::<Var>().map_err(|e| e.to_string());
    let rule = MergeMatMuls {
        a: vars("?a")?,
        b: vars("?b")?,
        x: vars("?x")?,
        w1: vars("?w1")?,
        w2: vars("?w2")?,
    };
    Ok(vec![Rewrite::new("merge-matmuls", rule.clone(), rule)?])
}

/// Searcher and applier of `merge-matmuls` (see the module docs). It searches
/// like the multi-pattern `?a = (matmul ?x ?w1), ?b = (matmul ?x ?w2)` restricted
/// to param weights, grouping matmuls by input so the search stays linear in
/// the e-graph instead of pairing every matmul reading a popular input.
#[derive(Clone)]
struct MergeMatMuls {
    a: Var,
    b: Var,
    x: Var,
    w1: Var,
    w2: Var,
}

/// Output widths `(N1, N2)` and the result's last axis when merging is legal.
fn plan(egraph: &SeamGraph, x: Id, w1: Id, w2: Id) -> Option<(u64, u64, usize)> {
    // One orientation per pair: the lower param first.
    if param(egraph, w1)? >= param(egraph, w2)? {
        return None;
    }
    let (t1, t2, tx) = (
        tensor_type(egraph, w1)?,
        tensor_type(egraph, w2)?,
        tensor_type(egraph, x)?,
    );
    let (d1, d2) = (t1.shape.dims(), t2.shape.dims());
    if d1.len() != 2 || d2.len() != 2 || d1[0] != d2[0] || t1.dtype != t2.dtype || tx.rank() < 2 {
        return None;
    }
    match (&d1[1], &d2[1]) {
        (Dim::Static(n1), Dim::Static(n2)) => Some((*n1, *n2, tx.rank() - 1)),
        _ => None,
    }
}

impl MergeMatMuls {
    /// Every pair of param matmuls reading the same input, lower param first.
    fn pairs(&self, egraph: &SeamGraph) -> Vec<SearchMatches<'static, SeamLang>> {
        let mut by_input: BTreeMap<Id, Vec<(u32, Id, Id)>> = BTreeMap::new();
        for class in egraph.classes() {
            for node in &class.nodes {
                if let SeamLang::MatMul(c) = node {
                    if let (2, Some(p)) = (c.len(), param(egraph, c[1])) {
                        by_input
                            .entry(egraph.find(c[0]))
                            .or_default()
                            .push((p, class.id, c[1]));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (x, mut uses) in by_input {
            uses.sort_unstable();
            uses.dedup();
            for (i, &(p1, a, w1)) in uses.iter().enumerate() {
                for &(p2, b, w2) in &uses[i + 1..] {
                    if p1 == p2 || a == b {
                        continue;
                    }
                    let mut subst = Subst::with_capacity(5);
                    for (var, id) in [
                        (self.a, a),
                        (self.b, b),
                        (self.x, x),
                        (self.w1, w1),
                        (self.w2, w2),
                    ] {
                        subst.insert(var, id);
                    }
                    out.push(SearchMatches {
                        eclass: a,
                        substs: vec![subst],
                        ast: None,
                    });
                }
            }
        }
        out
    }
}

impl Searcher<SeamLang, TypeAnalysis> for MergeMatMuls {
    fn search_eclass_with_limit(
        &self,
        egraph: &SeamGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, SeamLang>> {
        let substs: Vec<Subst> = self
            .pairs(egraph)
            .into_iter()
            .filter(|m| m.eclass == eclass)
            .flat_map(|m| m.substs)
            .take(limit)
            .collect();
        (!substs.is_empty()).then_some(SearchMatches {
            eclass,
            substs,
            ast: None,
        })
    }

    fn search_with_limit(
        &self,
        egraph: &SeamGraph,
        limit: usize,
    ) -> Vec<SearchMatches<'_, SeamLang>> {
        let mut out = self.pairs(egraph);
        out.truncate(limit);
        out
    }

    fn vars(&self) -> Vec<Var> {
        vec![self.a, self.b, self.x, self.w1, self.w2]
    }
}

impl Applier<SeamLang, TypeAnalysis> for MergeMatMuls {
    fn apply_one(
        &self,
        egraph: &mut SeamGraph,
        _eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<SeamLang>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let (a, b, x, w1, w2) = (
            subst[self.a],
            subst[self.b],
            subst[self.x],
            subst[self.w1],
            subst[self.w2],
        );
        let Some((n1, n2, axis)) = plan(egraph, x, w1, w2) else {
            return Vec::new();
        };
        let cat_attrs = add_attrs(egraph, Op::Concat { axis: 1 });
        let cat = egraph.add(SeamLang::Concat(vec![cat_attrs, w1, w2].into()));
        let merged = egraph.add(SeamLang::MatMul(vec![x, cat].into()));
        let mut changed = Vec::new();
        for (target, start, end) in [(a, 0, n1), (b, n1, n1 + n2)] {
            let attrs = add_attrs(egraph, Op::Slice { axis, start, end });
            let slice = egraph.add(SeamLang::Slice(vec![attrs, merged].into()));
            if tensor_type(egraph, slice).is_some()
                && tensor_type(egraph, slice) == tensor_type(egraph, target)
                && egraph.union(target, slice)
            {
                changed.push(target);
            }
        }
        changed
    }
}
