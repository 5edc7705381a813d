//! The batched engine: continuous batching over per-sequence KV pool slots.
//! Each [`Engine::step`] admits waiting requests while slots and the token
//! budget allow, runs the bundle's `step` once for every running sequence
//! (decode tokens and prompt chunks together), samples each sampled
//! sequence's next token on the device with its own settings, and retires the
//! sequences that finished, freeing their slots.

use std::collections::VecDeque;
use std::sync::Arc;

use super::layout::StepLayout;
use super::plan::{plan_step, StepPlan};
use super::policy::{FirstComeFirstServed, SchedulePolicy, Waiting};
use super::request::{Finish, Request, RequestId, StepEvent};
use super::routing_trace::{decisions, RoutingDecision};
use super::sequence::Sequence;
use super::slots::SlotPool;
use super::stats::EngineStats;
use crate::collective::Communicator;
use crate::error::Error;
use crate::generate::{Draw, Sampler};
use crate::model::Model;
use crate::session::Session;
use crate::tensor::HostTensor;

/// How an [`Engine`] batches.
pub struct EngineOptions {
    /// The most sequences running at once (default and limit: what the
    /// bundle's `step` and KV pools allow).
    pub max_batch: Option<usize>,
    /// The most tokens one step feeds (default and limit: the bound of the
    /// bundle's `tokens` dim); prompts longer than it are fed in chunks.
    pub token_budget: Option<usize>,
    /// Which waiting request is admitted next.
    pub policy: Box<dyn SchedulePolicy>,
    /// The ranks of a shard set's bundle (see
    /// [`Session::set_communicator`]); every rank's engine must get the same
    /// requests in the same order.
    pub communicator: Option<Arc<dyn Communicator>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_batch: None,
            token_budget: None,
            policy: Box::new(FirstComeFirstServed),
            communicator: None,
        }
    }
}

/// A request waiting for a slot.
struct Queued {
    id: RequestId,
    request: Request,
    sampler: Sampler,
    arrival: u64,
}

/// Many sequences decoded together over one bundle's `step` entry point
/// (see [`super::STEP`]). Single-threaded: a server drives it from one
/// thread, submitting and cancelling between steps.
pub struct Engine {
    session: Session,
    layout: StepLayout,
    capacity: usize,
    budget: usize,
    pool: SlotPool,
    waiting: VecDeque<Queued>,
    running: Vec<Sequence>,
    pending: Vec<StepEvent>,
    policy: Box<dyn SchedulePolicy>,
    arrivals: u64,
    stats: EngineStats,
    /// The routing decisions since they were last taken, when recording.
    routing: Option<Vec<RoutingDecision>>,
}

impl Engine {
    /// An engine over `model`'s `step` entry point, with a session of its
    /// own; runs one step on a one-token input so that a driver compiling
    /// kernels at their first dispatch (lavapipe) does so here, not in a
    /// served step. Refuses a bundle without a usable `step`, and options
    /// past its bounds.
    pub fn new(model: &Model, options: EngineOptions) -> Result<Engine, Error> {
        let layout = StepLayout::read(model)?;
        let limit = layout.slots.min(layout.max_rows).min(layout.max_tokens);
        let capacity = bounded("max_batch", options.max_batch, limit)?;
        let budget = bounded("token_budget", options.token_budget, layout.max_tokens)?;
        if budget < capacity {
            return Err(Error::Input(format!(
                "a token budget of {budget} cannot feed {capacity} decoding sequences per step"
            )));
        }
        let mut session = model.session()?;
        if let Some(c) = options.communicator {
            session.set_communicator(c);
        }
        let warm_up = StepPlan {
            ids: vec![0],
            slots: vec![0],
            positions: vec![0],
            rows: vec![0],
            ..StepPlan::default()
        };
        session.run_sampled_rows(&layout.entry, &inputs(&warm_up)?, |_| {
            vec![(0, Draw::Greedy)]
        })?;
        Ok(Engine {
            session,
            pool: SlotPool::new(capacity as u32),
            stats: EngineStats {
                max_batch: capacity,
                max_seq_len: layout.max_seq_len,
                ..EngineStats::default()
            },
            layout,
            capacity,
            budget,
            waiting: VecDeque::new(),
            running: Vec::new(),
            pending: Vec::new(),
            policy: options.policy,
            arrivals: 0,
            routing: None,
        })
    }

    /// Queues `request` under `id`. Refuses (before queueing) an id already
    /// held, an empty prompt, ids outside the vocabulary, `max_new_tokens` of
    /// 0, unusable sampling settings, and a sequence longer than a slot holds
    /// ([`Error::SequenceFull`]).
    pub fn submit(&mut self, id: RequestId, request: Request) -> Result<(), Error> {
        if self.holds(id) {
            return Err(Error::Input(format!(
                "request {id} is already queued or running"
            )));
        }
        if request.prompt.is_empty() {
            return Err(Error::Input("the prompt is empty".into()));
        }
        if request.max_new_tokens == 0 {
            return Err(Error::Input("max_new_tokens must be at least 1".into()));
        }
        let vocab = self.layout.vocab;
        if let Some(bad) = request
            .prompt
            .iter()
            .find(|&&t| t < 0 || t as usize >= vocab)
        {
            return Err(Error::Input(format!(
                "prompt id {bad} is outside the vocabulary 0..{vocab}"
            )));
        }
        let sampler = Sampler::new(request.sampling)?;
        let adding = request.max_new_tokens as u64 - 1;
        let needed = (request.prompt.len() as u64).saturating_add(adding);
        if needed > self.layout.max_seq_len as u64 {
            return Err(Error::SequenceFull {
                dim: "positions".into(),
                stored: request.prompt.len() as u64,
                adding,
                max: self.layout.max_seq_len as u64,
            });
        }
        self.waiting.push_back(Queued {
            id,
            request,
            sampler,
            arrival: self.arrivals,
        });
        self.arrivals += 1;
        self.stats.waiting = self.waiting.len();
        Ok(())
    }

    /// Ends request `id` (waiting or running) and frees its slot; the next
    /// [`Engine::step`] reports it with [`Finish::Cancelled`]. Unknown ids
    /// are ignored (the request may have finished already).
    pub fn cancel(&mut self, id: RequestId) {
        if let Some(k) = self.waiting.iter().position(|q| q.id == id) {
            self.waiting.remove(k);
        } else if let Some(k) = self.running.iter().position(|s| s.id == id) {
            let s = self.running.remove(k);
            self.pool.give_back(s.slot);
        } else {
            return;
        }
        self.pending.push(StepEvent {
            id,
            token: None,
            finish: Some(Finish::Cancelled),
        });
        self.refresh_counts();
    }

    /// Runs one batched step and reports what it produced (and the
    /// cancellations and failures since the last step). With nothing to do
    /// it returns at once. On a device error the sequences of the failed step
    /// are dropped (their slots freed), the error returned, and the next step
    /// reports them with [`Finish::Failed`].
    pub fn step(&mut self) -> Result<Vec<StepEvent>, Error> {
        let mut events = std::mem::take(&mut self.pending);
        self.admit();
        if self.running.is_empty() {
            return Ok(events);
        }
        let mut plan = plan_step(&self.running, self.budget);
        // Row `b` of the logits is the token `plan.rows[b]`'s.
        let mut picks: Vec<(usize, Draw)> = plan
            .sampled
            .iter()
            .enumerate()
            .map(|(b, &i)| (b, self.running[i].sampler.draw()))
            .collect();
        // A step that only feeds prompt chunks still returns a row of logits.
        let dummy = picks.is_empty();
        if dummy {
            plan.rows.push(0);
            picks.push((0, Draw::Greedy));
        }
        let run = inputs(&plan).and_then(|inputs| {
            self.session
                .run_sampled_rows(&self.layout.entry, &inputs, |_| picks)
        });
        let sampled = match run {
            Ok(sampled) => sampled,
            Err(e) => {
                // A failed step's routing (if any was read) is not a decision.
                self.session.take_routing();
                let failed: Vec<usize> = plan.fed.iter().map(|&(i, _)| i).collect();
                let ended = failed.iter().map(|&i| (i, Finish::Failed)).collect();
                for id in self.retire(ended) {
                    self.pending.push(StepEvent {
                        id,
                        token: None,
                        finish: Some(Finish::Failed),
                    });
                }
                self.pending.splice(0..0, events);
                return Err(e);
            }
        };
        if let Some(log) = self.routing.as_mut() {
            let fed: Vec<_> = plan
                .fed
                .iter()
                .map(|&(i, n)| (self.running[i].id, n))
                .collect();
            let layers = self.session.take_routing();
            log.extend(decisions(self.stats.steps, &fed, layers));
        }
        self.stats.steps += 1;
        for &(i, n) in &plan.fed {
            let s = &mut self.running[i];
            self.stats.prompt_tokens += n.min(s.prompt_left()) as u64;
            s.fed += n;
        }
        let mut ended = Vec::new();
        let ids = if dummy { Vec::new() } else { sampled.ids };
        for (&i, id) in plan.sampled.iter().zip(ids) {
            let s = &mut self.running[i];
            let (token, finish) = match id {
                Ok(token) => {
                    self.stats.generated_tokens += 1;
                    (Some(token as i32), s.push(token as i32))
                }
                Err(e) => {
                    tracing::warn!(request = s.id, "sampling failed: {e}");
                    (None, Some(Finish::Failed))
                }
            };
            if let Some(finish) = finish {
                ended.push((i, finish));
            }
            events.push(StepEvent {
                id: s.id,
                token,
                finish,
            });
        }
        self.retire(ended);
        Ok(events)
    }

    /// Records the routing decisions of every step from now on (`on`), or
    /// stops: each token's expert in each MoE layer, read back from the
    /// device (steps are then submitted in parts around the MoE layers).
    pub fn record_routing(&mut self, on: bool) {
        self.session.record_routing(on);
        self.routing = on.then(Vec::new);
    }

    /// The routing decisions recorded since the last call, in step order.
    pub fn take_routing(&mut self) -> Vec<RoutingDecision> {
        self.routing
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether a step would do nothing: no request waiting or running, and
    /// no cancellation or failure left to report.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty() && self.pending.is_empty()
    }

    /// The engine's counters now.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            experts: self.session.expert_stats(),
            ..self.stats
        }
    }

    /// The vocabulary of the bundle's logits.
    pub fn vocab(&self) -> usize {
        self.layout.vocab
    }

    /// Whether request `id` is waiting or running.
    fn holds(&self, id: RequestId) -> bool {
        self.waiting.iter().any(|q| q.id == id) || self.running.iter().any(|s| s.id == id)
    }

    /// Admits waiting requests, in the policy's order, while a slot is
    /// free. Admitted prompts are fed in admission order as the token budget
    /// allows, after the decode tokens (see [`plan_step`]), so an admitted
    /// request may wait a step or more for its first chunk.
    fn admit(&mut self) {
        loop {
            if self.waiting.is_empty() || self.running.len() >= self.capacity {
                break;
            }
            let view: Vec<Waiting<'_>> = self
                .waiting
                .iter()
                .map(|q| Waiting {
                    id: q.id,
                    prompt: &q.request.prompt,
                    arrival: q.arrival,
                })
                .collect();
            let Some(k) = self.policy.next(&view).filter(|&k| k < view.len()) else {
                break;
            };
            let Some(slot) = self.pool.take() else {
                break;
            };
            if let Some(q) = self.waiting.remove(k) {
                self.running
                    .push(Sequence::new(q.id, slot, q.request, q.sampler));
            }
        }
        self.refresh_counts();
    }

    /// Removes the running sequences `ended` names (by index, with why),
    /// freeing their slots; returns their ids.
    fn retire(&mut self, ended: Vec<(usize, Finish)>) -> Vec<RequestId> {
        let mut gone = Vec::with_capacity(ended.len());
        let pool = &mut self.pool;
        let mut k = 0;
        self.running.retain(|s| {
            let keep = !ended.iter().any(|&(i, _)| i == k);
            k += 1;
            if !keep {
                pool.give_back(s.slot);
                gone.push(s.id);
            }
            keep
        });
        self.refresh_counts();
        gone
    }

    /// Updates the waiting, running and KV-position counts of the stats.
    fn refresh_counts(&mut self) {
        self.stats.waiting = self.waiting.len();
        self.stats.running = self.running.len();
        self.stats.positions_used = self.running.iter().map(|s| s.fed as u64).sum();
        self.stats.positions_reserved = (self.running.len() * self.layout.max_seq_len) as u64;
    }
}

/// `step`'s inputs for `plan`.
fn inputs(plan: &StepPlan) -> Result<Vec<HostTensor>, Error> {
    [&plan.ids, &plan.slots, &plan.positions, &plan.rows]
        .into_iter()
        .map(|v| HostTensor::from_i32(vec![v.len()], v))
        .collect()
}

/// An option's value: `wanted` if given and within `1..=limit`, else `limit`.
fn bounded(name: &str, wanted: Option<usize>, limit: usize) -> Result<usize, Error> {
    match wanted {
        None => Ok(limit),
        Some(n) if (1..=limit).contains(&n) => Ok(n),
        Some(n) => Err(Error::Input(format!(
            "{name} must be in 1..={limit} for this bundle, found {n}"
        ))),
    }
}
