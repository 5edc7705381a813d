//! Running an entry point of a model that keeps experts in host memory
//! ([`crate::ModelOptions::experts`]): the recorded dispatches are submitted
//! in parts around each offloaded MoE layer. Before a layer's expert kernels
//! the run reads the routing back (once for every layer whose ids are ready:
//! a pre-gating router's give every layer at once, an in-layer router's only
//! its own), makes the experts the layer's tokens use resident in its slots
//! through the expert cache (the rest of the known routing is the cache's
//! future), writes the plan's block table in slots and submits the expert
//! kernels. A layer whose tokens use more experts than it has slots runs its
//! expert kernels once per group of experts, each block computed by exactly
//! one pass, so outputs are those of the all-resident run bit for bit.

use std::sync::Arc;
use std::time::Instant;

use seam_bundle::{EntryPoint, ExpertLayer};
use seam_core::SizeExpr;

use super::dims::DimValues;
use super::{runs, Session};
use crate::device::GpuBuffer;
use crate::error::Error;
use crate::experts::{BlockTable, ExpertKey};

impl Session {
    /// Whether runs of entry `index` go through the expert slots.
    pub(super) fn offloads(&self, index: usize) -> bool {
        self.model
            .loaded
            .offload
            .as_ref()
            .is_some_and(|h| h.layout.layer_of[index].iter().any(Option::is_some))
    }

    /// Submits entry `index`'s recorded dispatches (those `skip` leaves) in
    /// parts around its offloaded MoE layers, making each layer's experts
    /// resident first; returns the number of submissions. The last one is not
    /// waited for.
    pub(super) fn submit_offloaded(
        &mut self,
        index: usize,
        skip: &[bool],
        dims: &DimValues,
    ) -> Result<usize, Error> {
        let model = Arc::clone(&self.model.loaded);
        let host = model
            .offload
            .as_ref()
            .ok_or_else(|| internal("no experts in host memory"))?;
        let point = &model.manifest.entry_points[index];
        let before = |d: u32| items_before(point, skip, d as usize);
        let layers: Vec<(usize, usize)> = host.layout.layer_of[index]
            .iter()
            .enumerate()
            .filter_map(|(k, l)| l.map(|l| (k, l)))
            .filter(|&(k, _)| {
                runs(
                    &point.dispatches[point.expert_layers[k].plan as usize],
                    skip,
                )
            })
            .collect();
        let tables: Vec<GpuBuffer> = layers
            .iter()
            .map(|&(k, _)| self.buffer(point.expert_layers[k].block_expert).cloned())
            .collect::<Result<_, _>>()?;
        let ids: Vec<GpuBuffer> = layers
            .iter()
            .map(|&(k, _)| self.buffer(point.expert_layers[k].ids).cloned())
            .collect::<Result<_, _>>()?;
        let recorded = &self
            .recorded
            .get(&(index, skip.to_vec()))
            .ok_or_else(|| internal("dispatches were not recorded"))?
            .1;
        let experts = self
            .experts
            .as_mut()
            .ok_or_else(|| internal("no expert slots"))?;
        let slots = host.layout.slots();
        let gpu = &model.gpu;
        let mut routing: Vec<Option<BlockTable>> = vec![None; layers.len()];
        let (mut next, mut submits) = (0, 0);
        for (i, &(k, layer)) in layers.iter().enumerate() {
            let record = &point.expert_layers[k];
            let plan_end = before(record.plan + 1);
            let experts_end = before(record.experts_end);
            if routing[i].is_none() {
                // Submit only up to the dispatch that computes the ids, so
                // what follows it (a layer's attention) is queued right after
                // the read-back and computes while the experts upload.
                let ready = record.ids_ready.map_or(next, |d| before(d + 1).max(next));
                gpu.submit_range(recorded, next..ready)?;
                submits += 1;
                next = ready;
                let started = Instant::now();
                for (j, &(m, _)) in layers.iter().enumerate().skip(i) {
                    let r = &point.expert_layers[m];
                    let ready = r.ids_ready.is_none_or(|d| before(d + 1) <= next);
                    if ready && routing[j].is_none() {
                        routing[j] = Some(read_table(gpu, &ids[j], r, dims)?);
                    }
                }
                experts.note_routing_read(started.elapsed());
            }
            gpu.submit_range(recorded, next..plan_end)?;
            submits += 1;
            let table = routing[i]
                .as_ref()
                .ok_or_else(|| internal("routing not ready at its layer"))?;
            // What is known of the accesses to come: this layer's experts,
            // then those of every later layer whose routing is known.
            let future: Vec<ExpertKey> = layers[i..]
                .iter()
                .zip(&routing[i..])
                .filter_map(|(&(_, l), t)| t.as_ref().map(|t| (l, t)))
                .flat_map(|(l, t)| t.used.iter().map(move |&e| ExpertKey::new(l as u32, e)))
                .collect();
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

/// Reads `record`'s routing ids back from `ids` and computes its block table.
fn read_table(
    gpu: &crate::device::Gpu,
    ids: &GpuBuffer,
    record: &ExpertLayer,
    dims: &DimValues,
) -> Result<BlockTable, Error> {
    let at = |e: &SizeExpr| -> Result<usize, Error> {
        let v = e.eval(&|d| dims.get(d).copied())?;
        usize::try_from(v).map_err(|_| internal("a size over the address space"))
    };
    let pairs = at(&record.pairs)?;
    let blocks = at(&record.blocks)?;
    let values: Vec<i32> = gpu.read_range(ids, 0, pairs)?;
    Ok(BlockTable::new(
        &values,
        record.experts,
        record.block_rows,
        blocks,
    ))
}

fn internal(what: &str) -> Error {
    Error::Input(format!("internal: {what}"))
}
