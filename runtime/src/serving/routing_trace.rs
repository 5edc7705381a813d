//! The routing decisions of an engine's steps, per sequence: what
//! `seam generate|serve --routing-trace` writes and the expert-cache
//! simulator replays.

use super::request::RequestId;
use crate::session::LayerRouting;

/// One routing decision: in step `step`, a token of request `request` was
/// sent to `expert` of MoE layer `layer`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RoutingDecision {
    /// The engine step (counted from 0 since the engine started).
    pub step: u64,
    /// The request the token belongs to.
    pub request: RequestId,
    /// The MoE layer, counted from 0.
    pub layer: usize,
    /// The expert chosen.
    pub expert: i32,
}

/// The decisions of step `step` from its layers' routing: the step's tokens
/// belong, in order, to `fed` (each request with its token count); each
/// layer's ids hold the same number of choices per token.
pub(crate) fn decisions(
    step: u64,
    fed: &[(RequestId, usize)],
    layers: Vec<LayerRouting>,
) -> Vec<RoutingDecision> {
    let tokens: usize = fed.iter().map(|&(_, n)| n).sum();
    let owners: Vec<RequestId> = fed
        .iter()
        .flat_map(|&(id, n)| std::iter::repeat_n(id, n))
        .collect();
    let mut out = Vec::new();
    for l in layers {
        let choices = l.ids.len().checked_div(tokens).unwrap_or(0).max(1);
        for (t, ids) in l.ids.chunks(choices).enumerate() {
            let Some(&request) = owners.get(t) else {
                break;
            };
            out.extend(ids.iter().map(|&expert| RoutingDecision {
                step,
                request,
                layer: l.layer,
                expert,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_to_their_requests_in_feeding_order() {
        let layers = vec![
            LayerRouting {
                layer: 0,
                ids: vec![1, 2, 3, 4, 5, 6],
            },
            LayerRouting {
                layer: 1,
                ids: vec![7, 0, 7],
            },
        ];
        let d = decisions(4, &[(9, 1), (3, 2)], layers);
        let got: Vec<(RequestId, usize, i32)> =
            d.iter().map(|d| (d.request, d.layer, d.expert)).collect();
        assert_eq!(
            got,
            vec![
                (9, 0, 1),
                (9, 0, 2),
                (3, 0, 3),
                (3, 0, 4),
                (3, 0, 5),
                (3, 0, 6),
                (9, 1, 7),
                (3, 1, 0),
                (3, 1, 7)
            ]
        );
        assert!(d.iter().all(|d| d.step == 4));
    }
}
