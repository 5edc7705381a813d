//! Running an entry point and choosing the next token on the device: the
//! entry's dispatches and the sampling kernel in one submission, then 4 bytes
//! read back instead of the logits.

use std::sync::Arc;

use seam_core::DType;

use super::dims::eval_shape;
use super::Session;
use crate::entry::Entry;
use crate::error::Error;
use crate::generate::{run_and_read_id, DeviceSampler, Draw};
use crate::tensor::HostTensor;

/// A token picked on the device by [`Session::run_sampled`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sampled {
    /// The id picked, in `0..vocab`.
    pub id: u32,
    /// The length of a row of the logits it was picked from.
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
        let (dims, length) = self.prepare(entry, inputs)?;
        let (rows, vocab) = match eval_shape(&io.shape, &dims)?[..] {
            [rows, vocab] if rows > 0 && vocab > 0 => (rows, vocab),
            ref other => {
                return Err(Error::Input(format!(
                    "cannot sample from logits of shape {other:?} returned by `{}`",
                    entry.name()
                )))
            }
        };
        let gpu = Arc::clone(&self.model.loaded.gpu);
        let logits = self.buffer(io.buffer)?.clone();
        self.device_sampler()?;
        let index = entry.index();
        let sampler = self
            .sampler
            .as_mut()
            .ok_or_else(|| Error::Input("internal: no device sampler".into()))?;
        let out = sampler.out().clone();
        let sampling = sampler.prepare(&gpu, index, &logits, (rows - 1, vocab), draw)?;
        let forward = self.recorded[index]
            .as_ref()
            .map(|(_, recorded)| recorded)
            .ok_or_else(|| Error::Input("internal: dispatches were not recorded".into()))?;
        let picked = run_and_read_id(&gpu, &[forward, sampling], &out);
        // The entry ran (and appended to the states) even when its logits
        // are refused.
        if let (Some(length), Ok(_) | Err(Error::Sampling(_))) = (length, &picked) {
            self.length = length;
        }
        let id = picked?;
        if id as usize >= vocab {
            return Err(Error::Input(format!(
                "internal: the device sampled id {id} of a vocabulary of {vocab}"
            )));
        }
        Ok(Sampled { id, vocab })
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
