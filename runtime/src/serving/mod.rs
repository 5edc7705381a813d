//! Serving many sequences at once. A serving bundle carries a batched entry
//! point, [`STEP`], over per-sequence KV caches kept in device pools of
//! slots; the [`Engine`] runs it with continuous batching: requests queue,
//! each step admits waiting ones while slots and the token budget allow (in a
//! [`SchedulePolicy`]'s order, first come first served by default), feeds
//! decode tokens and prompt chunks of many sequences together (those the
//! policy picks when more are running than a step feeds: [`ExpertAware`]
//! picks those sharing experts, known from a pre-gating model's [`ROUTE`]
//! entry point before the step runs), samples every
//! sequence's next token on the device with its own settings, streams it back
//! as a [`StepEvent`], and retires finished sequences, freeing their slots.
//!
//! A shard set can be served from one rank's requests: rank 0's engine
//! schedules and broadcasts each run of its session, the other ranks'
//! engines follow it ([`EngineOptions::replicate`], [`Engine::follow`]).
//!
//! The runtime stays free of any network or async code: a server (such as
//! `seam serve`) drives the engine from one thread.

mod complete;
mod engine;
mod expert_aware;
mod layout;
mod plan;
mod policy;
mod replica;
mod request;
mod routing;
mod routing_trace;
mod sequence;
mod slots;
mod stats;

pub use complete::{complete_all, Completion};
pub use engine::{Engine, EngineOptions};
pub use expert_aware::{ExpertAware, DEFAULT_MAX_SKIPS};
pub use layout::{STEP, STEP_INPUTS};
pub use policy::{FirstComeFirstServed, Ready, SchedulePolicy, Waiting};
pub use replica::ControlError;
pub use request::{Finish, Request, RequestId, StepEvent};
pub use routing::{TokenRoute, ROUTE};
pub use routing_trace::RoutingDecision;
pub use stats::EngineStats;
