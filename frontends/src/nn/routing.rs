//! Choosing each token's experts from router logits.

use seam_ir::{RouteMode, ValueId};

use crate::builder::{BuildError, FunctionBuilder};

/// Each token's experts and their weights: `ids`, `weights` `[T, k]`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Decision {
    /// The chosen experts.
    pub ids: ValueId,
    /// Their weights.
    pub weights: ValueId,
}

/// The top-`k` choice a `route` op makes from logits.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct TopK {
    /// Experts per token.
    k: usize,
    /// Softmax before or after the top-k.
    mode: RouteMode,
    /// Divide the chosen weights by their sum.
    renorm: bool,
}

impl TopK {
    /// One expert per token, with weight 1: the top-1 logit, then a softmax
    /// over it alone (Read-ME's router).
    pub(crate) fn top1() -> Self {
        TopK {
            k: 1,
            mode: RouteMode::TopkSoftmax,
            renorm: false,
        }
    }

    /// The `k` most probable experts after a softmax over all of them, their
    /// probabilities divided by their sum when `renorm`.
    pub(crate) fn softmax_topk(k: usize, renorm: bool) -> Self {
        TopK {
            k,
            mode: RouteMode::SoftmaxTopk,
            renorm,
        }
    }

    /// Emits `route(logits)`, its results named `names` (ids, weights).
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        names: [&str; 2],
        logits: ValueId,
    ) -> Result<Decision, BuildError> {
        let (ids, weights) = f.route(names, logits, None, self.k, self.mode, self.renorm)?;
        Ok(Decision { ids, weights })
    }
}
