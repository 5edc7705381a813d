//! What a caller asks the [`super::Engine`] for, and what each step tells it back.

use crate::generate::Sampling;

/// A caller's name for one request; unique among the requests an engine holds.
pub type RequestId = u64;

/// One sequence to generate: a prompt, how many tokens at most, how each is
/// chosen, and the ids that end it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The prompt's token ids (not empty).
    pub prompt: Vec<i32>,
    /// The most tokens to generate (at least 1).
    pub max_new_tokens: usize,
    /// How each token is chosen (on the device).
    pub sampling: Sampling,
    /// Ids that end the sequence when generated (the model's EOS ids); the
    /// stop id itself is reported, then the sequence finishes with
    /// [`Finish::Stop`].
    pub stop_ids: Vec<i32>,
}

/// Why a sequence ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// It generated `max_new_tokens` (or reached the engine's `max_seq_len`).
    Length,
    /// It generated one of its `stop_ids`.
    Stop,
    /// The caller cancelled it ([`super::Engine::cancel`]).
    Cancelled,
    /// Its logits could not be sampled (NaN), or the device failed during a
    /// step it was in ([`super::Engine::step`] returned the error; the
    /// sequence is reported failed by the next step).
    Failed,
}

/// What one step produced for one request: a new token, its end, or both
/// (the last token and why it was the last).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StepEvent {
    /// The request.
    pub id: RequestId,
    /// The token generated for it in this step, if any.
    pub token: Option<i32>,
    /// Set when the request finished in this step (its cache slot is free again).
    pub finish: Option<Finish>,
}
