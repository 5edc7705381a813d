//! Token generation with a KV cache, one callback per token: `prefill` the
//! prompt, then `decode` token by token, each token picked on the device as
//! `seam_runtime::generate::generate` picks it (the same ids for the same
//! settings), stopping early when the callback asks.

use std::ffi::{c_int, c_void};
use std::slice;

use seam_runtime::generate::{Sampler, Sampling, DECODE, PREFILL};
use seam_runtime::{Error, HostTensor, Session};

use crate::error::{guard, Failure, SeamStatus};
use crate::handles::{non_null, session_mut, SeamSession};

/// How each token is chosen. A temperature of 0 picks the most likely token
/// (greedy, the lowest id among ties; `top_p` and `seed` are then ignored);
/// above 0, tokens are drawn from the `top_p` nucleus of
/// `softmax(logits / temperature)` with a random stream seeded by `seed`
/// (the same seed gives the same tokens on every machine).
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct SeamSampling {
    /// 0 for greedy, or a positive temperature.
    pub temperature: f32,
    /// In (0, 1]; 1 keeps every token.
    pub top_p: f32,
    /// The seed of the random stream.
    pub seed: u64,
}

/// Called with each generated token id, in order, and the `user_data` given
/// to `seam_generate`; returns 0 to go on, nonzero to stop after this token.
/// It must not unwind (no C++ exception, no `longjmp`) out of the call, and
/// must not use the generating session.
pub type SeamTokenCallback = Option<extern "C" fn(token: i32, user_data: *mut c_void) -> c_int>;

/// The runtime's sampling settings for `s`, or why they are unusable.
fn sampling_of(s: &SeamSampling) -> Result<Sampling, Failure> {
    let sampling = if s.temperature == 0.0 {
        Sampling::Greedy
    } else {
        Sampling::TopP {
            temperature: s.temperature,
            top_p: s.top_p,
            seed: s.seed,
        }
    };
    sampling
        .validate()
        .map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(sampling)
}

/// Resets `session`, prefills `prompt` and generates up to `max_new` tokens,
/// handing each to `on_token` as soon as it is picked; stops early when
/// `on_token` returns `true`. Returns the number of tokens generated.
/// Refuses up front an empty prompt, a bundle without a KV cache and a
/// sequence longer than the cache holds.
pub(crate) fn generate_each(
    session: &mut Session,
    prompt: &[i32],
    max_new: usize,
    sampling: Sampling,
    mut on_token: impl FnMut(i32) -> bool,
) -> Result<usize, Error> {
    let mut sampler = Sampler::new(sampling)?;
    check_room(session, prompt, max_new)?;
    let prefill = session.model().entry(PREFILL)?;
    let decode = session.model().entry(DECODE)?;
    session.reset()?;
    let ids = HostTensor::from_i32(vec![prompt.len()], prompt)?;
    let first = session.run_sampled(&prefill, &[ids], &sampler.draw())?;
    let vocab = first.vocab;
    if let Some(bad) = prompt.iter().find(|&&id| id < 0 || id as usize >= vocab) {
        return Err(Error::Input(format!(
            "prompt id {bad} is outside the vocabulary 0..{vocab}"
        )));
    }
    let mut next = to_id(first.id)?;
    let mut generated = 0;
    while generated < max_new {
        generated += 1;
        if on_token(next) || generated == max_new {
            break;
        }
        let ids = [HostTensor::from_i32(vec![1], &[next])?];
        let step = session.run_sampled(&decode, &ids, &sampler.draw())?;
        if step.vocab != vocab {
            return Err(Error::Input(format!(
                "`{DECODE}` must return logits [1, {vocab}]"
            )));
        }
        next = to_id(step.id)?;
    }
    Ok(generated)
}

/// Refuses an empty prompt, a bundle without a KV cache, and a sequence
/// longer than the cache holds (`prompt` + `max_new` - 1 positions: the last
/// token is never fed back).
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
    if (prompt.len() as u64).saturating_add(adding) > max {
        return Err(Error::SequenceFull {
            dim: session.length_dim().unwrap_or_default().to_string(),
            stored: prompt.len() as u64,
            adding,
            max,
        });
    }
    Ok(())
}

/// A token id picked on the device, as the `int32_t` callers take.
fn to_id(id: u32) -> Result<i32, Error> {
    i32::try_from(id).map_err(|_| Error::Input(format!("token id {id} exceeds int32_t")))
}

/// Generates tokens after the `n_prompt` ids at `prompt` with the session's
/// `prefill` and `decode` entry points (a bundle compiled with a KV cache):
/// resets the session, prefills the prompt, then picks up to
/// `max_new_tokens` tokens one by one, calling `callback(token, user_data)`
/// with each as soon as it is picked; a nonzero return stops generation
/// after that token. `sampling` NULL means greedy. `callback` may be NULL
/// (tokens are then only counted). `*n_generated`, when not NULL, receives
/// the number of tokens generated (also on failure: those the callback got).
///
/// # Safety
/// `session` is NULL or a live session that no other call is using;
/// `prompt` is NULL or points to `n_prompt` ids; `sampling` is NULL or points
/// to a `SeamSampling`; `n_generated` is NULL or points to writable storage;
/// `callback` is NULL or a function safe to call with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn seam_generate(
    session: *mut SeamSession,
    prompt: *const i32,
    n_prompt: usize,
    max_new_tokens: usize,
    sampling: *const SeamSampling,
    callback: SeamTokenCallback,
    user_data: *mut c_void,
    n_generated: *mut usize,
) -> SeamStatus {
    let mut count = 0usize;
    let status = guard(|| {
        let prompt: &[i32] = if n_prompt == 0 {
            &[]
        } else {
            let prompt = non_null(prompt, "prompt")?;
            // SAFETY: the caller promised `n_prompt` ids at `prompt` (not NULL).
            unsafe { slice::from_raw_parts(prompt, n_prompt) }
        };
        let sampling = if sampling.is_null() {
            Sampling::Greedy
        } else {
            // SAFETY: not NULL; the caller promised it points to a `SeamSampling`.
            sampling_of(unsafe { &*sampling })?
        };
        // SAFETY: the caller passes a live session (or NULL) used by no other call.
        let session = unsafe { session_mut(session) }?;
        generate_each(session, prompt, max_new_tokens, sampling, |token| {
            count += 1;
            callback.is_some_and(|f| f(token, user_data) != 0)
        })?;
        Ok(())
    });
    if !n_generated.is_null() {
        // SAFETY: not NULL; the caller promised writable storage for a size_t.
        unsafe { n_generated.write(count) };
    }
    status
}
