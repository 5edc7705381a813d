//! Choosing the next token on the device: a one-workgroup kernel the runtime
//! carries itself (`device_sample.wgsl`), dispatched right after an entry
//! point's dispatches in the same compute pass. It reads the last row of the
//! logits the entry wrote and writes one u32 id, so a step reads back 4 bytes
//! instead of `[rows, vocab]` logits. It computes [`Draw::pick`]'s function
//! (see `choose.rs`), so host and device pick the same id.
//!
//! The kernel has no sizes that shape its grid (one workgroup); its `Params`
//! are the row, the vocabulary and the draw (floats as their bits), rewritten
//! before each run with [`Recorded::update`].

use seam_core::{Access, BindingDesc, Dim, Grid, GridDim, Kernel, SizeDesc};

use super::choose::{Draw, BISECTION_STEPS, INFINITE_MAX, NAN_LOGITS, SCALED_FLOOR, THREADS};
use super::sample::SamplingError;
use crate::device::{Gpu, GpuBuffer, KernelPipeline, Recorded};
use crate::error::Error;

/// The kernel's sizes, in `Params` order.
const SIZES: [&str; 6] = ["vocab", "row", "mode", "inv_temperature", "top_p", "u"];

/// The device sampling kernel, its one-id result buffer, and its dispatch
/// recorded once per entry point (bound to that entry's logits buffer).
pub(crate) struct DeviceSampler {
    pipeline: KernelPipeline,
    out: GpuBuffer,
    recorded: Vec<Option<Recorded>>,
}

impl DeviceSampler {
    /// Builds the kernel for a bundle of `entries` entry points and runs it
    /// once on a one-token row, so that a driver that compiles at the first
    /// dispatch (lavapipe) does so here, not in a timed run.
    pub(crate) fn new(gpu: &Gpu, entries: usize) -> Result<DeviceSampler, Error> {
        let pipeline = gpu.pipeline(&kernel())?;
        let out = gpu.create_buffer("seam sampled id", 4)?;
        let sampler = DeviceSampler {
            pipeline,
            out,
            recorded: (0..entries).map(|_| None).collect(),
        };
        let row = gpu.upload("seam sampler warm-up row", &[0.0f32])?;
        let draw = Draw::TopP {
            inv_temperature: 1.0,
            top_p: 0.5,
            u: 0.5,
        };
        let mut batch = gpu.batch();
        batch.dispatch(
            &sampler.pipeline,
            &[row.view(), sampler.out.view()],
            &sizes(&draw, 0, 1),
        )?;
        let recorded = batch.finish()?;
        run_and_read_id(gpu, &[&recorded], &sampler.out)?;
        Ok(sampler)
    }

    /// The buffer the picked id is written to.
    pub(crate) fn out(&self) -> &GpuBuffer {
        &self.out
    }

    /// The sampling dispatch for entry `index`, recorded on first use over
    /// `logits` (the entry's logits buffer, which stays the same) and set to
    /// pick from row `row` of `vocab` logits with `draw`.
    pub(crate) fn prepare(
        &mut self,
        gpu: &Gpu,
        index: usize,
        logits: &GpuBuffer,
        (row, vocab): (usize, usize),
        draw: &Draw,
    ) -> Result<&Recorded, Error> {
        let too_large = || Error::Input(format!("cannot sample row {row} of {vocab} logits"));
        let vocab = u32::try_from(vocab)
            .ok()
            .filter(|&v| v > 0 && v < INFINITE_MAX)
            .ok_or_else(too_large)?;
        let row = u32::try_from(row)
            .ok()
            .filter(|&r| {
                r.checked_add(1)
                    .and_then(|n| n.checked_mul(vocab))
                    .is_some()
            })
            .ok_or_else(too_large)?;
        let slot = self
            .recorded
            .get_mut(index)
            .ok_or_else(|| Error::Input(format!("internal: no entry point {index}")))?;
        let sizes = sizes(draw, row, vocab);
        match slot {
            Some(recorded) => recorded.update(gpu, 0, &sizes)?,
            None => {
                let mut batch = gpu.batch();
                batch.dispatch(&self.pipeline, &[logits.view(), self.out.view()], &sizes)?;
                *slot = Some(batch.finish()?);
            }
        }
        slot.as_ref()
            .ok_or_else(|| Error::Input("internal: the sampling dispatch was not recorded".into()))
    }
}

/// Runs `recs` (ending with a sampling dispatch writing to `out`) in one
/// submission, reads the picked id back (4 bytes) in the same one, and turns
/// the kernel's NaN and infinite answers into the errors [`Draw::pick`] gives.
pub(crate) fn run_and_read_id(
    gpu: &Gpu,
    recs: &[&Recorded],
    out: &GpuBuffer,
) -> Result<u32, Error> {
    let id = gpu
        .run_all_and_read::<u32>(recs, out, 0, 1)?
        .first()
        .copied()
        .ok_or_else(|| Error::Input("internal: no sampled id".into()))?;
    match id {
        NAN_LOGITS => Err(SamplingError::Logits("logits holding NaN".into()).into()),
        INFINITE_MAX => {
            Err(SamplingError::Logits("logits whose largest value is infinite".into()).into())
        }
        id => Ok(id),
    }
}

/// The kernel's sizes for `draw` at `row` of `vocab` logits.
fn sizes(draw: &Draw, row: u32, vocab: u32) -> [(&'static str, u32); 6] {
    let (mode, inv_temperature, top_p, u) = match *draw {
        Draw::Greedy => (0, 1.0f32, 1.0f32, 0.0f32),
        Draw::TopP {
            inv_temperature,
            top_p,
            u,
        } => (1, inv_temperature, top_p, u),
    };
    let values = [
        vocab,
        row,
        mode,
        inv_temperature.to_bits(),
        top_p.to_bits(),
        u.to_bits(),
    ];
    std::array::from_fn(|i| (SIZES[i], values[i]))
}

/// The kernel: `device_sample.wgsl` after the constants it shares with `choose.rs`.
fn kernel() -> Kernel {
    let constants = format!(
        "const THREADS: u32 = {THREADS}u;\nconst STEPS: u32 = {BISECTION_STEPS}u;\n\
         const FLOOR: f32 = {SCALED_FLOOR:?};\nconst LOG2E_BITS: u32 = {}u;\n\
         const NONE: u32 = {}u;\nconst NAN_LOGITS: u32 = {NAN_LOGITS}u;\n\
         const INFINITE_MAX: u32 = {INFINITE_MAX}u;\n",
        std::f32::consts::LOG2_E.to_bits(),
        u32::MAX,
    );
    let binding = |binding, name: &str, access| BindingDesc {
        binding,
        name: name.into(),
        access,
    };
    Kernel {
        name: "seam_device_sample".into(),
        wgsl: constants + include_str!("device_sample.wgsl"),
        entry_point: "main".into(),
        workgroup_size: [THREADS as u32, 1, 1],
        bindings: vec![
            binding(0, "logits", Access::ReadOnly),
            binding(1, "out", Access::ReadWrite),
            binding(2, "params", Access::Uniform),
        ],
        sizes: SIZES
            .iter()
            .map(|name| SizeDesc {
                name: (*name).into(),
                dim: Dim::Dynamic,
            })
            .collect(),
        grid: Grid::xyz(GridDim::one(), GridDim::one(), GridDim::one()),
        indexing_proven: false,
    }
}
