//! Token generation with a KV cache: `prefill` the prompt, then `decode` one
//! token at a time, each chosen by a [`Sampler`] from the last row of logits.
//!
//! A bundle generates when it has the entry points [`PREFILL`]
//! (`ids: i32[tokens]` → logits `[tokens, vocab]`) and [`DECODE`]
//! (`ids: i32[1]` → logits `[1, vocab]`) sharing their states, as
//! `seam_frontends` builds them with a KV cache.

mod sample;

use std::time::Duration;

pub use sample::{Sampler, Sampling, SamplingError};

use crate::error::Error;
use crate::session::Session;
use crate::tensor::HostTensor;
use crate::timing::Timing;

/// The entry point that appends a prompt to the cache.
pub const PREFILL: &str = "prefill";
/// The entry point that appends one token to the cache.
pub const DECODE: &str = "decode";

/// What one generation produced and how long it took.
#[derive(Clone, Debug)]
pub struct Generation {
    /// The generated ids (the prompt excluded).
    pub tokens: Vec<i32>,
    /// The prompt's logits, `[prompt, vocab]` f32.
    pub prefill_logits: HostTensor,
    /// Wall time of the prefill run.
    pub prefill_time: Duration,
    /// Wall time of all decode runs together.
    pub decode_time: Duration,
    /// Decode runs (one per generated token after the first).
    pub decode_steps: usize,
}

impl Generation {
    /// Prompt tokens per second of the prefill.
    pub fn prefill_tokens_per_s(&self) -> f64 {
        let rows = self.prefill_logits.shape().first().copied().unwrap_or(0);
        rows as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    /// Tokens per second of the decode runs (`None` without any).
    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        (self.decode_steps > 0)
            .then(|| self.decode_steps as f64 / self.decode_time.as_secs_f64().max(1e-9))
    }
}

/// Resets `session`, prefills `prompt` and generates `max_new` tokens. Refuses
/// up front (with [`Error::SequenceFull`], never by clamping) a sequence longer
/// than the states hold, whatever `max_new` is (`usize::MAX` included), an
/// empty prompt, and (after the prefill, which reports the vocabulary) ids
/// outside it.
pub fn generate(
    session: &mut Session,
    prompt: &[i32],
    max_new: usize,
    sampler: &mut Sampler,
) -> Result<Generation, Error> {
    if prompt.is_empty() {
        return Err(Error::Input("the prompt is empty".into()));
    }
    let max = session.max_length().ok_or_else(|| {
        Error::Input(format!(
            "the bundle has no KV cache (compile a model with `{PREFILL}` and `{DECODE}` entry points)"
        ))
    })?;
    let adding = max_new.saturating_sub(1) as u64;
    let needed = (prompt.len() as u64).saturating_add(adding);
    if needed > max {
        return Err(Error::SequenceFull {
            dim: session.length_dim().unwrap_or_default().to_string(),
            stored: prompt.len() as u64,
            adding,
            max,
        });
    }
    let prefill = session.model().entry(PREFILL)?;
    let decode = session.model().entry(DECODE)?;
    session.reset()?;
    let ids = HostTensor::from_i32(vec![prompt.len()], prompt)?;
    let run = session.run_with(&prefill, &[ids], Timing::Wall)?;
    let logits = run
        .tensors
        .into_iter()
        .next()
        .ok_or_else(|| Error::Input(format!("`{PREFILL}` returns no logits")))?;
    let vocab = match logits.shape() {
        [n, v] if *n == prompt.len() && *v > 0 => *v,
        other => {
            return Err(Error::Input(format!(
                "`{PREFILL}` must return logits [{}, vocab], found {other:?}",
                prompt.len()
            )))
        }
    };
    if let Some(bad) = prompt.iter().find(|&&id| id < 0 || id as usize >= vocab) {
        return Err(Error::Input(format!(
            "prompt id {bad} is outside the vocabulary 0..{vocab}"
        )));
    }
    let mut generation = Generation {
        tokens: Vec::with_capacity(max_new),
        prefill_logits: logits,
        prefill_time: run.timing.wall,
        decode_time: Duration::ZERO,
        decode_steps: 0,
    };
    if max_new == 0 {
        return Ok(generation);
    }
    let all = generation.prefill_logits.to_f32();
    let mut next = pick(sampler, &all[(prompt.len() - 1) * vocab..])?;
    generation.tokens.push(next);
    while generation.tokens.len() < max_new {
        let ids = HostTensor::from_i32(vec![1], &[next])?;
        let run = session.run_with(&decode, &[ids], Timing::Wall)?;
        generation.decode_time += run.timing.wall;
        generation.decode_steps += 1;
        let row = run
            .tensors
            .first()
            .filter(|t| t.shape() == [1, vocab])
            .ok_or_else(|| Error::Input(format!("`{DECODE}` must return logits [1, {vocab}]")))?
            .to_f32();
        next = pick(sampler, &row)?;
        generation.tokens.push(next);
    }
    Ok(generation)
}

fn pick(sampler: &mut Sampler, row: &[f32]) -> Result<i32, Error> {
    let id = sampler.next(row)?;
    i32::try_from(id).map_err(|_| Error::Input(format!("token id {id} exceeds i32")))
}
