//! Running requests to their end on an [`Engine`]: what `seam generate`
//! and tests use when no server streams the tokens.

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::request::{Finish, Request, RequestId};
use crate::error::Error;

/// One request's tokens and timings.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The generated ids (a stop id included).
    pub tokens: Vec<i32>,
    /// Why it ended.
    pub finish: Finish,
    /// From the submission to the first token (the prefill, for a lone request).
    pub first_token: Duration,
    /// From the submission to the last token.
    pub total: Duration,
}

impl Completion {
    /// Tokens per second after the first (`None` with one token or fewer).
    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        let after = self.tokens.len().checked_sub(1).filter(|&n| n > 0)?;
        let time = self.total.saturating_sub(self.first_token);
        Some(after as f64 / time.as_secs_f64().max(1e-9))
    }
}

/// Submits `requests` (as ids `first_id`, `first_id + 1`, …) and steps
/// `engine` until every one has finished; returns their completions in order.
/// A request the engine refuses, or a failed step, is an error.
pub fn complete_all(
    engine: &mut Engine,
    first_id: RequestId,
    requests: Vec<Request>,
) -> Result<Vec<Completion>, Error> {
    let started = Instant::now();
    let n = requests.len();
    for (k, request) in requests.into_iter().enumerate() {
        engine.submit(first_id + k as RequestId, request)?;
    }
    let mut tokens: Vec<Vec<i32>> = vec![Vec::new(); n];
    let mut done: Vec<Option<(Finish, Duration, Duration)>> = vec![None; n];
    let mut first: Vec<Option<Duration>> = vec![None; n];
    while done.iter().any(Option::is_none) {
        if engine.is_idle() {
            return Err(Error::Input(
                "internal: the engine went idle before every request finished".into(),
            ));
        }
        for event in engine.step()? {
            let Some(k) = event
                .id
                .checked_sub(first_id)
                .map(|k| k as usize)
                .filter(|&k| k < n)
            else {
                continue;
            };
            let now = started.elapsed();
            if let Some(token) = event.token {
                tokens[k].push(token);
                first[k].get_or_insert(now);
            }
            if let Some(finish) = event.finish {
                done[k] = Some((finish, first[k].unwrap_or(now), now));
            }
        }
    }
    Ok(tokens
        .into_iter()
        .zip(done)
        .filter_map(|(tokens, done)| {
            done.map(|(finish, first_token, total)| Completion {
                tokens,
                finish,
                first_token,
                total,
            })
        })
        .collect())
}
