//! Running an entry point in parts around its MoE layers, for a model that
//! keeps experts in host memory ([`crate::ModelOptions::experts`]) or a
//! session recording its routing ([`Session::record_routing`]).
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
use crate::device::{Gpu, GpuBuffer};
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

    /// Whether runs of entry `index` are submitted in parts around its MoE
    /// layers (some are offloaded, or the routing is recorded).
    pub(super) fn splits(&self, index: usize) -> bool {
        let point = &self.model.loaded.manifest.entry_points[index];
        let offloaded = self
            .model
            .loaded
            .offload
            .as_ref()
            .is_some_and(|h| h.layout.layer_of[index].iter().any(Option::is_some));
        offloaded || (self.routing.is_some() && !point.expert_layers.is_empty())
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
        let (mut next, mut submits) = (0, 0);
        for i in 0..layers.len() {
            let record = &point.expert_layers[layers[i].record];
            if layers[i].routing.is_none() {
                // Submit only up to the dispatch that computes the ids, so
                // what follows it (a layer's attention) is queued right after
                // the read-back and computes while the experts upload.
                let ready = record.ids_ready.map_or(next, |d| before(d + 1).max(next));
                gpu.submit_range(recorded, next..ready)?;
                submits += 1;
                next = ready;
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
            gpu.submit_range(recorded, next..plan_end)?;
            submits += 1;
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
                gpu.submit_range(recorded, plan_end..experts_end)?;
                submits += 1;
            }
            next = experts_end;
        }
        gpu.submit_range(recorded, next..recorded.dispatches())?;
        if let Some(log) = self.routing.as_mut() {
            log.extend(layers.into_iter().filter_map(|l| {
                Some(LayerRouting {
                    layer: l.record,
                    ids: l.routing?.0,
                })
            }));
        }
        Ok(submits + 1)
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
    let at = |e: &SizeExpr| -> Result<usize, Error> {
        let v = e.eval(&|d| dims.get(d).copied())?;
        usize::try_from(v).map_err(|_| internal("a size over the address space"))
    };
    let pairs = at(&record.pairs)?;
    let blocks = at(&record.blocks)?;
    let values: Vec<i32> = gpu.read_range(ids, 0, pairs)?;
    let table = BlockTable::new(&values, record.experts, record.block_rows, blocks);
    Ok((values, table))
}

fn internal(what: &str) -> Error {
    Error::Input(format!("internal: {what}"))
}
