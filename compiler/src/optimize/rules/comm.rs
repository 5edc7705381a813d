//! Communication rules: `all_reduce` split into `all_reduce_start` and
//! `all_reduce_wait`, so that compute not reading the reduced buffer can run
//! while the reduction is in flight. Where the two halves go is decided after
//! extraction by [`crate::optimize::schedule::schedule_comm`].
//!
//! The split is exact everywhere: `wait(start(x))` is `all_reduce(x)`, and it
//! never changes the model's dataflow. In particular it never turns a standard
//! residual (`x_k = x_{k-1} + AR(h_k(x_{k-1}))`, where the next module reads the
//! reduced sum, so nothing can overlap) into a ladder one
//! (`x_k = x_{k-1} + AR(h_k(x_{k-2}))`, arXiv 2501.06589; `docs/decoupled-models.md`): that changes what the
//! model computes. A ladder model is ladder because it is written that way; the
//! scheduler then finds the overlap its dataflow allows.

use egg::{Applier, Id, PatternAst, Rewrite, Subst, Symbol, Var};
use seam_ir::Op;

use crate::optimize::analysis::{tensor_type, SeamGraph, TypeAnalysis};
use crate::optimize::language::SeamLang;
use crate::optimize::rules::matchers::{add_attrs, attrs};

/// The comm rules.
pub fn rules() -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    let var = |s: &str| s.parse::<Var>().map_err(|e| e.to_string());
    let (a, x) = (var("?a")?, var("?x")?);
    let searcher: egg::Pattern<SeamLang> = "(all_reduce ?a ?x)"
        .parse()
        .map_err(|e: egg::RecExprParseError<_>| e.to_string())?;
    Ok(vec![Rewrite::new(
        "split-all-reduce",
        searcher,
        SplitAllReduce { a, x },
    )?])
}

/// `split-all-reduce`: `all_reduce(x, reduce=r)` → `all_reduce_wait(all_reduce_start(x, reduce=r))`.
/// Always legal (the same reduction, started and awaited); the types are
/// checked to be equal before the union.
struct SplitAllReduce {
    a: Var,
    x: Var,
}

impl Applier<SeamLang, TypeAnalysis> for SplitAllReduce {
    fn apply_one(
        &self,
        egraph: &mut SeamGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<SeamLang>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let Some(Op::AllReduce { reduce }) = attrs(egraph, subst[self.a]).cloned() else {
            return Vec::new();
        };
        let start_attrs = add_attrs(egraph, Op::AllReduceStart { reduce });
        let start = egraph.add(SeamLang::AllReduceStart(
            vec![start_attrs, subst[self.x]].into(),
        ));
        let wait = egraph.add(SeamLang::AllReduceWait(vec![start].into()));
        let same = tensor_type(egraph, wait).is_some()
            && tensor_type(egraph, wait) == tensor_type(egraph, eclass);
        if same && egraph.union(eclass, wait) {
            vec![eclass]
        } else {
            Vec::new()
        }
    }

    fn vars(&self) -> Vec<Var> {
        vec![self.a, self.x]
    }
}
