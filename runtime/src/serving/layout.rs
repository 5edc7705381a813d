//! The batched entry point a serving bundle carries, and what the engine
//! reads off it: the step's token and sequence bounds, the KV pool's slots
//! and positions, and the vocabulary.

use seam_bundle::{IoEntry, Manifest};
use seam_core::{DType, SizeExpr};

use crate::entry::Entry;
use crate::error::Error;
use crate::model::Model;

/// The batched entry point: `step(ids: i32[tokens], slots: i32[tokens],
/// positions: i32[tokens], rows: i32[batch]) -> f32[batch, vocab]`, with
/// session states that are per-sequence KV pools `[slots, positions, …]`.
/// Token `t` of a step belongs to the sequence in pool slot `slots[t]` at
/// position `positions[t]` (its keys and values are written there, and it
/// attends to that slot's positions up to its own); the logits returned are
/// those of the tokens `rows[b]` — each sampled sequence's last token of the
/// step. Prefill chunks and decode tokens of many sequences share one step.
pub const STEP: &str = "step";

/// The names of `step`'s inputs, in order.
pub const STEP_INPUTS: [&str; 4] = ["ids", "slots", "positions", "rows"];

/// What the engine needs to know about a bundle's `step`.
#[derive(Clone, Debug)]
pub(crate) struct StepLayout {
    /// The entry point.
    pub entry: Entry,
    /// The most tokens one step takes (the bound of `ids`' dim).
    pub max_tokens: usize,
    /// The most sequences one step samples (the bound of `rows`' dim).
    pub max_rows: usize,
    /// Sequences the KV pools hold at once (their first dim).
    pub slots: usize,
    /// Positions each slot holds (their second dim).
    pub max_seq_len: usize,
    /// The vocabulary (the logits' last dim).
    pub vocab: usize,
}

impl StepLayout {
    /// Reads `model`'s `step` entry point, refusing (with [`Error::Input`]
    /// naming what is wrong) a bundle without one or with another signature.
    pub(crate) fn read(model: &Model) -> Result<StepLayout, Error> {
        let entry = model.entry(STEP).map_err(|_| {
            Error::Input(format!(
                "the bundle has no `{STEP}` entry point for batched serving (compile a model with a KV cache, e.g. `seam compile … --max-seq-len N --max-batch B`)"
            ))
        })?;
        let bad = |what: String| Error::Input(format!("`{STEP}` {what}"));
        let manifest = model.manifest();
        let inputs = entry.inputs();
        let names: Vec<&str> = inputs.iter().map(|io| io.name.as_str()).collect();
        if names != STEP_INPUTS {
            return Err(bad(format!(
                "must take inputs {STEP_INPUTS:?}, found {names:?}"
            )));
        }
        let tokens = one_dim(&inputs[0], manifest).map_err(bad)?;
        for io in &inputs[1..3] {
            if one_dim(io, manifest).map_err(bad)? != tokens {
                return Err(bad(format!(
                    "input `{}` must be i32[{}]",
                    io.name, tokens.0
                )));
            }
        }
        let rows = one_dim(&inputs[3], manifest).map_err(bad)?;
        let vocab = match entry.outputs().first() {
            Some(io)
                if io.dtype == DType::F32
                    && io.shape.len() == 2
                    && io.shape[0] == SizeExpr::Dim(rows.0.clone()) =>
            {
                constant(&io.shape[1])
                    .ok_or_else(|| bad("must return logits with a static vocabulary".into()))?
            }
            _ => {
                return Err(bad(format!(
                    "must return f32 logits [{}, vocab] first",
                    rows.0
                )))
            }
        };
        let (slots, max_seq_len) = pool_shape(manifest, entry.name()).map_err(bad)?;
        Ok(StepLayout {
            entry,
            max_tokens: tokens.1,
            max_rows: rows.1,
            slots,
            max_seq_len,
            vocab,
        })
    }
}

/// The symbolic dim and its bound of a rank-1 i32 input.
fn one_dim(io: &IoEntry, manifest: &Manifest) -> Result<(String, usize), String> {
    let wrong = || format!("input `{}` must be i32 over one symbolic dim", io.name);
    match (&io.dtype, &io.shape[..]) {
        (DType::I32, [SizeExpr::Dim(name)]) => {
            let bound = manifest
                .dims
                .iter()
                .find(|d| &d.name == name)
                .map(|d| d.max)
                .ok_or_else(wrong)?;
            Ok((name.clone(), usize::try_from(bound).map_err(|_| wrong())?))
        }
        _ => Err(wrong()),
    }
}

/// The slots and positions every KV pool of the `step` entry shares.
fn pool_shape(manifest: &Manifest, step: &str) -> Result<(usize, usize), String> {
    let entry = manifest
        .entry_points
        .iter()
        .find(|e| e.name == step)
        .ok_or_else(|| "is missing".to_string())?;
    let mut shape = None;
    for &s in &entry.states {
        let state = manifest
            .states
            .get(s as usize)
            .ok_or_else(|| format!("names a missing state {s}"))?;
        let dims = match &state.shape[..] {
            [slots, positions, ..] => (constant(slots), constant(positions)),
            _ => (None, None),
        };
        let (Some(slots), Some(positions)) = dims else {
            return Err(format!(
                "state `{}` must be a KV pool [slots, positions, …] of static sizes",
                state.name
            ));
        };
        if *shape.get_or_insert((slots, positions)) != (slots, positions) {
            return Err(format!(
                "state `{}` has another pool shape than the first state",
                state.name
            ));
        }
    }
    shape
        .filter(|&(slots, positions)| slots > 0 && positions > 0)
        .ok_or_else(|| "has no KV pool state".to_string())
}

/// A size that is a constant.
fn constant(e: &SizeExpr) -> Option<usize> {
    e.eval(&|_| None).ok().and_then(|v| usize::try_from(v).ok())
}
