//! What the server needs of an engine: seven methods of
//! [`seam_runtime::serving::Engine`], as a trait so the router can be tested
//! with a fake.

use seam_runtime::serving::{Engine, EngineStats, Request, RequestId, StepEvent};

/// An engine that generates many requests' tokens, one step at a time. It is
/// driven by one thread ([`super::engine_thread`]), never from async code.
pub trait Backend: Send + 'static {
    /// Queues `request` under `id`; refuses a prompt or `max_new_tokens`
    /// that does not fit.
    fn submit(&mut self, id: RequestId, request: Request) -> Result<(), seam_runtime::Error>;
    /// Drops request `id`, waiting or running (nothing if unknown).
    fn cancel(&mut self, id: RequestId);
    /// Runs one step: at most one new token per running request, and the
    /// requests that finished. A no-op when idle.
    fn step(&mut self) -> Result<Vec<StepEvent>, seam_runtime::Error>;
    /// The engine's counters.
    fn stats(&self) -> EngineStats;
    /// Whether no request is waiting or running.
    fn is_idle(&self) -> bool;
    /// Under `mpirun`: tells the other ranks, which follow this engine,
    /// that it is alive while idle. A no-op otherwise.
    fn keep_alive(&mut self) -> Result<(), seam_runtime::Error>;
    /// Under `mpirun`: releases the other ranks (called once, as the engine
    /// thread ends). A no-op otherwise.
    fn release(&mut self) -> Result<(), seam_runtime::Error>;
}

impl Backend for Engine {
    fn submit(&mut self, id: RequestId, request: Request) -> Result<(), seam_runtime::Error> {
        Engine::submit(self, id, request)
    }

    fn cancel(&mut self, id: RequestId) {
        Engine::cancel(self, id)
    }

    fn step(&mut self) -> Result<Vec<StepEvent>, seam_runtime::Error> {
        Engine::step(self)
    }

    fn stats(&self) -> EngineStats {
        Engine::stats(self)
    }

    fn is_idle(&self) -> bool {
        Engine::is_idle(self)
    }

    fn keep_alive(&mut self) -> Result<(), seam_runtime::Error> {
        self.keep_followers()
    }

    fn release(&mut self) -> Result<(), seam_runtime::Error> {
        self.release_followers()
    }
}
