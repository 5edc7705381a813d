//! A fake [`Backend`] for the server's unit tests: no device, every running
//! request advances one token per step, counting up from its prompt's last
//! id, a millisecond per step; a prompt starting with [`FAIL`] makes the
//! step fail, and (as the engine does) the failed step's requests are
//! dropped and reported with `Finish::Failed` by the next step.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use seam_runtime::serving::{EngineStats, Finish, Request, RequestId, StepEvent};

use super::backend::Backend;

/// A prompt starting with this id makes the step fail (a device error).
pub const FAIL: i32 = 99;

/// The fake engine.
pub struct FakeBackend {
    running: Vec<(RequestId, Request, i32, usize)>,
    max_seq_len: usize,
    cancelled: Arc<Mutex<Vec<RequestId>>>,
    generated: u64,
    failed: Vec<RequestId>,
    kept_alive: Arc<AtomicUsize>,
}

impl FakeBackend {
    /// A fake holding sequences of up to `max_seq_len` positions.
    pub fn new(max_seq_len: usize) -> FakeBackend {
        FakeBackend {
            running: Vec::new(),
            max_seq_len,
            cancelled: Arc::default(),
            generated: 0,
            failed: Vec::new(),
            kept_alive: Arc::default(),
        }
    }

    /// How many times the engine thread called `keep_alive`.
    pub fn kept_alive(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.kept_alive)
    }

    /// The ids cancelled so far.
    pub fn cancelled(&self) -> Arc<Mutex<Vec<RequestId>>> {
        Arc::clone(&self.cancelled)
    }
}

impl Backend for FakeBackend {
    fn submit(&mut self, id: RequestId, request: Request) -> Result<(), seam_runtime::Error> {
        if request.max_new_tokens == 0
            || request.prompt.len() + request.max_new_tokens - 1 > self.max_seq_len
        {
            return Err(seam_runtime::Error::Input("does not fit".into()));
        }
        let last = *request.prompt.last().unwrap_or(&0);
        self.running.push((id, request, last, 0));
        Ok(())
    }

    fn cancel(&mut self, id: RequestId) {
        self.running.retain(|r| r.0 != id);
        self.cancelled.lock().unwrap().push(id);
    }

    fn step(&mut self) -> Result<Vec<StepEvent>, seam_runtime::Error> {
        // Slow enough that a test can act while a request runs.
        std::thread::sleep(std::time::Duration::from_millis(1));
        let mut events: Vec<StepEvent> = std::mem::take(&mut self.failed)
            .into_iter()
            .map(|id| StepEvent {
                id,
                token: None,
                finish: Some(Finish::Failed),
            })
            .collect();
        if self.running.iter().any(|r| r.1.prompt[0] == FAIL) {
            self.failed = self.running.drain(..).map(|r| r.0).collect();
            return Err(seam_runtime::Error::Input("the fake device failed".into()));
        }
        for (id, request, last, generated) in &mut self.running {
            *last += 1;
            *generated += 1;
            let finish = if request.stop_ids.contains(last) {
                Some(Finish::Stop)
            } else if *generated == request.max_new_tokens {
                Some(Finish::Length)
            } else {
                None
            };
            events.push(StepEvent {
                id: *id,
                token: Some(*last),
                finish,
            });
        }
        self.generated += events.iter().filter(|e| e.token.is_some()).count() as u64;
        self.running
            .retain(|r| !events.iter().any(|e| e.id == r.0 && e.finish.is_some()));
        Ok(events)
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            running: self.running.len(),
            max_batch: 8,
            max_seq_len: self.max_seq_len,
            generated_tokens: self.generated,
            ..EngineStats::default()
        }
    }

    fn is_idle(&self) -> bool {
        self.running.is_empty() && self.failed.is_empty()
    }

    fn keep_alive(&mut self) -> Result<(), seam_runtime::Error> {
        self.kept_alive
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn release(&mut self) -> Result<(), seam_runtime::Error> {
        Ok(())
    }
}
