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

use egg::{rewrite, Rewrite};

use crate::optimize::analysis::TypeAnalysis;
use crate::optimize::language::SeamLang;

/// The comm rules.
pub fn rules() -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    Ok(vec![
        // `split-all-reduce`: the same reduction (the shared `?r` leaf), started
        // and awaited. Always legal; the types of both sides are those of `?x`.
        rewrite!("split-all-reduce"; "(all_reduce ?r ?x)" => "(all_reduce_wait (all_reduce_start ?r ?x))"),
    ])
}
