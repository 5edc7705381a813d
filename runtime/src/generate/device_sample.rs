//! Choosing the next tokens on the device: a kernel the runtime carries itself
//! (`device_sample.wgsl`), dispatched right after an entry point's dispatches
//! in the same compute pass. Workgroup `j` reads row `rows[j]` of the logits
//! the entry wrote and writes one u32 id, so a step reads back 4 bytes per
//! sequence instead of `[rows, vocab]` logits. It computes [`Draw::pick`]'s
//! function (see `choose.rs`), so host and device pick the same ids.
//!
//! The kernel's grid is one workgroup per picked row; its `Params` are the
//! vocabulary and that count, rewritten before each run with
//! [`Recorded::update`]; each row's draw (row, mode, temperature, top-p, the
//! uniform number) is uploaded to a storage buffer.

use seam_core::{Access, BindingDesc, Dim, Grid, GridDim, Kernel, SizeDesc};

use super::choose::{Draw, BISECTION_STEPS, INFINITE_MAX, NAN_LOGITS, SCALED_FLOOR, THREADS};
use super::sample::SamplingError;
use crate::device::{Gpu, GpuBuffer, KernelPipeline, Recorded};
use crate::error::Error;

/// The kernel's sizes, in `Params` order.
const SIZES: [&str; 2] = ["vocab", "count"];

/// Words of one row's draw in the `draws` buffer (`RowDraw` in the WGSL).
const DRAW_WORDS: usize = 5;

/// The device sampling kernel, its draw and id buffers (room for `capacity`
/// rows), and its dispatch recorded once per entry point (bound to that
/// entry's logits buffer) and re-recorded when the buffers grow.
pub(crate) struct DeviceSampler {
    pipeline: KernelPipeline,
    capacity: usize,
    draws: GpuBuffer,
    out: GpuBuffer,
    recorded: Vec<Option<Recorded>>,
}

impl DeviceSampler {
    /// Builds the kernel for a bundle of `entries` entry points and runs it
    /// once on a one-token row, so that a driver that compiles at the first
    /// dispatch (lavapipe) does so here, not in a timed run.
    pub(crate) fn new(gpu: &Gpu, entries: usize) -> Result<DeviceSampler, Error> {
        let pipeline = gpu.pipeline(&kernel())?;
        let (draws, out) = buffers(gpu, 1)?;
        let mut sampler = DeviceSampler {
            pipeline,
            capacity: 1,
            draws,
            out,
            recorded: (0..entries + 1).map(|_| None).collect(),
        };
        let row = gpu.upload("seam sampler warm-up row", &[0.0f32])?;
        let draw = Draw::TopP {
            inv_temperature: 1.0,
            top_p: 0.5,
            u: 0.5,
        };
        // Recorded in the spare slot after the entries', then dropped.
        let (warm_up, out) = sampler.prepare(gpu, entries, &row, 1, &[(0, draw)])?;
        run_and_read_ids(gpu, &[warm_up], out, 1)?;
        sampler.recorded[entries] = None;
        Ok(sampler)
    }

    /// The sampling dispatch for entry `index`, recorded on first use over
    /// `logits` (the entry's logits buffer, which stays the same) and set to
    /// pick, for each `(row, draw)` of `picks`, from that row of `vocab`
    /// logits with that draw; uploads the draws. Returns the dispatch and the
    /// buffer it writes the ids to.
    pub(crate) fn prepare(
        &mut self,
        gpu: &Gpu,
        index: usize,
        logits: &GpuBuffer,
        vocab: usize,
        picks: &[(usize, Draw)],
    ) -> Result<(&Recorded, &GpuBuffer), Error> {
        let too_large =
            |row: usize| Error::Input(format!("cannot sample row {row} of {vocab} logits"));
        let vocab = u32::try_from(vocab)
            .ok()
            .filter(|&v| v > 0 && v < INFINITE_MAX)
            .ok_or_else(|| too_large(0))?;
        let mut words = Vec::with_capacity(picks.len() * DRAW_WORDS);
        for &(row, draw) in picks {
            let row = u32::try_from(row)
                .ok()
                .filter(|&r| {
                    r.checked_add(1)
                        .and_then(|n| n.checked_mul(vocab))
                        .is_some()
                })
                .ok_or_else(|| too_large(row))?;
            words.extend(draw_words(&draw, row));
        }
        let count = u32::try_from(picks.len())
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| Error::Input(format!("cannot sample {} rows at once", picks.len())))?;
        if picks.len() > self.capacity {
            let capacity = picks.len().next_power_of_two();
            (self.draws, self.out) = buffers(gpu, capacity)?;
            self.capacity = capacity;
            self.recorded.iter_mut().for_each(|r| *r = None);
        }
        gpu.write(&self.draws, 0, &words)?;
        let slot = self
            .recorded
            .get_mut(index)
            .ok_or_else(|| Error::Input(format!("internal: no entry point {index}")))?;
        let sizes = [(SIZES[0], vocab), (SIZES[1], count)];
        match slot {
            Some(recorded) => recorded.update(gpu, 0, &sizes)?,
            None => {
                let mut batch = gpu.batch();
                batch.dispatch(
                    &self.pipeline,
                    &[logits.view(), self.draws.view(), self.out.view()],
                    &sizes,
                )?;
                *slot = Some(batch.finish()?);
            }
        }
        let recorded = slot.as_ref().ok_or_else(|| {
            Error::Input("internal: the sampling dispatch was not recorded".into())
        })?;
        Ok((recorded, &self.out))
    }
}

/// The draw and id buffers for `capacity` rows.
fn buffers(gpu: &Gpu, capacity: usize) -> Result<(GpuBuffer, GpuBuffer), Error> {
    let draws = gpu.create_buffer("seam sampling draws", (capacity * DRAW_WORDS * 4) as u64)?;
    let out = gpu.create_buffer("seam sampled ids", (capacity * 4) as u64)?;
    Ok((draws, out))
}

/// Runs `recs` (ending with a sampling dispatch writing `count` ids to `out`)
/// in one submission and reads the ids back (4 bytes each) in the same one;
/// each is an id or the kernel's NaN / infinite answer ([`checked_id`]).
pub(crate) fn run_and_read_ids(
    gpu: &Gpu,
    recs: &[&Recorded],
    out: &GpuBuffer,
    count: usize,
) -> Result<Vec<u32>, Error> {
    let ids = gpu.run_all_and_read::<u32>(recs, out, 0, count)?;
    if ids.len() != count {
        return Err(Error::Input("internal: too few sampled ids".into()));
    }
    Ok(ids)
}

/// The id the kernel wrote, or the error [`Draw::pick`] gives for what the
/// kernel reports instead (NaN logits; an infinite largest logit for top-p);
/// an id outside `0..vocab` is an internal error.
pub(crate) fn checked_id(raw: u32, vocab: usize) -> Result<u32, Error> {
    match raw {
        NAN_LOGITS => Err(SamplingError::Logits("logits holding NaN".into()).into()),
        INFINITE_MAX => {
            Err(SamplingError::Logits("logits whose largest value is infinite".into()).into())
        }
        id if (id as usize) < vocab => Ok(id),
        id => Err(Error::Input(format!(
            "internal: the device sampled id {id} of a vocabulary of {vocab}"
        ))),
    }
}

/// One row's draw as the kernel reads it: row, mode, then floats as bits.
fn draw_words(draw: &Draw, row: u32) -> [u32; DRAW_WORDS] {
    let (mode, inv_temperature, top_p, u) = match *draw {
        Draw::Greedy => (0, 1.0f32, 1.0f32, 0.0f32),
        Draw::TopP {
            inv_temperature,
            top_p,
            u,
        } => (1, inv_temperature, top_p, u),
    };
    [
        row,
        mode,
        inv_temperature.to_bits(),
        top_p.to_bits(),
        u.to_bits(),
    ]
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
            binding(1, "draws", Access::ReadOnly),
            binding(2, "out", Access::ReadWrite),
            binding(3, "params", Access::Uniform),
        ],
        sizes: SIZES
            .iter()
            .map(|name| SizeDesc {
                name: (*name).into(),
                dim: Dim::Dynamic,
            })
            .collect(),
        grid: Grid::xyz(GridDim::ceil("count", 1), GridDim::one(), GridDim::one()),
        indexing_proven: false,
    }
}
