//! The batch-1 baseline [`Backend`]: requests in a FIFO, run one at a time
//! on one [`Session`] — prefill, then one decode per step — with the token
//! picked on the device.

use std::collections::VecDeque;

use seam_runtime::generate::{Sampler, DECODE, PREFILL};
use seam_runtime::serving::{EngineStats, Finish, Request, RequestId, StepEvent};
use seam_runtime::{Entry, Error, HostTensor, Session};

use super::backend::Backend;

/// Runs requests one after the other on one session.
pub struct SequentialBackend {
    session: Session,
    prefill: Entry,
    decode: Entry,
    waiting: VecDeque<(RequestId, Request)>,
    running: Option<Running>,
    max_seq_len: usize,
    stats: EngineStats,
}

/// The sequence in the session.
struct Running {
    id: RequestId,
    sampler: Sampler,
    stop_ids: Vec<i32>,
    max_new_tokens: usize,
    generated: usize,
    /// The last token generated, decoded next.
    last: i32,
}

impl SequentialBackend {
    /// A backend over `session`, whose model must have `prefill` and
    /// `decode` entry points sharing a KV cache.
    pub fn new(session: Session) -> Result<SequentialBackend, Error> {
        let prefill = session.model().entry(PREFILL)?;
        let decode = session.model().entry(DECODE)?;
        let max_seq_len = session
            .max_length()
            .and_then(|m| usize::try_from(m).ok())
            .ok_or_else(|| Error::Input("the bundle has no KV cache".into()))?;
        Ok(SequentialBackend {
            session,
            prefill,
            decode,
            waiting: VecDeque::new(),
            running: None,
            max_seq_len,
            stats: EngineStats {
                max_batch: 1,
                max_seq_len,
                ..EngineStats::default()
            },
        })
    }

    /// Starts the next waiting request: resets the session and prefills its
    /// prompt; returns it with its first token.
    fn start(&mut self, id: RequestId, request: Request) -> Result<(Running, i32), Error> {
        let mut sampler = Sampler::new(request.sampling)?;
        self.session.reset()?;
        let ids = HostTensor::from_i32(vec![request.prompt.len()], &request.prompt)?;
        let sampled = self
            .session
            .run_sampled(&self.prefill, &[ids], &sampler.draw())?;
        self.stats.prompt_tokens += request.prompt.len() as u64;
        let running = Running {
            id,
            sampler,
            stop_ids: request.stop_ids,
            max_new_tokens: request.max_new_tokens,
            generated: 0,
            last: 0,
        };
        Ok((running, to_id(sampled.id)?))
    }

    /// Decodes the running sequence's last token; returns the next.
    fn advance(&mut self, running: &mut Running) -> Result<i32, Error> {
        let ids = HostTensor::from_i32(vec![1], &[running.last])?;
        let draw = running.sampler.draw();
        let sampled = self.session.run_sampled(&self.decode, &[ids], &draw)?;
        to_id(sampled.id)
    }
}

impl Backend for SequentialBackend {
    fn submit(&mut self, id: RequestId, request: Request) -> Result<(), Error> {
        if request.prompt.is_empty() {
            return Err(Error::Input("the prompt is empty".into()));
        }
        if request.max_new_tokens == 0 {
            return Err(Error::Input("max_new_tokens must be at least 1".into()));
        }
        request.sampling.validate()?;
        let needed = request.prompt.len() + request.max_new_tokens - 1;
        if needed > self.max_seq_len {
            return Err(Error::SequenceFull {
                dim: self.session.length_dim().unwrap_or_default().to_string(),
                stored: request.prompt.len() as u64,
                adding: request.max_new_tokens as u64 - 1,
                max: self.max_seq_len as u64,
            });
        }
        self.waiting.push_back((id, request));
        Ok(())
    }

    fn cancel(&mut self, id: RequestId) {
        self.waiting.retain(|(w, _)| *w != id);
        if self.running.as_ref().is_some_and(|r| r.id == id) {
            self.running = None;
        }
    }

    fn step(&mut self) -> Result<Vec<StepEvent>, Error> {
        let (mut running, token) = match self.running.take() {
            Some(mut running) => {
                let token = self.advance(&mut running)?;
                (running, token)
            }
            None => match self.waiting.pop_front() {
                Some((id, request)) => self.start(id, request)?,
                None => return Ok(Vec::new()),
            },
        };
        self.stats.steps += 1;
        self.stats.generated_tokens += 1;
        running.generated += 1;
        running.last = token;
        let finish = if running.stop_ids.contains(&token) {
            Some(Finish::Stop)
        } else if running.generated >= running.max_new_tokens {
            Some(Finish::Length)
        } else {
            None
        };
        let event = StepEvent {
            id: running.id,
            token: Some(token),
            finish,
        };
        if finish.is_none() {
            self.running = Some(running);
        }
        Ok(vec![event])
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            waiting: self.waiting.len(),
            running: usize::from(self.running.is_some()),
            ..self.stats
        }
    }

    fn is_idle(&self) -> bool {
        self.running.is_none() && self.waiting.is_empty()
    }
}

fn to_id(id: u32) -> Result<i32, Error> {
    i32::try_from(id).map_err(|_| Error::Input(format!("token id {id} exceeds i32")))
}
