//! The engine's counters, for a server's health and metrics pages.

use crate::experts::ExpertStats;

/// A snapshot of what an engine holds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests waiting for a slot.
    pub waiting: usize,
    /// Sequences holding a cache slot (prefilling or decoding).
    pub running: usize,
    /// The most sequences running at once, each holding a slot (the
    /// bundle's `max_batch`, or less as the engine was asked).
    pub max_batch: usize,
    /// The most sequences one step feeds (at most `max_batch`).
    pub step_batch: usize,
    /// The most positions one sequence holds (prompt and generated tokens).
    pub max_seq_len: usize,
    /// Tokens generated since the engine started.
    pub generated_tokens: u64,
    /// Prompt tokens prefilled since the engine started.
    pub prompt_tokens: u64,
    /// Batched steps run since the engine started.
    pub steps: u64,
    /// KV positions the running sequences fill now (prompt and generated
    /// tokens in their slots).
    pub positions_used: u64,
    /// KV positions the running sequences' slots reserve
    /// (`running × max_seq_len`): what a slot pool holds for them, against
    /// [`EngineStats::positions_used`] that a paged pool would.
    pub positions_reserved: u64,
    /// Steps whose tokens' routing the engine knew (ran the bundle's
    /// `route` for): every step, for an engine that routes.
    pub routed_steps: u64,
    /// The unique `(router head, expert)` pairs of those steps' tokens,
    /// summed over the steps: over [`EngineStats::routed_steps`], the mean
    /// experts a step touches (per MoE layer with a head per layer).
    pub expert_pairs: u64,
    /// What the expert slots did, for a model keeping experts in host memory.
    pub experts: Option<ExpertStats>,
}
