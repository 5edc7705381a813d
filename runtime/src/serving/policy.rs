//! Which waiting request a step admits next, and which running sequences it
//! feeds: a policy as a trait, with first-come-first-served the default.

use super::request::RequestId;
use super::routing::TokenRoute;

/// A request waiting for a cache slot, as a [`SchedulePolicy`] sees it.
#[derive(Copy, Clone, Debug)]
pub struct Waiting<'a> {
    /// The request.
    pub id: RequestId,
    /// Its prompt.
    pub prompt: &'a [i32],
    /// Its place in arrival order (0 for the first request the engine took).
    pub arrival: u64,
}

/// A running sequence a step may feed (its next decode token, or its next
/// prompt chunk), as [`SchedulePolicy::pick`] sees it.
#[derive(Copy, Clone, Debug)]
pub struct Ready<'a> {
    /// The request.
    pub id: RequestId,
    /// Its place in arrival order.
    pub arrival: u64,
    /// Steps in a row that fed other sequences but not this one.
    pub skipped: u32,
    /// The routing of each token a step would feed it, when the policy
    /// [uses routing](SchedulePolicy::uses_routing) and the bundle has a
    /// [`super::ROUTE`] entry point; `None` otherwise.
    pub routes: Option<&'a [TokenRoute]>,
}

/// Chooses which waiting request to admit when a slot is free, and which
/// running sequences each step feeds. The engine asks [`SchedulePolicy::next`]
/// once per admission, with the requests still waiting in arrival order
/// (answering `None` admits no more in this step); then, once per step,
/// [`SchedulePolicy::pick`] with every running sequence in admission order.
pub trait SchedulePolicy: Send {
    /// The index into `waiting` (never empty) of the request to admit next.
    fn next(&mut self, waiting: &[Waiting<'_>]) -> Option<usize>;

    /// The indices into `ready` (in admission order, never empty) of the
    /// sequences this step feeds, at most `batch` of them (the engine
    /// ignores indices out of range, repeated, or past the first `batch`).
    /// Default: the first `batch`, the longest admitted first.
    fn pick(&mut self, ready: &[Ready<'_>], batch: usize) -> Vec<usize> {
        (0..ready.len().min(batch)).collect()
    }

    /// Whether [`SchedulePolicy::pick`] reads [`Ready::routes`] (the engine
    /// then runs the bundle's [`super::ROUTE`] over the candidates' tokens
    /// before each step). Default: no.
    fn uses_routing(&self) -> bool {
        false
    }

    /// The policy's name, for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Admits requests in the order they arrived.
#[derive(Copy, Clone, Debug, Default)]
pub struct FirstComeFirstServed;

impl SchedulePolicy for FirstComeFirstServed {
    fn next(&mut self, waiting: &[Waiting<'_>]) -> Option<usize> {
        (!waiting.is_empty()).then_some(0)
    }

    fn name(&self) -> &'static str {
        "fcfs"
    }
}
