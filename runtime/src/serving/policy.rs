//! Which waiting request a step admits next: a policy as a trait, with
//! first-come-first-served the default.

use super::request::RequestId;

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

/// Chooses which waiting request to admit when a slot is free. The engine
/// asks once per admission, with the requests still waiting in arrival
/// order; answering `None` admits no more in this step.
pub trait SchedulePolicy: Send {
    /// The index into `waiting` (never empty) of the request to admit next.
    fn next(&mut self, waiting: &[Waiting<'_>]) -> Option<usize>;

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
