//! How a router's outputs become expert ids and weights.

/// The `mode` of a `route`: the IR op, the evaluator and the route kernel share it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteMode {
    /// `p = softmax(logits)`; ids = top-k of `p`; weights = `p[ids]`, divided by their
    /// sum when the route renormalises (Mixtral does, Qwen2-MoE by `norm_topk_prob`).
    SoftmaxTopk,
    /// ids = top-k of `logits`; weights = softmax over the k selected logits.
    TopkSoftmax,
    /// Selection decoupled from weighting (AdaMoE): ids = top-k of the logits,
    /// weights = a second input (`scores`) taken at those ids, never renormalised.
    Take,
}

impl RouteMode {
    /// Every mode.
    pub const ALL: [RouteMode; 3] = [
        RouteMode::SoftmaxTopk,
        RouteMode::TopkSoftmax,
        RouteMode::Take,
    ];

    /// The name in the text format (`mode=softmax_topk`).
    pub fn name(self) -> &'static str {
        match self {
            RouteMode::SoftmaxTopk => "softmax_topk",
            RouteMode::TopkSoftmax => "topk_softmax",
            RouteMode::Take => "take",
        }
    }
}
