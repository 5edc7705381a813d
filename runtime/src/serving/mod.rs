//! Serving many sequences at once: requests, the events a step produces, and
//! the engine's counters.

mod request;
mod stats;

pub use request::{Finish, Request, RequestId, StepEvent};
pub use stats::EngineStats;
