//! [`ResidentExperts`]: a session's device slots for the experts its model
//! keeps in host memory, run by an [`ExpertCache`]; and [`ExpertStats`], what
//! they did.

use std::time::{Duration, Instant};

use seam_bundle::Bundle;

use super::layout::OffloadLayout;
use super::{Counters, ExpertCache, ExpertKey, Future, Load, Outcome};
use crate::device::{Gpu, GpuBuffer};
use crate::error::Error;

/// What a session's expert cache did on the device, summed over its runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpertStats {
    /// The cache's accesses (one per expert a layer's tokens use, per run),
    /// hits, misses, prefetches and evictions.
    pub counters: Counters,
    /// Bytes of expert weights uploaded into slots (demand loads and prefetches).
    pub bytes_uploaded: u64,
    /// Read-backs of routing ids (each waits for the device).
    pub routing_reads: u64,
    /// Expert passes run: one per MoE layer and run, more where a layer's
    /// tokens use more experts than it has slots.
    pub passes: u64,
    /// Time spent waiting for routing ids to come back.
    pub routing_wait: Duration,
    /// Time spent uploading experts a layer was about to run (demand misses).
    pub demand_upload: Duration,
    /// Time spent uploading prefetched experts, while earlier work runs.
    pub prefetch_upload: Duration,
}

impl ExpertStats {
    /// The time runs stood waiting for experts: routing read-backs and
    /// demand uploads (prefetches are issued while submitted work runs).
    pub fn stall(&self) -> Duration {
        self.routing_wait + self.demand_upload
    }
}

/// A session's slots: per offloaded layer and stack, one device buffer of
/// `slots` experts, and the cache deciding which expert each slot holds.
pub(crate) struct ResidentExperts {
    cache: ExpertCache,
    buffers: Vec<Vec<GpuBuffer>>,
    stats: ExpertStats,
}

impl ResidentExperts {
    /// Empty slots for `layout` on `gpu`.
    pub(crate) fn new(gpu: &Gpu, layout: &OffloadLayout) -> Result<Self, Error> {
        let options = layout.options;
        let cache = ExpertCache::new(
            layout.layers.len(),
            layout.slots(),
            options.policy.build(options.prefetch_window),
        )
        .map_err(|e| Error::Experts(e.to_string()))?;
        let slots = layout.slots() as u64;
        let buffers = layout
            .layers
            .iter()
            .map(|l| {
                l.stacks
                    .iter()
                    .map(|s| {
                        let label = format!("{} slots ({slots})", l.name);
                        gpu.create_buffer(&label, slots * s.expert_bytes)
                    })
                    .collect()
            })
            .collect::<Result<_, Error>>()?;
        Ok(ResidentExperts {
            cache,
            buffers,
            stats: ExpertStats::default(),
        })
    }

    /// The slots' buffer of `stack` of cache layer `layer`.
    pub(crate) fn stack(&self, layer: usize, stack: usize) -> Option<&GpuBuffer> {
        self.buffers.get(layer)?.get(stack)
    }

    /// What the slots did so far.
    pub(crate) fn stats(&self) -> ExpertStats {
        ExpertStats {
            counters: self.cache.counters(),
            ..self.stats
        }
    }

    /// Counts a routing read-back that took `wait`.
    pub(crate) fn note_routing_read(&mut self, wait: Duration) {
        self.stats.routing_reads += 1;
        self.stats.routing_wait += wait;
    }

    /// Makes the experts `group` of cache layer `layer` resident together
    /// (none of them evicts another), uploading the misses and the policy's
    /// prefetches from `host`; `future` is what is known of the accesses to
    /// come, starting with `group` itself. Returns each expert's slot.
    pub(crate) fn load_group(
        &mut self,
        gpu: &Gpu,
        host: &Bundle,
        layout: &OffloadLayout,
        layer: usize,
        group: &[u32],
        future: &[ExpertKey],
    ) -> Result<Vec<(u32, u32)>, Error> {
        self.stats.passes += 1;
        let keys: Vec<ExpertKey> = group
            .iter()
            .map(|&e| ExpertKey::new(layer as u32, e))
            .collect();
        let mut slots = Vec::with_capacity(group.len());
        for (i, &key) in keys.iter().enumerate() {
            let upcoming = Future::new(future.get(i + 1..).unwrap_or_default());
            let access = self
                .cache
                .access_pinned(key, &upcoming, &keys)
                .map_err(|e| Error::Experts(e.to_string()))?;
            if let Outcome::Miss(load) = access.outcome {
                let started = Instant::now();
                self.upload(gpu, host, layout, load)?;
                self.stats.demand_upload += started.elapsed();
            }
            let started = Instant::now();
            for load in access.prefetches {
                self.upload(gpu, host, layout, load)?;
            }
            self.stats.prefetch_upload += started.elapsed();
            slots.push((key.expert, access.outcome.slot() as u32));
        }
        Ok(slots)
    }

    /// Copies `load`'s expert from the host stacks into its slot.
    fn upload(
        &mut self,
        gpu: &Gpu,
        host: &Bundle,
        layout: &OffloadLayout,
        load: Load,
    ) -> Result<(), Error> {
        let layer = &layout.layers[load.key.layer as usize];
        for (s, stack) in layer.stacks.iter().enumerate() {
            let size = stack.expert_bytes as usize;
            let start = load.key.expert as usize * size;
            let bytes = host
                .weight_bytes(stack.weight)
                .get(start..start + size)
                .ok_or_else(|| Error::Experts(format!("{} is outside its stack", load.key)))?;
            let buffer = &self.buffers[load.key.layer as usize][s];
            gpu.write(buffer, load.slot as u64 * stack.expert_bytes, bytes)?;
            self.stats.bytes_uploaded += stack.expert_bytes;
        }
        Ok(())
    }
}
