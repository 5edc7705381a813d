//! Token generation with a KV cache, one callback per token
//! (`seam_runtime::generate::generate_streaming`): `prefill` the prompt, then
//! `decode` token by token, each token picked on the device, stopping early
//! when the callback asks.

use std::ffi::{c_int, c_void};
use std::ops::ControlFlow;
use std::slice;

use seam_runtime::generate::{generate_streaming, GenerateOptions, Sampler, Sampling};

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

/// A sampler for `s` (greedy for NULL), or why its settings are unusable.
fn sampler_of(s: Option<&SeamSampling>) -> Result<Sampler, Failure> {
    let sampling = match s {
        None => Sampling::Greedy,
        Some(s) if s.temperature == 0.0 => Sampling::Greedy,
        Some(s) => Sampling::TopP {
            temperature: s.temperature,
            top_p: s.top_p,
            seed: s.seed,
        },
    };
    Sampler::new(sampling).map_err(|e| Failure::invalid(e.to_string()))
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
        // SAFETY: NULL, or a `SeamSampling` as the caller promised.
        let mut sampler = sampler_of(unsafe { sampling.as_ref() })?;
        // SAFETY: the caller passes a live session (or NULL) used by no other call.
        let session = unsafe { session_mut(session) }?;
        let options = GenerateOptions::default();
        generate_streaming(
            session,
            prompt,
            max_new_tokens,
            &mut sampler,
            options,
            |token| {
                count += 1;
                match callback {
                    Some(f) if f(token, user_data) != 0 => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                }
            },
        )?;
        Ok(())
    });
    if !n_generated.is_null() {
        // SAFETY: not NULL; the caller promised writable storage for a size_t.
        unsafe { n_generated.write(count) };
    }
    status
}
