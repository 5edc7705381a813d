//! Running entry points: bind dims from the inputs (and the states' length dim
//! from the stored length), upload, replay the recorded dispatches as one
//! submission, read the outputs back.
//!
//! A session owns its activation buffers and the model's session states
//! (KV caches): a bundle's `prefill` and `decode` run in one session share the
//! states, which stay on the device between runs; [`Session::reset`] starts a
//! new sequence.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::dispatch::Recorded;
use crate::model::Model;
use crate::run_error::RunError;
use crate::tensor::HostTensor;
use crate::GpuBuffer;
use seam_bundle::{BufferRange, BufferRole, EntryPoint, IoEntry};
use seam_core::SizeExpr;

/// Sizes of the symbolic dims for one run.
type DimValues = BTreeMap<String, u64>;

/// A loaded model's buffers for running its entry points, with a default entry
/// ([`Session::run`]) and the session states. Dispatches are recorded once per
/// entry and replayed; a run with other dim sizes only rewrites sizes.
pub struct Session<'m> {
    model: &'m Model,
    entry: &'m EntryPoint,
    slots: Vec<Slot>,
    recorded: Vec<Option<(DimValues, Recorded)>>,
    length: u64,
}

/// Where a bundle buffer lives: a model weight, or a session's own buffer
/// (activations, or a state); activations are allocated when an entry point
/// that uses them first runs, so a session running `decode` alone never
/// holds `prefill`'s buffers.
enum Slot {
    Weight(usize),
    Owned(GpuBuffer),
    Unallocated,
}

/// What one timed run measured.
#[derive(Clone, Debug)]
pub struct RunTiming {
    /// Wall time of upload, submission, wait and read-back.
    pub wall: Duration,
    /// Device time of the compute pass, where timestamps are supported.
    pub device: Option<Duration>,
    /// Dispatches submitted.
    pub dispatches: usize,
    /// Submissions (command buffers) per run.
    pub submits: usize,
}

impl<'m> Session<'m> {
    pub(crate) fn new(model: &'m Model, name: &str) -> Result<Session<'m>, RunError> {
        let manifest = &model.manifest;
        let entry = find_entry(model, name)?;
        let slots = manifest
            .buffers
            .iter()
            .enumerate()
            .map(|(i, b)| match b.role {
                BufferRole::Weight(w) => Ok(Slot::Weight(w as usize)),
                // wgpu zero-initialises buffers, so states start empty.
                BufferRole::State => Ok(Slot::Owned(allocate(model, i)?)),
                BufferRole::Activation => Ok(Slot::Unallocated),
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        Ok(Session {
            model,
            entry,
            slots,
            recorded: (0..manifest.entry_points.len()).map(|_| None).collect(),
            length: 0,
        })
    }

    /// Positions stored in the session's states (the next token's position).
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The most positions the states hold (their length dim's bound), if the
    /// bundle has states.
    pub fn max_length(&self) -> Option<u64> {
        let dim = self.length_dim()?;
        let manifest = &self.model.manifest;
        manifest.dims.iter().find(|d| d.name == dim).map(|d| d.max)
    }

    /// The states' length dim (`kv_len`), if the bundle has states.
    pub fn length_dim(&self) -> Option<&str> {
        self.model
            .manifest
            .entry_points
            .iter()
            .find_map(|e| e.state_length.as_ref())
            .map(|l| l.dim.as_str())
    }

    /// Starts a new sequence: length 0 and every state zeroed.
    pub fn reset(&mut self) -> Result<(), RunError> {
        for st in &self.model.manifest.states {
            let b = self.buffer(st.buffer)?;
            let zeros = vec![0u8; b.size() as usize];
            self.model.gpu.write(b, 0, &zeros)?;
        }
        self.length = 0;
        Ok(())
    }

    /// The entry point's inputs.
    pub fn inputs(&self) -> &[IoEntry] {
        &self.entry.inputs
    }

    /// The entry point's outputs.
    pub fn outputs(&self) -> &[IoEntry] {
        &self.entry.outputs
    }

    /// Dispatches per run.
    pub fn dispatches(&self) -> usize {
        self.entry.dispatches.len()
    }

    /// Runs the default entry point on `inputs` (in signature order, states
    /// excluded) and returns its outputs (states excluded).
    pub fn run(&mut self, inputs: &[HostTensor]) -> Result<Vec<HostTensor>, RunError> {
        Ok(self.run_timed(inputs)?.0)
    }

    /// Like [`Session::run`], also reporting time and dispatch counts.
    pub fn run_timed(
        &mut self,
        inputs: &[HostTensor],
    ) -> Result<(Vec<HostTensor>, RunTiming), RunError> {
        let name = self.entry.name.clone();
        self.run_entry_timed(&name, inputs)
    }

    /// Runs entry point `name` (e.g. `prefill`, then `decode`) on this session's
    /// states; see [`Session::run`].
    pub fn run_entry(
        &mut self,
        name: &str,
        inputs: &[HostTensor],
    ) -> Result<Vec<HostTensor>, RunError> {
        Ok(self.run_entry_timed(name, inputs)?.0)
    }

    /// Like [`Session::run_entry`], also reporting time and dispatch counts.
    pub fn run_entry_timed(
        &mut self,
        name: &str,
        inputs: &[HostTensor],
    ) -> Result<(Vec<HostTensor>, RunTiming), RunError> {
        let started = Instant::now();
        let model = self.model;
        let index = entry_index(model, name)?;
        let entry = &model.manifest.entry_points[index];
        let (dims, length) = self.bind_dims(entry, inputs)?;
        self.allocate_for(entry)?;
        self.prepare(index, &dims)?;
        let gpu = &model.gpu;
        for (io, t) in entry.inputs.iter().zip(inputs) {
            gpu.write(self.buffer(io.buffer)?, 0, &t.bytes)?;
        }
        let (_, recorded) = self.recorded[index]
            .as_ref()
            .ok_or_else(|| RunError::Input("internal: dispatches were not recorded".to_string()))?;
        let device = gpu.run_timed(recorded)?;
        if let Some(length) = length {
            self.length = length;
        }
        let outputs = entry
            .outputs
            .iter()
            .map(|io| {
                let shape = eval_shape(&io.shape, &dims)?;
                let n: usize = shape.iter().product();
                let bytes: Vec<u8> = gpu.read_range(
                    self.buffer(io.buffer)?,
                    0,
                    n * io.dtype.size_bytes() as usize,
                )?;
                Ok(HostTensor {
                    dtype: io.dtype,
                    shape,
                    bytes,
                })
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        let timing = RunTiming {
            wall: started.elapsed(),
            device,
            dispatches: entry.dispatches.len(),
            submits: 1,
        };
        Ok((outputs, timing))
    }

    /// Runs each dispatch on its own (one submission each) and returns the device
    /// (or wall) time per dispatch with its kernel's name: where the time goes.
    /// Slower than [`Session::run`]; for profiling only.
    /// On an entry with states, the states are written but the stored length
    /// does not advance.
    pub fn profile(&mut self, inputs: &[HostTensor]) -> Result<Vec<(String, Duration)>, RunError> {
        let (dims, _) = self.bind_dims(self.entry, inputs)?;
        self.allocate_for(self.entry)?;
        let gpu = &self.model.gpu;
        for (io, t) in self.entry.inputs.iter().zip(inputs) {
            gpu.write(self.buffer(io.buffer)?, 0, &t.bytes)?;
        }
        let lookup = |d: &str| dims.get(d).copied();
        let mut times = Vec::with_capacity(self.entry.dispatches.len());
        for d in &self.entry.dispatches {
            let sizes: Vec<(String, u32)> = d
                .sizes
                .iter()
                .map(|(n, e)| Ok((n.clone(), e.eval(&lookup)? as u32)))
                .collect::<Result<_, RunError>>()?;
            let views = d
                .buffers
                .iter()
                .map(|r| self.view(r))
                .collect::<Result<Vec<_>, _>>()?;
            let mut batch = gpu.batch();
            batch.dispatch(
                &self.model.pipelines[d.kernel as usize],
                &views,
                &as_refs(&sizes),
            )?;
            let rec = batch.finish()?;
            let started = Instant::now();
            let device = gpu.run_timed(&rec)?;
            let name = self.model.manifest.kernels[d.kernel as usize]
                .kernel
                .name
                .clone();
            times.push((name, device.unwrap_or_else(|| started.elapsed())));
        }
        Ok(times)
    }

    /// Allocates the activation buffers `entry` uses that are not yet allocated.
    fn allocate_for(&mut self, entry: &EntryPoint) -> Result<(), RunError> {
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
                self.slots[i as usize] = Slot::Owned(allocate(self.model, i as usize)?);
            }
        }
        Ok(())
    }

    fn view(&self, r: &BufferRange) -> Result<crate::BufferView<'_>, RunError> {
        let b = self.buffer(r.buffer)?;
        let size = r.size.unwrap_or(b.size().saturating_sub(r.offset));
        Ok(b.slice(r.offset, size))
    }

    fn buffer(&self, index: u32) -> Result<&GpuBuffer, RunError> {
        match &self.slots[index as usize] {
            Slot::Weight(w) => Ok(&self.model.weights[*w]),
            Slot::Owned(b) => Ok(b),
            Slot::Unallocated => Err(RunError::Input(format!(
                "internal: buffer {index} is used before it is allocated"
            ))),
        }
    }

    /// Binds every symbolic dim from the inputs' shapes, and the states' length
    /// dim from the stored length, and checks all of them. Returns the dims and,
    /// for an entry with states, the length after the run.
    fn bind_dims(
        &self,
        entry: &EntryPoint,
        inputs: &[HostTensor],
    ) -> Result<(DimValues, Option<u64>), RunError> {
        let ios = &entry.inputs;
        if inputs.len() != ios.len() {
            return Err(RunError::Input(format!(
                "`{}` takes {} inputs, {} given",
                entry.name,
                ios.len(),
                inputs.len()
            )));
        }
        let mut dims = DimValues::new();
        for (io, t) in ios.iter().zip(inputs) {
            if t.dtype != io.dtype || t.shape.len() != io.shape.len() {
                return Err(RunError::Input(format!(
                    "input `{}` must be {:?} of rank {}, found {:?} of rank {}",
                    io.name,
                    io.dtype,
                    io.shape.len(),
                    t.dtype,
                    t.shape.len()
                )));
            }
            if t.bytes.len() != t.len() * io.dtype.size_bytes() as usize {
                return Err(RunError::Input(format!(
                    "input `{}` has {} bytes for {} elements",
                    io.name,
                    t.bytes.len(),
                    t.len()
                )));
            }
            for (e, &size) in io.shape.iter().zip(&t.shape) {
                if let SizeExpr::Dim(name) = e {
                    let bound = self.model.manifest.dims.iter().find(|d| d.name == *name);
                    let max = bound.map_or(0, |d| d.max);
                    if size == 0 || size as u64 > max {
                        return Err(RunError::Input(format!(
                            "input `{}`: dim `{name}` is {size}, outside 1..={max}",
                            io.name
                        )));
                    }
                    if let Some(prev) = dims.insert(name.clone(), size as u64) {
                        if prev != size as u64 {
                            return Err(RunError::Input(format!(
                                "dim `{name}` is {prev} in one input and {size} in `{}`",
                                io.name
                            )));
                        }
                    }
                }
            }
        }
        for (io, t) in ios.iter().zip(inputs) {
            let expected = eval_shape(&io.shape, &dims)?;
            if expected != t.shape {
                return Err(RunError::Input(format!(
                    "input `{}` must have shape {expected:?}, found {:?}",
                    io.name, t.shape
                )));
            }
        }
        let Some(sl) = &entry.state_length else {
            return Ok((dims, None));
        };
        let adding = sl.advance.eval(&|d| dims.get(d).copied())?;
        let max = self
            .model
            .manifest
            .dims
            .iter()
            .find(|d| d.name == sl.dim)
            .map_or(0, |d| d.max);
        let length = self.length.saturating_add(adding);
        if length > max {
            return Err(RunError::SequenceFull {
                dim: sl.dim.clone(),
                stored: self.length,
                adding,
                max,
            });
        }
        dims.insert(sl.dim.clone(), length);
        Ok((dims, Some(length)))
    }

    /// Records entry `index`'s dispatches on first use; later, rewrites their
    /// sizes when the dims change.
    fn prepare(&mut self, index: usize, dims: &DimValues) -> Result<(), RunError> {
        let model = self.model;
        let entry = &model.manifest.entry_points[index];
        let lookup = |d: &str| dims.get(d).copied();
        let sizes_of = |i: usize| -> Result<Vec<(String, u32)>, RunError> {
            entry.dispatches[i]
                .sizes
                .iter()
                .map(|(n, e)| Ok((n.clone(), e.eval(&lookup)? as u32)))
                .collect()
        };
        let gpu = &model.gpu;
        match &mut self.recorded[index] {
            Some((recorded_dims, _)) if recorded_dims == dims => Ok(()),
            Some((_, _)) => {
                let all: Vec<Vec<(String, u32)>> = (0..entry.dispatches.len())
                    .map(sizes_of)
                    .collect::<Result<_, _>>()?;
                if let Some((recorded_dims, rec)) = &mut self.recorded[index] {
                    for (i, sizes) in all.iter().enumerate() {
                        rec.update(gpu, i, &as_refs(sizes))?;
                    }
                    *recorded_dims = dims.clone();
                }
                Ok(())
            }
            None => {
                let mut batch = gpu.batch();
                for (i, d) in entry.dispatches.iter().enumerate() {
                    let views = d
                        .buffers
                        .iter()
                        .map(|r| self.view(r))
                        .collect::<Result<Vec<_>, _>>()?;
                    let sizes = sizes_of(i)?;
                    batch.dispatch(
                        &model.pipelines[d.kernel as usize],
                        &views,
                        &as_refs(&sizes),
                    )?;
                }
                let recorded = batch.finish()?;
                self.recorded[index] = Some((dims.clone(), recorded));
                Ok(())
            }
        }
    }
}

/// Allocates buffer `index` of the manifest at the dims' bounds.
fn allocate(model: &Model, index: usize) -> Result<GpuBuffer, RunError> {
    let manifest = &model.manifest;
    let b = &manifest.buffers[index];
    let at_bounds = |d: &str| manifest.dims.iter().find(|x| x.name == d).map(|x| x.max);
    Ok(model
        .gpu
        .create_buffer(&b.name, b.bytes.eval(&at_bounds)?)?)
}

/// The index of entry point `name`, or an error listing those there are.
fn entry_index(model: &Model, name: &str) -> Result<usize, RunError> {
    let entries = &model.manifest.entry_points;
    entries
        .iter()
        .position(|e| e.name == name)
        .ok_or_else(|| RunError::UnknownEntry {
            name: name.to_string(),
            available: entries
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn find_entry<'m>(model: &'m Model, name: &str) -> Result<&'m EntryPoint, RunError> {
    Ok(&model.manifest.entry_points[entry_index(model, name)?])
}

fn as_refs(v: &[(String, u32)]) -> Vec<(&str, u32)> {
    v.iter().map(|(n, x)| (n.as_str(), *x)).collect()
}

fn eval_shape(shape: &[SizeExpr], dims: &DimValues) -> Result<Vec<usize>, RunError> {
    shape
        .iter()
        .map(|e| Ok(e.eval(&|d| dims.get(d).copied())? as usize))
        .collect()
}
