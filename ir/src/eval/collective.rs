//! Reductions across the ranks of a tensor-parallel shard set on the reference
//! evaluator: [`evaluate_ranks`] runs every rank's function on its own thread,
//! and each `all_reduce` (or `all_reduce_start`; its `all_reduce_wait` is then
//! the identity) meets the other ranks' at a [`Rendezvous`] that sums their
//! contributions in rank order. A single-device evaluation has no rendezvous
//! and keeps the reductions the identity.
//!
//! No rank can hang: a rank that fails or returns leaves the rendezvous, and a
//! rank waiting for it (or arriving later) gets [`CollectiveError::RankLeft`].

use std::sync::{Condvar, Mutex, MutexGuard};

use thiserror::Error;

use super::{evaluate_with, EvalError, Hooks, Tensor};
use crate::model::Model;
use crate::weights::Weights;
use seam_core::DType;

/// Why a reduction across ranks failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CollectiveError {
    /// A rank returned or failed before joining this reduction.
    #[error("rank {rank} left before joining reduction {round} (the ranks disagree on their all-reduces, or it failed)")]
    RankLeft {
        /// The rank that left.
        rank: usize,
        /// The reduction's index among the function's reductions (from 0).
        round: u64,
    },
    /// Two ranks contribute tensors of different types.
    #[error("rank {rank} contributes {found_dtype}{found:?} but rank 0 contributes {expected_dtype}{expected:?}")]
    Mismatch {
        /// The rank that differs from rank 0.
        rank: usize,
        /// Rank 0's dtype.
        expected_dtype: DType,
        /// Rank 0's shape.
        expected: Vec<usize>,
        /// The rank's dtype.
        found_dtype: DType,
        /// The rank's shape.
        found: Vec<usize>,
    },
    /// Only float tensors are summed.
    #[error("a {0} tensor cannot be summed across ranks (floats only)")]
    NotFloat(DType),
}

/// Where the ranks of one evaluation meet to sum their contributions.
pub(crate) struct Rendezvous {
    state: Mutex<Round>,
    turn: Condvar,
}

/// The state of the rendezvous: the reduction being gathered and the last result.
struct Round {
    /// Reductions completed so far.
    done: u64,
    /// Each rank's contribution to the current reduction.
    parts: Vec<Option<Tensor>>,
    /// The result of the last completed reduction (`None` before the first).
    result: Option<Result<Tensor, CollectiveError>>,
    /// The first rank that left, if any.
    left: Option<usize>,
}

impl Rendezvous {
    /// A rendezvous of `ranks` ranks.
    pub(crate) fn new(ranks: usize) -> Self {
        Rendezvous {
            state: Mutex::new(Round {
                done: 0,
                parts: vec![None; ranks],
                result: None,
                left: None,
            }),
            turn: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rank `rank`'s contribution `part` to the next reduction; returns the
    /// sum over all ranks once every rank has contributed.
    pub(crate) fn all_reduce(&self, rank: usize, part: &Tensor) -> Result<Tensor, CollectiveError> {
        let mut s = self.lock();
        let round = s.done;
        if let Some(left) = s.left {
            return Err(CollectiveError::RankLeft { rank: left, round });
        }
        s.parts[rank] = Some(part.clone());
        if s.parts.iter().all(Option::is_some) {
            let parts: Vec<Tensor> = s.parts.iter_mut().filter_map(Option::take).collect();
            s.result = Some(sum(parts.first().unwrap_or(part), &parts));
            s.done += 1;
            self.turn.notify_all();
        } else {
            while s.done == round && s.left.is_none() {
                s = self.turn.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.done == round {
                let left = s.left.unwrap_or(rank);
                return Err(CollectiveError::RankLeft { rank: left, round });
            }
        }
        s.result
            .clone()
            .unwrap_or(Err(CollectiveError::RankLeft { rank, round }))
    }

    /// Rank `rank` will contribute to no further reduction.
    pub(crate) fn leave(&self, rank: usize) {
        let mut s = self.lock();
        s.left.get_or_insert(rank);
        self.turn.notify_all();
    }
}

/// The element-wise sum of `parts` in order (`first` is rank 0's), computed
/// in `f32` and rounded to their dtype once.
fn sum(first: &Tensor, parts: &[Tensor]) -> Result<Tensor, CollectiveError> {
    if !first.dtype.is_float() {
        return Err(CollectiveError::NotFloat(first.dtype));
    }
    let mut acc = vec![0.0f32; first.len()];
    for (rank, p) in parts.iter().enumerate() {
        if p.dtype != first.dtype || p.shape != first.shape {
            return Err(CollectiveError::Mismatch {
                rank,
                expected_dtype: first.dtype,
                expected: first.shape.clone(),
                found_dtype: p.dtype,
                found: p.shape.clone(),
            });
        }
        for (a, b) in acc.iter_mut().zip(p.floats().iter()) {
            *a += b;
        }
    }
    Tensor::from_f32_vec(first.dtype, first.shape.clone(), acc)
        .map_err(|_| CollectiveError::NotFloat(first.dtype))
}

/// One rank's seat at a [`Rendezvous`].
#[derive(Copy, Clone)]
pub(crate) struct Member<'a> {
    /// The rendezvous.
    pub rendezvous: &'a Rendezvous,
    /// This rank.
    pub rank: usize,
}

/// Evaluates `function` on every rank of a shard set together, rank `r` as
/// `ranks[r]` (its model and weights) on `inputs[r]` on its own thread, every
/// `all_reduce` summing across the ranks; returns each rank's outputs, in rank
/// order. The ranks' inputs differ only where their types do (states split
/// across ranks); the replicated tokens are the same. An error is reported
/// for the rank that caused it ([`EvalError::OnRank`]), preferring a rank's
/// own failure to the [`CollectiveError::RankLeft`] it causes on the others.
pub fn evaluate_ranks(
    ranks: &[(&Model, &Weights)],
    function: &str,
    inputs: &[&[Tensor]],
) -> Result<Vec<Vec<Tensor>>, EvalError> {
    if inputs.len() != ranks.len() {
        return Err(EvalError::RankInputs {
            ranks: ranks.len(),
            inputs: inputs.len(),
        });
    }
    let rendezvous = Rendezvous::new(ranks.len());
    let results: Vec<Result<Vec<Tensor>, EvalError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranks
            .iter()
            .enumerate()
            .zip(inputs)
            .map(|((rank, &(model, weights)), &inputs)| {
                let rendezvous = &rendezvous;
                scope.spawn(move || {
                    let member = Member { rendezvous, rank };
                    let hooks = Hooks {
                        caches: None,
                        comm: Some(member),
                    };
                    let out = evaluate_with(model, function, weights, inputs, hooks);
                    rendezvous.leave(rank);
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(rank, h)| {
                h.join().unwrap_or_else(|_| {
                    Err(EvalError::Internal {
                        op: "all_reduce",
                        value: format!("rank {rank}"),
                        detail: "the rank's thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let is_secondary = |e: &EvalError| {
        matches!(
            e,
            EvalError::Collective {
                source: CollectiveError::RankLeft { .. },
                ..
            }
        )
    };
    let failures: Vec<(usize, &EvalError)> = results
        .iter()
        .enumerate()
        .filter_map(|(rank, r)| r.as_ref().err().map(|e| (rank, e)))
        .collect();
    let cause = failures
        .iter()
        .find(|(_, e)| !is_secondary(e))
        .or(failures.first());
    if let Some(&(rank, e)) = cause {
        return Err(EvalError::OnRank {
            rank,
            source: Box::new(e.clone()),
        });
    }
    results.into_iter().collect()
}
