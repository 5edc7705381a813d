//! One admitted request on its way through the engine: its updates turned
//! into text pieces and an end, with the time to first token recorded.
//! Dropping a [`Job`] drops its receiver, which cancels the request at the
//! engine's next step, and frees its place in the queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use seam_runtime::serving::{Finish, RequestId};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::OwnedSemaphorePermit;

use super::engine_thread::Update;
use super::errors::ApiError;
use super::routes::AppState;
use super::text::TextTracker;

/// What a job produced next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Text safe to send (may be empty).
    Text(String),
    /// The end, with OpenAI's `finish_reason` (`"stop"` or `"length"`).
    End(&'static str),
}

/// A request in the engine.
pub struct Job {
    state: Arc<AppState>,
    id: RequestId,
    updates: UnboundedReceiver<Update>,
    tracker: TextTracker,
    arrived: Instant,
    /// Tokens generated so far.
    pub completion_tokens: usize,
    /// The prompt's length.
    pub prompt_tokens: usize,
    ended: bool,
    pending: VecDeque<Step>,
    _place: OwnedSemaphorePermit,
}

impl Job {
    /// Wraps request `id`'s updates.
    pub fn new(
        state: Arc<AppState>,
        id: RequestId,
        updates: UnboundedReceiver<Update>,
        tracker: TextTracker,
        prompt_tokens: usize,
        place: OwnedSemaphorePermit,
    ) -> Job {
        Job {
            state,
            id,
            updates,
            tracker,
            arrived: Instant::now(),
            completion_tokens: 0,
            prompt_tokens,
            ended: false,
            pending: VecDeque::new(),
            _place: place,
        }
    }

    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next step, `None` after the end. A stop string ends the job and
    /// cancels its sequence; the text before it is sent, not the string.
    pub async fn next(&mut self) -> Option<Result<Step, ApiError>> {
        if let Some(step) = self.pending.pop_front() {
            return Some(Ok(step));
        }
        if self.ended {
            return None;
        }
        match self.receive().await {
            Ok(()) => self.pending.pop_front().map(Ok),
            Err(e) => {
                self.ended = true;
                Some(Err(e))
            }
        }
    }

    /// Waits for the next update and queues the steps it makes.
    async fn receive(&mut self) -> Result<(), ApiError> {
        let engine_error = |e: super::super::CliError| ApiError::Engine(e.to_string());
        let (text, end) = match self.updates.recv().await {
            Some(Update::Token(token)) => {
                if self.completion_tokens == 0 {
                    self.state.metrics.first_token(self.arrived.elapsed());
                }
                self.completion_tokens += 1;
                let piece = self.tracker.push(token).map_err(engine_error)?;
                if piece.stopped {
                    self.state.engine.cancel(self.id);
                }
                (piece.text, piece.stopped.then_some("stop"))
            }
            Some(Update::Finished(finish)) => {
                let reason = match finish {
                    Finish::Length => "length",
                    Finish::Stop | Finish::Cancelled => "stop",
                    Finish::Failed => {
                        return Err(ApiError::Engine("the request failed on the device".into()))
                    }
                };
                (self.tracker.finish().map_err(engine_error)?, Some(reason))
            }
            Some(Update::Refused(message)) => {
                return Err(ApiError::Invalid {
                    message,
                    param: None,
                })
            }
            Some(Update::Failed(message)) => return Err(ApiError::Engine(message)),
            None => return Err(ApiError::Engine("the engine stopped".into())),
        };
        if !text.is_empty() || end.is_none() {
            self.pending.push_back(Step::Text(text));
        }
        if let Some(reason) = end {
            self.pending.push_back(Step::End(reason));
            self.ended = true;
        }
        Ok(())
    }
}
