//! Tensor-parallel sharding at compile time, as Megatron-LM splits a
//! transformer: every rank runs the same function on its part of the weights,
//! and `all_reduce` sums the ranks' partial outputs.
//!
//! - Attention: the heads are split across the ranks — the q, k and v
//!   projections (and their biases) by columns (column-parallel), the output
//!   projection by rows (row-parallel), followed by an `all_reduce {reduce=sum}`.
//!   Key/value heads fewer than the ranks are replicated: each rank holds the
//!   one its query heads read.
//! - Feed-forward: the projections feeding the down projection element-wise
//!   (gate and up of a gated FFN) column-parallel, the down projection
//!   row-parallel, then an `all_reduce`.
//! - MoE layers: expert-parallel (each rank holds `E/N` experts of every
//!   stack, tokens replicated, routes to other ranks' experts zeroed; see
//!   `experts`), a shared expert split as a feed-forward block, then an
//!   `all_reduce` of the partial outputs.
//! - Everything else (embeddings, norms, routers, the LM head) is
//!   replicated: whole on every rank.
//!
//! The blocks are recognised from the IR (`recognize`); the layouts then
//! follow every value through the function (`propagate`), which inserts an
//! `all_reduce` where a partial sum is read and keeps the model's own
//! `all_reduce`s (the identity on one device, a sum across ranks here). Any op
//! that would compute a different function on the ranks is refused with a
//! [`ShardError`]; the weights are sliced from the single-device ones
//! (`slice`), so a shard set and its model compute the same function, which
//! [`max_relative_difference`] checks on the reference evaluator.

mod compare;
mod error;
mod experts;
mod layout;
mod propagate;
mod recognize;
mod slice;

use seam_ir::{verify, Model, ParamDecl, Weights};

pub use compare::{max_relative_difference, random_inputs};
pub use error::ShardError;

use layout::{local_type, Layout};

/// The most ranks a shard set may have.
pub const MAX_RANKS: usize = 1024;

/// A model sharded over `N` ranks: one rank model, which every rank runs, and
/// each rank's weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardSet {
    /// The function every rank runs, its split parameters at rank size.
    pub model: Model,
    /// Rank `r`'s weights at index `r`.
    pub weights: Vec<Weights>,
}

impl ShardSet {
    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        self.weights.len()
    }

    /// Each rank's model and weights, in rank order (for
    /// [`seam_ir::evaluate_ranks`]).
    pub fn rank_pairs(&self) -> Vec<(&Model, &Weights)> {
        self.weights.iter().map(|w| (&self.model, w)).collect()
    }
}

/// Shards `model` with `weights` over `ranks` ranks (see the module docs).
/// The rank model is verified; with one rank it computes what `model` does
/// with an `all_reduce` inserted after each row-parallel product.
pub fn shard_tensor_parallel(
    model: &Model,
    weights: &Weights,
    ranks: usize,
) -> Result<ShardSet, ShardError> {
    if ranks == 0 {
        return Err(ShardError::NoRanks);
    }
    if ranks > MAX_RANKS {
        return Err(ShardError::TooManyRanks {
            ranks,
            max: MAX_RANKS,
        });
    }
    verify(model)?;
    weights.check(model)?;
    let n = ranks as u64;
    let plan = recognize::plan(model, n)?;
    let mut tables = experts::ExpertTables::new(model.params.len());
    let functions = model
        .functions
        .iter()
        .map(|f| propagate::shard_function(model, f, &plan, n, &mut tables))
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = Vec::with_capacity(model.params.len());
    for (i, p) in model.params.iter().enumerate() {
        let layout = plan
            .get(&seam_ir::ParamId(i as u32))
            .map_or(Layout::Whole, |&s| Layout::Split(s));
        let ty = local_type(&p.ty, layout, n).ok_or_else(|| ShardError::Unrecognised {
            value: p.name.clone(),
            detail: format!("the param {} does not split into {layout:?}", p.ty),
        })?;
        params.push(ParamDecl { ty, ..p.clone() });
    }
    params.extend(tables.decls().cloned());
    let sharded = Model {
        params,
        functions,
        ..model.clone()
    };
    verify(&sharded)?;
    let weights = (0..n)
        .map(|r| slice::rank_weights(model, &sharded, weights, &plan, &tables, r, n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ShardSet {
        model: sharded,
        weights,
    })
}
