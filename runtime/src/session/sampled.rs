//! Running an entry point and choosing the next tokens on the device: the
//! entry's dispatches and the sampling kernel in one submission, then 4 bytes
//! per picked row read back instead of the logits.

use std::sync::Arc;

use seam_core::DType;

use super::dims::eval_shape;
use super::Session;
use crate::entry::Entry;
use crate::error::Error;
use crate::generate::{checked_id, run_and_read_ids, DeviceSampler, Draw};
use crate::tensor::HostTensor;

/// A token picked on the device by [`Session::run_sampled`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sampled {
    /// The id picked, in `0..vocab`.
    pub id: u32,
    /// The length of a row of the logits it was picked from.
    pub vocab: usize,
}

/// Tokens picked on the device by [`Session::run_sampled_rows`], one per
/// requested row, in request order.
#[derive(Debug)]
pub struct SampledRows {
    /// Each row's id in `0..vocab`, or why its logits could not be sampled
    /// (NaN; an infinite largest logit for top-p), as [`Draw::pick`] refuses them.
    pub ids: Vec<Result<u32, Error>>,
    /// The length of a row of the logits they were picked from.
    pub vocab: usize,
}

impl Session {
    /// Runs `entry` on `inputs` like [`Session::run`], then picks a token from
    /// the last row of its first output (f32 logits `[rows, vocab]`) with
    /// `draw` on the device, in the same submission: the id [`Draw::pick`]
    /// gives on that row (see `generate::choose`), up to `exp2` rounding. Only
    /// the id is read back (4 bytes); the outputs stay on the device. Logits
    /// holding NaN (and, for top-p, an infinite largest logit) are refused
    /// after the run, as [`Draw::pick`] refuses them.
    pub fn run_sampled(
        &mut self,
        entry: &Entry,
        inputs: &[HostTensor],
        draw: &Draw,
    ) -> Result<Sampled, Error> {
        let sampled = self.run_sampled_rows(entry, inputs, |rows| vec![(rows - 1, *draw)])?;
        let id = sampled
            .ids
            .into_iter()
            .next()
            .ok_or_else(|| Error::Input("internal: no sampled id".into()))??;
        Ok(Sampled {
            id,
            vocab: sampled.vocab,
        })
    }

    /// Runs `entry` on `inputs` like [`Session::run`], then picks one token
    /// per `(row, draw)` that `picks` returns (given the number of rows of the
    /// entry's first output, f32 logits `[rows, vocab]`) on the device, in the
    /// same submission, as [`Session::run_sampled`] does for one row: a
    /// batched step samples every sequence's next token at once with its own
    /// settings and reads back 4 bytes per sequence.
    pub fn run_sampled_rows(
        &mut self,
        entry: &Entry,
        inputs: &[HostTensor],
        picks: impl FnOnce(usize) -> Vec<(usize, Draw)>,
    ) -> Result<SampledRows, Error> {
        let io = entry
            .outputs()
            .first()
            .filter(|io| io.dtype == DType::F32 && io.shape.len() == 2)
            .ok_or_else(|| {
                Error::Input(format!(
                    "`{}` must return f32 logits [rows, vocab] first to sample on the device",
                    entry.name()
                ))
            })?
            .clone();
        let skip = self.skipped_caches(&[])?;
        let (dims, length) = self.prepare(entry, inputs, &skip)?;
        let (rows, vocab) = match eval_shape(&io.shape, &dims)?[..] {
            [rows, vocab] if rows > 0 && vocab > 0 => (rows, vocab),
            ref other => {
                return Err(Error::Input(format!(
                    "cannot sample from logits of shape {other:?} returned by `{}`",
                    entry.name()
                )))
            }
        };
        let picks = picks(rows);
        if let Some((row, _)) = picks.iter().find(|(row, _)| *row >= rows) {
            return Err(Error::Input(format!(
                "cannot sample row {row} of the {rows} rows `{}` returns",
                entry.name()
            )));
        }
        let gpu = Arc::clone(&self.model.loaded.gpu);
        let logits = self.buffer(io.buffer)?.clone();
        self.device_sampler()?;
        let index = entry.index();
        // With experts in host memory the entry runs in parts around its MoE
        // layers first; the sampling follows in its own submission.
        let offloaded = self.splits(index);
        if offloaded {
            self.submit_split(index, &skip, &dims)?;
        }
        let sampler = self
            .sampler
            .as_mut()
            .ok_or_else(|| Error::Input("internal: no device sampler".into()))?;
        let (sampling, out) = sampler.prepare(&gpu, index, &logits, vocab, &picks)?;
        let raw = if offloaded {
            run_and_read_ids(&gpu, &[sampling], out, picks.len())?
        } else {
            let forward = self
                .recorded
                .get(&(index, skip.clone()))
                .map(|(_, recorded)| recorded)
                .ok_or_else(|| Error::Input("internal: dispatches were not recorded".into()))?;
            run_and_read_ids(&gpu, &[forward, sampling], out, picks.len())?
        };
        self.note_computed(index, &skip);
        // The entry ran (and appended to the states) even when some logits
        // are refused.
        if let Some(length) = length {
            self.length = length;
        }
        Ok(SampledRows {
            ids: raw.into_iter().map(|id| checked_id(id, vocab)).collect(),
            vocab,
        })
    }

    /// Builds the device sampling kernel if this session has not yet.
    pub(super) fn device_sampler(&mut self) -> Result<(), Error> {
        if self.sampler.is_none() {
            let entries = self.model.manifest().entry_points.len();
            self.sampler = Some(DeviceSampler::new(&self.model.loaded.gpu, entries)?);
        }
        Ok(())
    }
}
