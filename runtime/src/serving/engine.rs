//! The batched engine: continuous batching over per-sequence KV pool slots.
//! Each [`Engine::step`] admits waiting requests while slots and the token
//! budget allow, runs the bundle's `step` once for the running sequences the
//! policy picks (all of them, up to the step batch; decode tokens and prompt
//! chunks together), samples each sampled sequence's next token on the device
//! with its own settings, and retires the sequences that finished, freeing
//! their slots.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use super::layout::StepLayout;
use super::plan::{plan_step, StepPlan};
use super::policy::{FirstComeFirstServed, Ready, SchedulePolicy, Waiting};
use super::replica::Control;
use super::request::{Finish, Request, RequestId, StepEvent};
use super::routing::{RouteToken, Router};
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
    /// The most sequences running at once, each holding a KV pool slot
    /// (default and limit: what the bundle's `step` and KV pools allow).
    pub max_batch: Option<usize>,
    /// The most sequences one step feeds (default and limit: `max_batch`);
    /// with more running, the policy picks which
    /// ([`SchedulePolicy::pick`]).
    pub step_batch: Option<usize>,
    /// The most tokens one step feeds (default and limit: the bound of the
    /// bundle's `tokens` dim); prompts longer than it are fed in chunks.
    pub token_budget: Option<usize>,
    /// Which waiting request is admitted next, and which running sequences
    /// each step feeds.
    pub policy: Box<dyn SchedulePolicy>,
    /// The ranks of a shard set's bundle (see
    /// [`Session::set_communicator`]); every rank's engine must get the same
    /// requests in the same order, unless [`EngineOptions::replicate`].
    pub communicator: Option<Arc<dyn Communicator>>,
    /// With a `communicator`: only rank 0's engine is given requests and
    /// stepped; before each run of its session it broadcasts the run (a
    /// `step`'s inputs, a `route`'s tokens), and the other ranks' engines
    /// run the same in [`Engine::follow`] until rank 0 calls
    /// [`Engine::release_followers`]. Rank 0 calls
    /// [`Engine::keep_followers`] while idle, more often than the
    /// communicator's timeout, or the followers time out.
    pub replicate: bool,
    /// Route every step's tokens with the bundle's [`super::ROUTE`] (when
    /// it has one) and count the experts they use in
    /// [`EngineStats::expert_pairs`], even for a policy that does not read
    /// routing (which then costs a `route` run per step). A policy that
    /// reads routing counts them anyway.
    pub count_experts: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_batch: None,
            step_batch: None,
            token_budget: None,
            policy: Box::new(FirstComeFirstServed),
            communicator: None,
            replicate: false,
            count_experts: false,
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
    step_batch: usize,
    budget: usize,
    /// The bundle's `route`, for an engine that routes.
    router: Option<Router>,
    pool: SlotPool,
    waiting: VecDeque<Queued>,
    running: Vec<Sequence>,
    pending: Vec<StepEvent>,
    policy: Box<dyn SchedulePolicy>,
    arrivals: u64,
    stats: EngineStats,
    /// The routing decisions since they were last taken, when recording.
    routing: Option<Vec<RoutingDecision>>,
    /// The ranks this engine leads or follows, when it replicates.
    replica: Replica,
}

/// An engine's part in replicated serving ([`EngineOptions::replicate`]).
enum Replica {
    /// It runs alone, or every rank's engine is given the same requests.
    None,
    /// Rank 0: broadcasts each run of its session to the other ranks.
    Leads(Arc<dyn Communicator>),
    /// Another rank: runs what rank 0 broadcasts.
    Follows(Arc<dyn Communicator>),
}

impl Engine {
    /// An engine over `model`'s `step` entry point, with a session of its
    /// own; runs one step on a one-token input so that a driver compiling
    /// kernels at their first dispatch (lavapipe) does so here, not in a
    /// served step (and so for `route`, when the engine routes). Refuses a
    /// bundle without a usable `step`, and options past its bounds. A policy
    /// reading routing over a bundle without `route` (routers inside the
    /// layers) gets none: it is warned about, and
    /// [`Engine::knows_routing`] says so.
    pub fn new(model: &Model, options: EngineOptions) -> Result<Engine, Error> {
        let layout = StepLayout::read(model)?;
        let limit = layout.slots.min(layout.max_rows).min(layout.max_tokens);
        let capacity = bounded("max_batch", options.max_batch, limit)?;
        let step_batch = bounded("step_batch", options.step_batch, capacity)?;
        let budget = bounded("token_budget", options.token_budget, layout.max_tokens)?;
        if budget < step_batch {
            return Err(Error::Input(format!(
                "a token budget of {budget} cannot feed {step_batch} decoding sequences per step"
            )));
        }
        let routes = options.policy.uses_routing() || options.count_experts;
        let router = if routes {
            Router::read(model, layout.max_tokens)?
        } else {
            None
        };
        if options.policy.uses_routing() && router.is_none() {
            tracing::warn!(
                policy = options.policy.name(),
                "the bundle has no `route` entry point (its routers sit inside the layers, so a step's experts are not known before it runs): the policy picks without routing"
            );
        }
        let mut session = model.session()?;
        if let Some(c) = &options.communicator {
            session.set_communicator(Arc::clone(c));
        }
        let replica = match options.communicator {
            Some(c) if options.replicate && c.rank() == 0 => Replica::Leads(c),
            Some(c) if options.replicate => Replica::Follows(c),
            _ if options.replicate => {
                return Err(Error::Input(
                    "a replicated engine needs the ranks' communicator".into(),
                ))
            }
            _ => Replica::None,
        };
        if let Some(router) = &router {
            let token = RouteToken {
                slot: 0,
                position: 0,
                id: 0,
            };
            router.route(&mut session, &[token])?;
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
                step_batch,
                max_seq_len: layout.max_seq_len,
                ..EngineStats::default()
            },
            layout,
            capacity,
            step_batch,
            budget,
            router,
            waiting: VecDeque::new(),
            running: Vec::new(),
            pending: Vec::new(),
            policy: options.policy,
            arrivals: 0,
            routing: None,
            replica,
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
    /// A failure running `route` before the step is returned with nothing
    /// changed but the admissions.
    pub fn step(&mut self) -> Result<Vec<StepEvent>, Error> {
        self.admit();
        if self.running.is_empty() {
            return Ok(std::mem::take(&mut self.pending));
        }
        let chosen = self.choose()?;
        let mut plan = plan_step(&self.running, &chosen, self.budget);
        let pairs = self.count_pairs(&plan)?;
        for (i, s) in self.running.iter_mut().enumerate() {
            let fed = plan.fed.iter().any(|&(j, _)| j == i);
            s.skipped = if fed { 0 } else { s.skipped + 1 };
        }
        let mut events = std::mem::take(&mut self.pending);
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
        let run = self
            .tell(|| Control::step(&plan))
            .and_then(|()| inputs(&plan))
            .and_then(|inputs| {
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
        if let Some(pairs) = pairs {
            self.stats.routed_steps += 1;
            self.stats.expert_pairs += pairs as u64;
        }
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

    /// Whether the engine routes each step's tokens before running it (its
    /// policy reads routing, or [`EngineOptions::count_experts`], and the
    /// bundle has a [`super::ROUTE`] entry point).
    pub fn knows_routing(&self) -> bool {
        self.router.is_some()
    }

    /// The running sequences (indices, in admission order) this step feeds:
    /// all of them up to the step batch, else the policy's pick (routing the
    /// candidates' next tokens first if it reads routing). A pick naming
    /// none is taken as the default pick.
    fn choose(&mut self) -> Result<Vec<usize>, Error> {
        let n = self.running.len();
        let batch = self.step_batch;
        if n <= batch {
            return Ok((0..n).collect());
        }
        let routed = self.policy.uses_routing() && self.router.is_some();
        let budget = self.budget;
        if routed {
            let wants: Vec<(usize, usize)> = (0..n)
                .map(|i| (i, self.running[i].fed + self.running[i].next_feed(budget)))
                .collect();
            self.route(&wants)?;
        }
        let view: Vec<Ready<'_>> = self
            .running
            .iter()
            .map(|s| Ready {
                id: s.id,
                arrival: s.arrival,
                skipped: s.skipped,
                routes: routed
                    .then(|| s.routes.get(s.fed..s.fed + s.next_feed(budget)))
                    .flatten(),
            })
            .collect();
        let mut chosen = Vec::with_capacity(batch);
        for i in self.policy.pick(&view, batch) {
            if i < n && !chosen.contains(&i) && chosen.len() < batch {
                chosen.push(i);
            }
        }
        if chosen.is_empty() {
            chosen = (0..batch).collect();
        }
        chosen.sort_unstable();
        Ok(chosen)
    }

    /// Routes the tokens of running sequences `wants` names (index, and the
    /// position up to which it is to be routed) not routed yet, with one
    /// `route` run (or one per token bound), and keeps their routing.
    fn route(&mut self, wants: &[(usize, usize)]) -> Result<(), Error> {
        let Some(router) = &self.router else {
            return Ok(());
        };
        let tokens: Vec<RouteToken> = wants
            .iter()
            .flat_map(|&(i, upto)| self.running[i].unrouted(upto))
            .collect();
        if tokens.is_empty() {
            return Ok(());
        }
        self.tell(|| Control::Route(tokens.clone()))?;
        let routes = router.route(&mut self.session, &tokens)?;
        for (token, route) in tokens.iter().zip(routes) {
            if let Some(s) = self.running.iter_mut().find(|s| s.slot == token.slot) {
                s.routes.push(route);
            }
        }
        Ok(())
    }

    /// For an engine that routes, the unique `(head, expert)` pairs of the
    /// tokens `plan` feeds (routing them first where needed).
    fn count_pairs(&mut self, plan: &StepPlan) -> Result<Option<usize>, Error> {
        if self.router.is_none() {
            return Ok(None);
        }
        let wants: Vec<(usize, usize)> = plan
            .fed
            .iter()
            .map(|&(i, n)| (i, self.running[i].fed + n))
            .collect();
        self.route(&wants)?;
        let pairs: BTreeSet<(u32, u32)> = plan
            .fed
            .iter()
            .flat_map(|&(i, n)| {
                let s = &self.running[i];
                s.routes.get(s.fed..s.fed + n).unwrap_or_default()
            })
            .flat_map(|t| t.iter().copied())
            .collect();
        Ok(Some(pairs.len()))
    }

    /// Rank 0 of a replicated engine: tells the followers it is alive while
    /// it has nothing to run (a no-op for an engine that does not lead).
    pub fn keep_followers(&mut self) -> Result<(), Error> {
        self.tell(|| Control::KeepAlive)
    }

    /// Rank 0 of a replicated engine: ends the followers'
    /// [`Engine::follow`]; the engine leads no more (a later step would
    /// wait for ranks that left). A no-op for an engine that does not lead.
    pub fn release_followers(&mut self) -> Result<(), Error> {
        let told = self.tell(|| Control::Stop);
        self.replica = Replica::None;
        told
    }

    /// A rank other than 0 of a replicated engine: runs what rank 0's
    /// engine broadcasts — each `step` on its inputs (sampling nothing that
    /// matters: only rank 0's tokens are used), each `route` — until rank 0
    /// releases it. Returns at the first error (a reduction or a broadcast
    /// that failed or timed out, a control message it cannot read, a
    /// device error): the ranks are then out of step. Refused on rank 0 and
    /// on an engine that does not replicate.
    pub fn follow(&mut self) -> Result<(), Error> {
        let Replica::Follows(ranks) = &self.replica else {
            return Err(Error::Input(
                "only a rank other than 0 of a replicated engine follows".into(),
            ));
        };
        let ranks = Arc::clone(ranks);
        loop {
            match Control::decode(&ranks.broadcast(&[])?)? {
                Control::Step(plan) => {
                    let picks = (0..plan.rows.len()).map(|b| (b, Draw::Greedy)).collect();
                    self.session
                        .run_sampled_rows(&self.layout.entry, &inputs(&plan)?, |_| picks)?;
                }
                Control::Route(tokens) => {
                    let router = self.router.as_ref().ok_or_else(|| {
                        Error::Input(
                            "rank 0 routes, but this rank's engine has no router (run every rank with the same options)"
                                .into(),
                        )
                    })?;
                    router.route(&mut self.session, &tokens)?;
                }
                Control::KeepAlive => {}
                Control::Stop => return Ok(()),
            }
        }
    }

    /// Rank 0 of a replicated engine: broadcasts `control` to the followers
    /// (built only then).
    fn tell(&self, control: impl FnOnce() -> Control) -> Result<(), Error> {
        if let Replica::Leads(ranks) = &self.replica {
            ranks.broadcast(&control().encode())?;
        }
        Ok(())
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
                    .push(Sequence::new(q.id, slot, q.request, q.sampler, q.arrival));
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
