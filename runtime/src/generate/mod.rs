//! Token generation with a KV cache: `prefill` the prompt, then `decode` one
//! token at a time, each chosen by a [`Sampler`] from the last row of logits —
//! on the device by default ([`crate::Session::run_sampled`]: a step reads
//! back one id, not `[1, vocab]` logits), or on the host from read-back logits
//! ([`GenerateOptions`]); the two pick the same ids ([`Draw`]).
//!
//! A bundle generates when it has the entry points [`PREFILL`]
//! (`ids: i32[tokens]` → logits `[tokens, vocab]`) and [`DECODE`]
//! (`ids: i32[1]` → logits `[1, vocab]`) sharing their states, as
//! `seam_frontends` builds them with a KV cache.

mod choose;
mod device_sample;
mod sample;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

pub use choose::Draw;
pub(crate) use device_sample::{checked_id, run_and_read_ids, DeviceSampler};
pub use sample::{Sampler, Sampling, SamplingError};

use crate::entry::Entry;
use crate::error::Error;
use crate::session::Session;
use crate::tensor::HostTensor;

/// The entry point that appends a prompt to the cache.
pub const PREFILL: &str = "prefill";
/// The entry point that appends one token to the cache.
pub const DECODE: &str = "decode";

/// How [`generate_with`] runs; the default picks every token on the device
/// and reads back only ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Read the prompt's logits back into [`Generation::prefill_logits`]; the
    /// first token is then picked on the host from their last row.
    pub prefill_logits: bool,
    /// Pick every token on the host from read-back logits (the oracle of the
    /// device sampling, and how generation ran before it).
    pub host_sampling: bool,
}

/// What one generation produced and how long it took.
#[derive(Clone, Debug)]
pub struct Generation {
    /// The generated ids (the prompt excluded).
    pub tokens: Vec<i32>,
    /// The prompt's length.
    pub prompt_tokens: usize,
    /// The prompt's logits, `[prompt, vocab]` f32, when
    /// [`GenerateOptions::prefill_logits`] asked for them.
    pub prefill_logits: Option<HostTensor>,
    /// Wall time of the prefill run (the first token picked, or the logits read back).
    pub prefill_time: Duration,
    /// Wall time of all decode runs together (each token picked included).
    pub decode_time: Duration,
    /// Decode runs (one per generated token after the first).
    pub decode_steps: usize,
}

impl Generation {
    /// Prompt tokens per second of the prefill.
    pub fn prefill_tokens_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    /// Tokens per second of the decode runs (`None` without any).
    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        (self.decode_steps > 0)
            .then(|| self.decode_steps as f64 / self.decode_time.as_secs_f64().max(1e-9))
    }
}

/// [`generate_with`] with the default options: every token picked on the
/// device, no logits read back.
pub fn generate(
    session: &mut Session,
    prompt: &[i32],
    max_new: usize,
    sampler: &mut Sampler,
) -> Result<Generation, Error> {
    generate_with(
        session,
        prompt,
        max_new,
        sampler,
        GenerateOptions::default(),
    )
}

/// Resets `session`, prefills `prompt` and generates `max_new` tokens, each
/// picked from the last row of logits by one [`Sampler::draw`] (on the device
/// unless `options` ask otherwise: the same ids either way, see [`Draw`]).
/// Refuses up front (with [`Error::SequenceFull`], never by clamping) a
/// sequence longer than the states hold, whatever `max_new` is (`usize::MAX`
/// included), an empty prompt, and (after the prefill, which reports the
/// vocabulary) ids outside it.
pub fn generate_with(
    session: &mut Session,
    prompt: &[i32],
    max_new: usize,
    sampler: &mut Sampler,
    options: GenerateOptions,
) -> Result<Generation, Error> {
    generate_streaming(session, prompt, max_new, sampler, options, |_| {
        ControlFlow::Continue(())
    })
}

/// [`generate_with`] that also stops after generating one of `stop_ids` (the
/// model's end-of-sequence ids): that id is the last of
/// [`Generation::tokens`].
pub fn generate_until(
    session: &mut Session,
    prompt: &[i32],
    max_new: usize,
    sampler: &mut Sampler,
    options: GenerateOptions,
    stop_ids: &[i32],
) -> Result<Generation, Error> {
    generate_streaming(session, prompt, max_new, sampler, options, |token| {
        if stop_ids.contains(&token) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
}

/// [`generate_with`] handing each token to `on_token` as soon as it is
/// picked (streaming, e.g. through the C ABI's callback); generation stops
/// after a token for which `on_token` returns [`ControlFlow::Break`], and the
/// [`Generation`] holds the tokens made until then.
pub fn generate_streaming(
    session: &mut Session,
    prompt: &[i32],
    max_new: usize,
    sampler: &mut Sampler,
    options: GenerateOptions,
    mut on_token: impl FnMut(i32) -> ControlFlow<()>,
) -> Result<Generation, Error> {
    check_room(session, prompt, max_new)?;
    let prefill = session.model().entry(PREFILL)?;
    let decode = session.model().entry(DECODE)?;
    session.reset()?;
    let started = Instant::now();
    let ids = HostTensor::from_i32(vec![prompt.len()], prompt)?;
    let (mut next, vocab, prefill_logits) = if options.prefill_logits || options.host_sampling {
        let logits = session
            .run(&prefill, &[ids])?
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
        let last = &logits.to_f32()[(prompt.len() - 1) * vocab..];
        (pick(sampler, last)?, vocab, Some(logits))
    } else {
        let sampled = session.run_sampled(&prefill, &[ids], &sampler.draw())?;
        (to_id(sampled.id as usize)?, sampled.vocab, None)
    };
    let prefill_time = started.elapsed();
    if let Some(bad) = prompt.iter().find(|&&id| id < 0 || id as usize >= vocab) {
        return Err(Error::Input(format!(
            "prompt id {bad} is outside the vocabulary 0..{vocab}"
        )));
    }
    let mut generation = Generation {
        tokens: Vec::with_capacity(max_new),
        prompt_tokens: prompt.len(),
        prefill_logits,
        prefill_time,
        decode_time: Duration::ZERO,
        decode_steps: 0,
    };
    if max_new == 0 {
        return Ok(generation);
    }
    loop {
        generation.tokens.push(next);
        if on_token(next).is_break() || generation.tokens.len() >= max_new {
            return Ok(generation);
        }
        let started = Instant::now();
        next = decode_step(session, &decode, next, vocab, sampler, options)?;
        generation.decode_time += started.elapsed();
        generation.decode_steps += 1;
    }
}

/// Refuses an empty prompt, a bundle without states, and a sequence longer
/// than they hold.
fn check_room(session: &Session, prompt: &[i32], max_new: usize) -> Result<(), Error> {
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
    Ok(())
}

/// Runs `decode` on `token` and picks the next one (on the device unless
/// `options.host_sampling`).
fn decode_step(
    session: &mut Session,
    decode: &Entry,
    token: i32,
    vocab: usize,
    sampler: &mut Sampler,
    options: GenerateOptions,
) -> Result<i32, Error> {
    let ids = [HostTensor::from_i32(vec![1], &[token])?];
    let wrong = || Error::Input(format!("`{DECODE}` must return logits [1, {vocab}]"));
    if options.host_sampling {
        let outputs = session.run(decode, &ids)?;
        let row = outputs
            .first()
            .filter(|t| t.shape() == [1, vocab])
            .ok_or_else(wrong)?
            .to_f32();
        return pick(sampler, &row);
    }
    let sampled = session.run_sampled(decode, &ids, &sampler.draw())?;
    if sampled.vocab != vocab {
        return Err(wrong());
    }
    to_id(sampled.id as usize)
}

fn pick(sampler: &mut Sampler, row: &[f32]) -> Result<i32, Error> {
    to_id(sampler.next(row)?)
}

fn to_id(id: usize) -> Result<i32, Error> {
    i32::try_from(id).map_err(|_| Error::Input(format!("token id {id} exceeds i32")))
}
