//! The routing entry point a pre-gating model's serving bundle carries beside
//! `step`, and running it: each token's experts, known before the step that
//! feeds the token runs.

use seam_core::{DType, SizeExpr};

use super::layout::STEP_INPUTS;
use crate::entry::Entry;
use crate::error::Error;
use crate::model::Model;
use crate::session::Session;
use crate::tensor::HostTensor;

/// The routing entry point: `route(ids: i32[tokens], slots: i32[tokens],
/// positions: i32[tokens]) -> (i32[tokens, k], …)`, the pre-gating router
/// alone over tokens laid out as for [`super::STEP`], one output per router
/// head (per MoE layer, or one head shared by every layer), each token's
/// expert ids in it. It writes only the router's own KV pools, with the
/// values `step` writes for the same token at the same slot and position.
/// A model whose routers sit inside its layers has none.
pub const ROUTE: &str = "route";

/// One token's routing: the `(head, expert)` pairs it uses, one per head
/// and choice.
pub type TokenRoute = Box<[(u32, u32)]>;

/// One token to route: its pool slot, position and id.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteToken {
    /// Its sequence's pool slot.
    pub slot: u32,
    /// Its position in the sequence.
    pub position: usize,
    /// The token id.
    pub id: i32,
}

/// A bundle's [`ROUTE`] entry point and the most tokens one run takes.
#[derive(Clone, Debug)]
pub(crate) struct Router {
    entry: Entry,
    max_tokens: usize,
}

impl Router {
    /// `model`'s [`ROUTE`] entry point, `None` when it has none; refuses
    /// (with [`Error::Input`]) one of another signature than documented.
    pub(crate) fn read(model: &Model, max_tokens: usize) -> Result<Option<Router>, Error> {
        let Ok(entry) = model.entry(ROUTE) else {
            return Ok(None);
        };
        let bad = |what: &str| Error::Input(format!("`{ROUTE}` {what}"));
        let names: Vec<&str> = entry.inputs().iter().map(|io| io.name.as_str()).collect();
        if names != STEP_INPUTS[..3] {
            return Err(bad(&format!(
                "must take inputs {:?}, found {names:?}",
                &STEP_INPUTS[..3]
            )));
        }
        let Some(SizeExpr::Dim(tokens)) = entry.inputs()[0].shape.first() else {
            return Err(bad("must take `ids` over a symbolic dim"));
        };
        let per_token = |shape: &[SizeExpr]| matches!(shape, [SizeExpr::Dim(d), SizeExpr::Const(k)] if d == tokens && *k > 0);
        if entry.outputs().is_empty()
            || !entry
                .outputs()
                .iter()
                .all(|io| io.dtype == DType::I32 && per_token(&io.shape))
        {
            return Err(bad(
                "must return i32 expert ids [tokens, k] per router head",
            ));
        }
        Ok(Some(Router { entry, max_tokens }))
    }

    /// Runs the router over `tokens` (in runs of at most the bundle's token
    /// bound) and returns each token's routing.
    pub(crate) fn route(
        &self,
        session: &mut Session,
        tokens: &[RouteToken],
    ) -> Result<Vec<TokenRoute>, Error> {
        let mut routes: Vec<Vec<(u32, u32)>> = Vec::with_capacity(tokens.len());
        for run in tokens.chunks(self.max_tokens.max(1)) {
            let column = |f: fn(&RouteToken) -> i32| -> Vec<i32> { run.iter().map(f).collect() };
            let inputs = [
                column(|t| t.id),
                column(|t| t.slot as i32),
                column(|t| t.position as i32),
            ]
            .iter()
            .map(|v| HostTensor::from_i32(vec![v.len()], v))
            .collect::<Result<Vec<_>, Error>>()?;
            let outputs = session.run(&self.entry, &inputs)?;
            let first = routes.len();
            routes.resize_with(first + run.len(), Vec::new);
            for (head, out) in outputs.iter().enumerate() {
                let k = out.shape().get(1).copied().unwrap_or(0);
                let ids = out
                    .bytes()
                    .chunks_exact(4)
                    .map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]));
                for (t, id) in ids.enumerate() {
                    let expert = u32::try_from(id)
                        .map_err(|_| Error::Input(format!("`{ROUTE}` returned expert id {id}")))?;
                    routes[first + t / k.max(1)].push((head as u32, expert));
                }
            }
        }
        Ok(routes.into_iter().map(Vec::into_boxed_slice).collect())
    }
}
