//! Running an entry point in parts: around its MoE layers, for a model that
//! keeps experts in host memory ([`crate::ModelOptions::experts`]) or a
//! session recording its routing ([`Session::record_routing`]); and around
//! its reductions across ranks, for a session given a communicator
//! ([`Session::set_communicator`]): at a reduction's start the partial is
//! read back and handed to the communicator, the dispatches up to its wait
//! are submitted while the ranks sum, and at the wait the sum is written back.
//!
//! Before a layer's expert kernels the run reads the routing back (once for
//! every layer whose ids are ready: a pre-gating router's give every layer at
//! once, an in-layer router's only its own). For an offloaded layer it then
//! makes the experts the layer's tokens use resident in its slots through the
//! expert cache (the rest of the known routing is the cache's future), writes
//! the plan's block table in slots and submits the expert kernels. A layer
//! whose tokens use more experts than it has slots runs its expert kernels
//! once per group of experts, each block computed by exactly one pass, so
//! outputs are those of the all-resident run bit for bit.

use std::sync::Arc;
use std::time::Instant;

use seam_bundle::{EntryPoint, ExpertLayer};
use seam_core::SizeExpr;

use super::dims::DimValues;
use super::{runs, Session};
use crate::collective::{CollectiveStats, Communicator, PendingSum};
use crate::device::{Gpu, GpuBuffer, Recorded};
use crate::error::Error;
use crate::experts::{BlockTable, ExpertKey};

/// The routing of one MoE layer in one run, as [`Session::take_routing`]
/// returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRouting {
    /// The MoE layer, counted from 0 in dispatch order.
    pub layer: usize,
    /// The expert ids of the run's tokens, `choices` per token in token order
    /// (ids outside the layer's experts are dropped by the kernels).
    pub ids: Vec<i32>,
}

/// One MoE layer of the run: its record, its cache layer when offloaded, and
/// its routing once read.
struct Layer {
    record: usize,
    cache: Option<usize>,
    routing: Option<(Vec<i32>, BlockTable)>,
}

impl Session {
    /// Records the routing of every MoE layer in each run from now on (`on`),
    /// or stops; [`Session::take_routing`] hands the records over. Recording
    /// reads each layer's ids back as an offloaded run does, so runs are
    /// submitted in parts.
    pub fn record_routing(&mut self, on: bool) {
        self.routing = on.then(Vec::new);
    }

    /// The routing recorded since the last call, in run and layer order.
    pub fn take_routing(&mut self) -> Vec<LayerRouting> {
        self.routing
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether runs of entry `index` are submitted in parts: around its MoE
    /// layers (some are offloaded, or the routing is recorded) or its
    /// reductions (with a communicator of several ranks).
    pub(super) fn splits(&self, index: usize) -> bool {
        let point = &self.model.loaded.manifest.entry_points[index];
        let offloaded = self
            .model
            .loaded
            .offload
            .as_ref()
            .is_some_and(|h| h.layout.layer_of[index].iter().any(Option::is_some));
        offloaded
            || (self.routing.is_some() && !point.expert_layers.is_empty())
            || (self.ranks() > 1 && !point.collectives.is_empty())
    }

    /// The ranks this session runs with (1 without a communicator).
    pub(super) fn ranks(&self) -> usize {
        self.communicator.as_ref().map_or(1, |c| c.size())
    }

    /// Submits entry `index`'s recorded dispatches (those `skip` leaves) in
    /// parts around its MoE layers, reading routing back and making each
    /// offloaded layer's experts resident first; returns the number of
    /// submissions. The last one is not waited for.
    pub(super) fn submit_split(
        &mut self,
        index: usize,
        skip: &[bool],
        dims: &DimValues,
    ) -> Result<usize, Error> {
        let model = Arc::clone(&self.model.loaded);
        let point = &model.manifest.entry_points[index];
        let before = |d: u32| items_before(point, skip, d as usize);
        let recording = self.routing.is_some();
        let mut layers: Vec<Layer> = (0..point.expert_layers.len())
            .filter(|&k| {
                runs(
                    &point.dispatches[point.expert_layers[k].plan as usize],
                    skip,
                )
            })
            .map(|k| Layer {
                record: k,
                cache: model
                    .offload
                    .as_ref()
                    .and_then(|h| h.layout.layer_of[index][k]),
                routing: None,
            })
            .filter(|l| recording || l.cache.is_some())
            .collect();
        let buffers = |pick: fn(&ExpertLayer) -> u32| {
            layers
                .iter()
                .map(|l| self.buffer(pick(&point.expert_layers[l.record])).cloned())
                .collect::<Result<Vec<GpuBuffer>, Error>>()
        };
        let tables = buffers(|r| r.block_expert)?;
        let ids = buffers(|r| r.ids)?;
        let recorded = &self
            .recorded
            .get(&(index, skip.to_vec()))
            .ok_or_else(|| internal("dispatches were not recorded"))?
            .1;
        let gpu = &model.gpu;
        let comm = self.communicator.as_deref().filter(|c| c.size() > 1);
        let mut run = Runner::new(gpu, recorded, comm, point, skip, dims, |b| {
            self.buffer(b).cloned()
        })?;
        for i in 0..layers.len() {
            let record = &point.expert_layers[layers[i].record];
            if layers[i].routing.is_none() {
                // Submit only up to the dispatch that computes the ids, so
                // what follows it (a layer's attention) is queued right after
                // the read-back and computes while the experts upload.
                let ready = record
                    .ids_ready
                    .map_or(run.next, |d| before(d + 1).max(run.next));
                run.to(ready)?;
                let next = run.next;
                let started = Instant::now();
                for (j, layer) in layers.iter_mut().enumerate().skip(i) {
                    let r = &point.expert_layers[layer.record];
                    let ready = r.ids_ready.is_none_or(|d| before(d + 1) <= next);
                    if ready && layer.routing.is_none() {
                        layer.routing = Some(read_routing(gpu, &ids[j], r, dims)?);
                    }
                }
                if let Some(experts) = self.experts.as_mut() {
                    experts.note_routing_read(started.elapsed());
                }
            }
            let Some(layer) = layers[i].cache else {
                continue;
            };
            let (plan_end, experts_end) = (before(record.plan + 1), before(record.experts_end));
            run.to(plan_end)?;
            run.refuse_inside(plan_end..experts_end, &record.name)?;
            // What is known of the accesses to come: this layer's experts,
            // then those of every later offloaded layer whose routing is known.
            let future: Vec<ExpertKey> = layers[i..]
                .iter()
                .filter_map(|l| Some((l.cache?, &l.routing.as_ref()?.1)))
                .flat_map(|(c, t)| t.used.iter().map(move |&e| ExpertKey::new(c as u32, e)))
                .collect();
            let (host, experts) = model
                .offload
                .as_ref()
                .zip(self.experts.as_mut())
                .ok_or_else(|| internal("no expert slots"))?;
            let table = &layers[i]
                .routing
                .as_ref()
                .ok_or_else(|| internal("routing not ready at its layer"))?
                .1;
            let slots = host.layout.slots();
            for (p, group) in table.used.chunks(slots).enumerate() {
                let known = &future[p * slots..];
                let placed =
                    experts.load_group(gpu, &host.bundle, &host.layout, layer, group, known)?;
                let words =
                    table.in_slots(|e| placed.iter().find(|(x, _)| *x == e).map(|&(_, slot)| slot));
                gpu.write(&tables[i], 0, &words)?;
                run.again(plan_end..experts_end)?;
            }
            run.next = experts_end;
        }
        run.to(recorded.dispatches())?;
        let (submits, stats) = (run.submits, run.stats);
        self.collective_stats.add(&stats);
        if let Some(log) = self.routing.as_mut() {
            log.extend(layers.into_iter().filter_map(|l| {
                Some(LayerRouting {
                    layer: l.record,
                    ids: l.routing?.0,
                })
            }));
        }
        Ok(submits)
    }
}

/// Submits an entry's recorded dispatches in ranges, carrying out the
/// reductions whose start or wait falls on the way.
struct Runner<'a> {
    gpu: &'a Gpu,
    recorded: &'a Recorded,
    comm: Option<&'a dyn Communicator>,
    /// The first dispatch not yet submitted.
    next: usize,
    submits: usize,
    /// `(position, reduction, is_wait)`, by position, each start before its wait.
    events: Vec<(usize, usize, bool)>,
    cursor: usize,
    /// Per reduction: its buffer, its elements and the sum under way.
    buffers: Vec<(GpuBuffer, usize)>,
    pending: Vec<Option<(Box<dyn PendingSum>, Instant)>>,
    stats: CollectiveStats,
}

impl<'a> Runner<'a> {
    /// A runner over `recorded`, the dispatches of `point` that `skip` leaves;
    /// reductions only with a communicator.
    fn new(
        gpu: &'a Gpu,
        recorded: &'a Recorded,
        comm: Option<&'a dyn Communicator>,
        point: &EntryPoint,
        skip: &[bool],
        dims: &DimValues,
        buffer: impl Fn(u32) -> Result<GpuBuffer, Error>,
    ) -> Result<Self, Error> {
        let collectives = if comm.is_some() {
            &point.collectives[..]
        } else {
            &[]
        };
        let mut events = Vec::new();
        let mut buffers = Vec::new();
        for (c, r) in collectives.iter().enumerate() {
            events.push((items_before(point, skip, r.start as usize), c, false));
            events.push((items_before(point, skip, r.wait as usize), c, true));
            buffers.push((buffer(r.buffer)?, at(&r.elements, dims)?));
        }
        events.sort_by_key(|&(p, c, wait)| (p, wait, c));
        Ok(Runner {
            gpu,
            recorded,
            comm,
            next: 0,
            submits: 0,
            events,
            cursor: 0,
            pending: (0..buffers.len()).map(|_| None).collect(),
            buffers,
            stats: CollectiveStats::default(),
        })
    }

    /// Submits up to dispatch `end`, starting and waiting for the reductions
    /// on the way.
    fn to(&mut self, end: usize) -> Result<(), Error> {
        while let Some(&(at, c, wait)) = self.events.get(self.cursor).filter(|e| e.0 <= end) {
            self.submit(at)?;
            if wait {
                self.wait(c)?;
            } else {
                self.start(c)?;
            }
            self.cursor += 1;
        }
        self.submit(end)
    }

    /// Submits dispatches `range` again (an expert pass), leaving `next`.
    fn again(&mut self, range: std::ops::Range<usize>) -> Result<(), Error> {
        self.gpu.submit_range(self.recorded, range)?;
        self.submits += 1;
        Ok(())
    }

    /// Refuses a reduction starting or waited for inside `range` (an MoE
    /// layer's expert dispatches, which may run more than once).
    fn refuse_inside(&self, range: std::ops::Range<usize>, layer: &str) -> Result<(), Error> {
        if self.events[self.cursor..]
            .iter()
            .any(|e| range.start < e.0 && e.0 < range.end)
        {
            return Err(Error::Experts(format!(
                "a reduction across ranks falls inside the expert dispatches of `{layer}`"
            )));
        }
        Ok(())
    }

    fn submit(&mut self, end: usize) -> Result<(), Error> {
        if end > self.next {
            self.gpu.submit_range(self.recorded, self.next..end)?;
            self.submits += 1;
            self.next = end;
        }
        Ok(())
    }

    /// Reads reduction `c`'s partial back and starts summing it.
    fn start(&mut self, c: usize) -> Result<(), Error> {
        let comm = self
            .comm
            .ok_or_else(|| internal("a reduction without ranks"))?;
        let (buffer, elements) = &self.buffers[c];
        let started = Instant::now();
        let partial: Vec<f32> = self.gpu.read_range(buffer, 0, *elements)?;
        self.stats.read_back += started.elapsed();
        self.stats.reductions += 1;
        self.stats.bytes += 4 * *elements as u64;
        self.pending[c] = Some((comm.start_sum(partial)?, Instant::now()));
        Ok(())
    }

    /// Waits for reduction `c`'s sum and writes it back.
    fn wait(&mut self, c: usize) -> Result<(), Error> {
        let (pending, since) = self.pending[c]
            .take()
            .ok_or_else(|| internal("a reduction waited for before it started"))?;
        let started = Instant::now();
        self.stats.overlapped += started - since;
        let sum = pending.wait()?;
        self.stats.blocked += started.elapsed();
        self.gpu.write(&self.buffers[c].0, 0, &sum)
    }
}
/// The recorded items before dispatch `d` of `point` (dispatches skipped by
/// cache reuse are not recorded).
fn items_before(point: &EntryPoint, skip: &[bool], d: usize) -> usize {
    point.dispatches[..d.min(point.dispatches.len())]
        .iter()
        .filter(|x| runs(x, skip))
        .count()
}

/// Reads `record`'s routing ids back from `ids`, with its block table.
fn read_routing(
    gpu: &Gpu,
    ids: &GpuBuffer,
    record: &ExpertLayer,
    dims: &DimValues,
) -> Result<(Vec<i32>, BlockTable), Error> {
    let pairs = at(&record.pairs, dims)?;
    let blocks = at(&record.blocks, dims)?;
    let values: Vec<i32> = gpu.read_range(ids, 0, pairs)?;
    let table = BlockTable::new(&values, record.experts, record.block_rows, blocks);
    Ok((values, table))
}

/// `e` at this run's dims, as a count.
fn at(e: &SizeExpr, dims: &DimValues) -> Result<usize, Error> {
    let v = e.eval(&|d| dims.get(d).copied())?;
    usize::try_from(v).map_err(|_| internal("a size over the address space"))
}

fn internal(what: &str) -> Error {
    Error::Input(format!("internal: {what}"))
}
