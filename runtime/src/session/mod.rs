//! Running entry points: bind dims from the inputs (and the states' length dim
//! from the stored length), upload, replay the recorded dispatches, read the
//! outputs back.
//!
//! A session owns its activation buffers and the model's session states
//! (KV caches): a bundle's `prefill` and `decode` run in one session share the
//! states, which stay on the device between runs; [`Session::reset`] starts a
//! new sequence. It also keeps the values of the bundle's caches: a run may
//! reuse them ([`Session::run_reusing`]), skipping the dispatches that only
//! compute them.

mod dims;
mod sampled;
mod split;

pub use sampled::{Sampled, SampledRows};
pub use split::LayerRouting;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collective::{CollectiveStats, Communicator};
use crate::device::{BufferView, GpuBuffer, Recorded};
use crate::entry::Entry;
use crate::error::Error;
use crate::experts::{ExpertStats, ResidentExperts};
use crate::generate::DeviceSampler;
use crate::model::{LoadedModel, Model};
use crate::tensor::HostTensor;
use crate::timing::{DispatchTiming, RunOutput, RunTiming, Timing};
use dims::{bind_dims, dispatch_sizes, eval_shape, DimValues};
use seam_bundle::{BufferRange, BufferRole, EntryPoint};

/// The largest input [`Session::warm_up`] makes (256 MiB; every dim 1): far above any
/// real model's, small enough that a hostile bundle cannot make it allocate much.
const MAX_WARM_UP_INPUT_BYTES: usize = 256 << 20;

/// A loaded model's buffers for running its entry points, and the session
/// states. Each entry point's dispatches are recorded once, on its first run,
/// and replayed; a run with other dim sizes only rewrites sizes.
///
/// A session holds the model it was created from, so an app may keep both in
/// one struct. Thread safety: `Send + Sync`; a run takes `&mut self`, so one
/// session runs one entry point at a time — give each thread its own session
/// (each has its own activations and states).
pub struct Session {
    model: Model,
    slots: Vec<Slot>,
    /// Recorded dispatches per entry point and skipped caches (one flag per
    /// manifest cache), with the dims they were recorded at.
    recorded: HashMap<(usize, Vec<bool>), (DimValues, Recorded)>,
    /// Which caches hold a value computed in this session.
    kept: Vec<bool>,
    length: u64,
    sampler: Option<DeviceSampler>,
    /// The device slots of the experts the model keeps in host memory.
    experts: Option<ResidentExperts>,
    /// The routing recorded since it was last taken, when recording.
    routing: Option<Vec<LayerRouting>>,
    /// The ranks this session's reductions sum across.
    communicator: Option<Arc<dyn Communicator>>,
    collective_stats: CollectiveStats,
}

/// Where a bundle buffer lives: a model weight, or a session's own buffer
/// (activations, or a state); both are allocated when an entry point that
/// uses them first runs, so a session running `decode` alone never holds
/// `prefill`'s buffers, and one running the batched `step` never holds the
/// single-sequence caches.
enum Slot {
    Weight(usize),
    /// An expert stack kept in host memory: the session's slots of stack
    /// `.1` of cache layer `.0`, bound whole.
    Experts(usize, usize),
    Owned(GpuBuffer),
    Unallocated,
}

impl Session {
    pub(crate) fn new(model: Model) -> Result<Session, Error> {
        let loaded = Arc::clone(&model.loaded);
        let manifest = &loaded.manifest;
        let offload = loaded.offload.as_ref();
        let experts = offload
            .map(|h| ResidentExperts::new(&loaded.gpu, &h.layout))
            .transpose()?;
        let stack_of = |w: u32| offload.and_then(|h| h.layout.stack_of[w as usize]);
        let slots = manifest
            .buffers
            .iter()
            .map(|b| match b.role {
                BufferRole::Weight(w) => match stack_of(w) {
                    Some((layer, stack)) => Slot::Experts(layer, stack),
                    None => Slot::Weight(w as usize),
                },
                // wgpu zero-initialises buffers, so states start empty
                // whenever an entry using them first allocates them.
                BufferRole::State | BufferRole::Cache | BufferRole::Activation => Slot::Unallocated,
            })
            .collect();
        let kept = vec![false; manifest.caches.len()];
        Ok(Session {
            model,
            slots,
            recorded: HashMap::new(),
            kept,
            length: 0,
            sampler: None,
            experts,
            routing: None,
            communicator: None,
            collective_stats: CollectiveStats::default(),
        })
    }

    /// Runs this session as one rank of a shard set: its bundle's reductions
    /// ([`seam_bundle::Collective`]) sum across `communicator`'s ranks, each
    /// overlapping the dispatches that do not read it. Every rank must run
    /// the same entries on the same dims in the same order.
    pub fn set_communicator(&mut self, communicator: Arc<dyn Communicator>) {
        self.communicator = Some(communicator);
    }

    /// Refuses to run a shard set's rank without its ranks: its reductions
    /// would be the identity and its outputs wrong.
    fn check_ranks(&self) -> Result<(), Error> {
        let Some(s) = &self.model.loaded.manifest.shard else {
            return Ok(());
        };
        let (rank, ranks) = match &self.communicator {
            Some(c) => (c.rank(), c.size()),
            None => (0, 1),
        };
        if (s.rank as usize, s.ranks as usize) != (rank, ranks) {
            return Err(Error::Shard(format!(
                "the bundle is rank {} of a {}-rank shard set, but this session runs as rank {rank} of {ranks} \
                 (run every rank's bundle together, e.g. `mpirun -np {}`)",
                s.rank, s.ranks, s.ranks
            )));
        }
        Ok(())
    }

    /// What this session's reductions cost so far.
    pub fn collective_stats(&self) -> CollectiveStats {
        self.collective_stats
    }

    /// What the expert slots did so far, for a model loaded with
    /// [`crate::ModelOptions::experts`].
    pub fn expert_stats(&self) -> Option<ExpertStats> {
        self.experts.as_ref().map(ResidentExperts::stats)
    }

    /// The model this session runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Positions stored in the session's states (the next token's position).
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The most positions the states hold (their length dim's bound), if the
    /// bundle has states.
    pub fn max_length(&self) -> Option<u64> {
        self.model.loaded.dim_bound(self.length_dim()?)
    }

    /// The states' length dim (`kv_len`), if the bundle has states.
    pub fn length_dim(&self) -> Option<&str> {
        self.model
            .manifest()
            .entry_points
            .iter()
            .find_map(|e| e.state_length.as_ref())
            .map(|l| l.dim.as_str())
    }

    /// Starts a new sequence: length 0, every state zeroed and every cache
    /// emptied (the next run must compute it).
    pub fn reset(&mut self) -> Result<(), Error> {
        self.kept.fill(false);
        for st in &self.model.loaded.manifest.states {
            // A state no entry has used yet is still unallocated (and will
            // start zeroed).
            if let Slot::Owned(b) = &self.slots[st.buffer as usize] {
                let zeros = vec![0u8; b.size() as usize];
                self.model.loaded.gpu.write(b, 0, &zeros)?;
            }
        }
        self.length = 0;
        Ok(())
    }

    /// Runs every entry point once on the smallest inputs (every symbolic dim 1,
    /// every element zero), then [`Session::reset`]s. Some drivers compile a
    /// kernel at its first dispatch rather than when its pipeline is created
    /// (lavapipe generates its shader variants then: seconds per kernel without
    /// Mesa's cache), so an app that times its runs warms a session up first.
    /// It also allocates every entry's buffers and, for a bundle with states
    /// (one that generates), builds the device sampling kernel
    /// ([`Session::run_sampled`]).
    pub fn warm_up(&mut self) -> Result<(), Error> {
        let names: Vec<String> = self
            .model
            .manifest()
            .entry_points
            .iter()
            .map(|e| e.name.clone())
            .collect();
        for name in names {
            let entry = self.model.entry(&name)?;
            let inputs = entry
                .inputs()
                .iter()
                .map(|io| {
                    let shape = io
                        .shape
                        .iter()
                        .map(|e| Ok(e.eval(&|_| Some(1))? as usize))
                        .collect::<Result<Vec<usize>, Error>>()?;
                    let bytes = shape
                        .iter()
                        .try_fold(io.dtype.size_bytes(), |n, &d| n.checked_mul(d))
                        .filter(|&n| n <= MAX_WARM_UP_INPUT_BYTES)
                        .ok_or_else(|| {
                            Error::Input(format!(
                                "warm-up input `{}` of `{name}` would exceed {MAX_WARM_UP_INPUT_BYTES} bytes",
                                io.name
                            ))
                        })?;
                    HostTensor::from_bytes(io.dtype, shape, vec![0; bytes])
                })
                .collect::<Result<Vec<_>, Error>>()?;
            self.run(&entry, &inputs)?;
        }
        if self.length_dim().is_some() {
            self.device_sampler()?;
        }
        self.reset()
    }

    /// Runs `entry` (e.g. `prefill`, then `decode`, on this session's states)
    /// on `inputs` (in signature order, states excluded) and returns its
    /// outputs (states excluded).
    pub fn run(&mut self, entry: &Entry, inputs: &[HostTensor]) -> Result<Vec<HostTensor>, Error> {
        Ok(self.run_with(entry, inputs, Timing::Wall)?.tensors)
    }

    /// Like [`Session::run`], also measuring what `timing` asks for.
    pub fn run_with(
        &mut self,
        entry: &Entry,
        inputs: &[HostTensor],
        timing: Timing,
    ) -> Result<RunOutput, Error> {
        self.run_reusing_with(entry, inputs, &[], timing)
    }

    /// Like [`Session::run`], but the caches named in `reuse` (keys of the
    /// bundle's `cache` ops) keep the value the last run computing them
    /// stored, and the dispatches only they need are skipped; every other
    /// cache of the entry point is recomputed and kept.
    pub fn run_reusing(
        &mut self,
        entry: &Entry,
        inputs: &[HostTensor],
        reuse: &[&str],
    ) -> Result<Vec<HostTensor>, Error> {
        Ok(self
            .run_reusing_with(entry, inputs, reuse, Timing::Wall)?
            .tensors)
    }

    /// [`Session::run_reusing`], also measuring what `timing` asks for.
    pub fn run_reusing_with(
        &mut self,
        entry: &Entry,
        inputs: &[HostTensor],
        reuse: &[&str],
        timing: Timing,
    ) -> Result<RunOutput, Error> {
        let started = Instant::now();
        let skip = self.skipped_caches(reuse)?;
        let (dims, length) = self.prepare(entry, inputs, &skip)?;
        let index = entry.index();
        let mut measured = self.submit(index, &skip, &dims, timing)?;
        if let Some(length) = length {
            self.length = length;
        }
        self.note_computed(index, &skip);
        let model = Arc::clone(&self.model.loaded);
        let tensors = self.read_outputs(&model.manifest.entry_points[index], &dims)?;
        measured.wall = started.elapsed();
        Ok(RunOutput {
            tensors,
            timing: measured,
        })
    }

    /// Marks the caches a run of entry `index` reusing `skip` computed as kept.
    pub(super) fn note_computed(&mut self, index: usize, skip: &[bool]) {
        let point = &self.model.loaded.manifest.entry_points[index];
        for d in &point.dispatches {
            if let Some(c) = d.cache.filter(|&c| !skip[c as usize]) {
                self.kept[c as usize] = true;
            }
        }
    }

    /// One flag per manifest cache: whether this run reuses it.
    pub(super) fn skipped_caches(&self, reuse: &[&str]) -> Result<Vec<bool>, Error> {
        let caches = &self.model.loaded.manifest.caches;
        let mut skip = vec![false; caches.len()];
        for key in reuse {
            let Some(c) = caches.iter().position(|c| c.key == *key) else {
                let known: Vec<&str> = caches.iter().map(|c| c.key.as_str()).collect();
                return Err(Error::Cache(format!(
                    "the bundle has no cache `{key}` (its caches: {})",
                    known.join(", ")
                )));
            };
            if !self.kept[c] {
                return Err(Error::Cache(format!(
                    "cache `{key}` is reused but holds no value yet: the first run must compute it"
                )));
            }
            skip[c] = true;
        }
        Ok(skip)
    }

    /// Everything a run of `entry` does before its submission: checks that it
    /// is this model's, binds the dims (returned, with the states' length
    /// after the run), allocates, records and uploads the inputs.
    fn prepare(
        &mut self,
        entry: &Entry,
        inputs: &[HostTensor],
        skip: &[bool],
    ) -> Result<(DimValues, Option<u64>), Error> {
        if !entry.model().same_as(&self.model) {
            return Err(Error::ForeignEntry {
                name: entry.name().to_string(),
            });
        }
        let model = Arc::clone(&self.model.loaded);
        self.check_ranks()?;
        let index = entry.index();
        let point = &model.manifest.entry_points[index];
        let (dims, length) = bind_dims(&model, point, inputs, self.length)?;
        self.allocate_for(point)?;
        self.record(index, skip, &dims)?;
        for (io, t) in point.inputs.iter().zip(inputs) {
            model.gpu.write(self.buffer(io.buffer)?, 0, t.bytes())?;
        }
        Ok((dims, length))
    }

    /// Submits entry `index`'s recorded dispatches as `timing` asks and waits;
    /// the returned wall time is left for the caller to fill in. A run with
    /// experts in host memory, or recording its routing, is submitted in
    /// parts around its MoE layers and measures wall time only.
    fn submit(
        &mut self,
        index: usize,
        skip: &[bool],
        dims: &DimValues,
        timing: Timing,
    ) -> Result<RunTiming, Error> {
        let gpu = Arc::clone(&self.model.loaded.gpu);
        let dispatches = self.recorded(index, skip)?.dispatches();
        let mut measured = RunTiming {
            wall: Duration::ZERO,
            device: None,
            dispatches,
            submits: 1,
            per_dispatch: Vec::new(),
        };
        if self.splits(index) {
            measured.submits = self.submit_split(index, skip, dims)?;
            gpu.wait()?;
            return Ok(measured);
        }
        let recorded = self.recorded(index, skip)?;
        match timing {
            Timing::Wall => gpu.run(recorded)?,
            Timing::Device => measured.device = gpu.run_timed(recorded)?,
            Timing::PerDispatch => {
                let manifest = &self.model.loaded.manifest;
                let point = &manifest.entry_points[index];
                let kernel = |d: &seam_bundle::Dispatch| {
                    manifest.kernels[d.kernel as usize].kernel.name.clone()
                };
                let run = point.dispatches.iter().filter(|d| runs(d, skip));
                if let Some(times) = gpu.run_each_timed(recorded)? {
                    // One submission, each dispatch timed where it ran.
                    measured.per_dispatch = run
                        .zip(times)
                        .map(|(d, t)| DispatchTiming {
                            kernel: kernel(d),
                            wall: t,
                            device: Some(t),
                        })
                        .collect();
                    measured.device =
                        Some(measured.per_dispatch.iter().filter_map(|d| d.device).sum());
                    return Ok(measured);
                }
                for (i, d) in run.enumerate() {
                    let started = Instant::now();
                    let device = gpu.run_dispatch_timed(recorded, i)?;
                    measured.per_dispatch.push(DispatchTiming {
                        kernel: kernel(d),
                        wall: started.elapsed(),
                        device,
                    });
                }
                measured.device = measured.per_dispatch.iter().map(|d| d.device).sum();
                measured.submits = dispatches;
            }
        }
        Ok(measured)
    }

    /// Reads `entry`'s outputs back at `dims`.
    fn read_outputs(&self, entry: &EntryPoint, dims: &DimValues) -> Result<Vec<HostTensor>, Error> {
        entry
            .outputs
            .iter()
            .map(|io| {
                let shape = eval_shape(&io.shape, dims)?;
                let n: usize = shape.iter().product();
                let bytes: Vec<u8> = self.model.loaded.gpu.read_range(
                    self.buffer(io.buffer)?,
                    0,
                    n * io.dtype.size_bytes(),
                )?;
                HostTensor::from_bytes(io.dtype, shape, bytes)
            })
            .collect()
    }

    /// Allocates the activation and state buffers `entry` uses that are not yet allocated.
    fn allocate_for(&mut self, entry: &EntryPoint) -> Result<(), Error> {
        let used = entry
            .dispatches
            .iter()
            .flat_map(|d| d.buffers.iter().map(|r| r.buffer))
            .chain(
                entry
                    .inputs
                    .iter()
                    .chain(&entry.outputs)
                    .map(|io| io.buffer),
            );
        for i in used {
            if matches!(self.slots[i as usize], Slot::Unallocated) {
                self.slots[i as usize] = Slot::Owned(allocate(&self.model.loaded, i as usize)?);
            }
        }
        Ok(())
    }

    /// Records entry `index`'s dispatches (those `skip` leaves) on first use;
    /// later, rewrites their sizes when the dims change. The one place
    /// dispatches are recorded.
    fn record(&mut self, index: usize, skip: &[bool], dims: &DimValues) -> Result<(), Error> {
        let model = Arc::clone(&self.model.loaded);
        let entry = &model.manifest.entry_points[index];
        let kept = |(d, sizes): (&seam_bundle::Dispatch, _)| runs(d, skip).then_some(sizes);
        let key = (index, skip.to_vec());
        if let Some((recorded_dims, recorded)) = self.recorded.get_mut(&key) {
            if recorded_dims != dims {
                let all = dispatch_sizes(entry, dims)?;
                let owned: Vec<_> = entry.dispatches.iter().zip(all).filter_map(kept).collect();
                let sizes: Vec<Vec<(&str, u32)>> = owned.iter().map(|s| as_refs(s)).collect();
                recorded.update_many(&model.gpu, sizes.iter().map(|s| s.as_slice()).enumerate())?;
                *recorded_dims = dims.clone();
            }
            return Ok(());
        }
        let mut batch = model.gpu.batch();
        let all = entry.dispatches.iter().zip(dispatch_sizes(entry, dims)?);
        for (d, sizes) in all.filter(|(d, _)| runs(d, skip)) {
            let views = d
                .buffers
                .iter()
                .map(|r| self.view(r))
                .collect::<Result<Vec<_>, _>>()?;
            batch.dispatch(
                &model.pipelines[d.kernel as usize],
                &views,
                &as_refs(&sizes),
            )?;
        }
        self.recorded.insert(key, (dims.clone(), batch.finish()?));
        Ok(())
    }

    /// Entry `index`'s recorded dispatches for the caches `skip` reuses.
    fn recorded(&self, index: usize, skip: &[bool]) -> Result<&Recorded, Error> {
        self.recorded
            .get(&(index, skip.to_vec()))
            .map(|(_, recorded)| recorded)
            .ok_or_else(|| Error::Input("internal: dispatches were not recorded".to_string()))
    }

    fn view(&self, r: &BufferRange) -> Result<BufferView<'_>, Error> {
        let b = self.buffer(r.buffer)?;
        if let Slot::Experts(..) = self.slots[r.buffer as usize] {
            return Ok(b.view());
        }
        let size = r.size.unwrap_or(b.size().saturating_sub(r.offset));
        Ok(b.slice(r.offset, size))
    }

    fn buffer(&self, index: u32) -> Result<&GpuBuffer, Error> {
        match &self.slots[index as usize] {
            Slot::Weight(w) => Ok(&self.model.loaded.weights[*w]),
            Slot::Owned(b) => Ok(b),
            Slot::Experts(layer, stack) => self
                .experts
                .as_ref()
                .and_then(|x| x.stack(*layer, *stack))
                .ok_or_else(|| Error::Input(format!("internal: no slots for buffer {index}"))),
            Slot::Unallocated => Err(Error::Input(format!(
                "internal: buffer {index} is used before it is allocated"
            ))),
        }
    }
}

/// Allocates buffer `index` of the manifest at the dims' bounds.
fn allocate(model: &LoadedModel, index: usize) -> Result<GpuBuffer, Error> {
    let b = &model.manifest.buffers[index];
    let at_bounds = |d: &str| model.dim_bound(d);
    model.gpu.create_buffer(&b.name, b.bytes.eval(&at_bounds)?)
}

/// Whether dispatch `d` runs when the caches flagged in `skip` are reused.
fn runs(d: &seam_bundle::Dispatch, skip: &[bool]) -> bool {
    d.cache.is_none_or(|c| !skip[c as usize])
}

fn as_refs(v: &[(String, u32)]) -> Vec<(&str, u32)> {
    v.iter().map(|(n, x)| (n.as_str(), *x)).collect()
}
