//! Which dispatches a cache's reuse skips.
//!
//! A `cache` op lowers to a copy of its operand into a tensor of its own (a
//! session-lived buffer). A call that reuses the cache skips that copy and
//! every dispatch whose results only the cache's producer reads: walking the
//! steps backwards, a step belongs to cache `c` when everything it writes is
//! read by steps of `c` alone (never by another step, an output or a state).
//! Work shared with the rest of the function — even work the optimizer merged
//! into the producer — keeps running on every call.

use std::collections::HashSet;

use super::{LowerCx, LowerError, Step, TensorId};
use seam_ir::{Instr, TensorType};

/// One `cache` op of a lowered function.
#[derive(Clone, Debug, PartialEq)]
pub struct LoweredCache {
    /// The cache's key.
    pub key: String,
    /// Its default sharing period (recompute every `refresh` calls; at least 1).
    pub refresh: u32,
    /// The tensor holding the kept value (written by the cache's copy step).
    pub tensor: TensorId,
    /// The value's IR type.
    pub ty: TensorType,
}

impl LowerCx<'_> {
    /// Records the `cache` op `instr`, whose copy is the last step added.
    pub(crate) fn add_cache(
        &mut self,
        instr: &Instr,
        key: &str,
        refresh: u32,
    ) -> Result<(), LowerError> {
        if key.is_empty() || self.caches.iter().any(|c| c.key == key) {
            let reason = format!("cache key `{key}` is empty or used twice in the function");
            return Err(self.unsupported(instr, &reason));
        }
        let result = instr.results[0];
        let tensor = self.value_tensor(result);
        self.caches.push(LoweredCache {
            key: key.to_string(),
            // A period of 0 recomputes on every call, as 1 does.
            refresh: refresh.max(1),
            tensor,
            ty: self.func.value(result).ty.clone(),
        });
        self.cache_copies.push(self.steps.len() - 1);
        Ok(())
    }
}

/// Marks each step with the cache whose reuse skips it: `copies[c]` is
/// cache `c`'s copy step; `kept` are the tensors read after the last step
/// (outputs and states).
pub(crate) fn mark_producers(steps: &mut [Step], copies: &[usize], kept: &HashSet<TensorId>) {
    let mut mark: Vec<Option<usize>> = vec![None; steps.len()];
    for (c, &s) in copies.iter().enumerate() {
        mark[s] = Some(c);
    }
    for s in (0..steps.len()).rev() {
        if mark[s].is_some() || steps[s].writes.iter().any(|t| kept.contains(t)) {
            continue;
        }
        let mut owner = None;
        let mut exclusive = !steps[s].writes.is_empty();
        for &t in &steps[s].writes {
            let readers = steps
                .iter()
                .enumerate()
                .filter(|(r, step)| {
                    *r != s && step.args.iter().any(|a| a.tensor == t) && !step.writes.contains(&t)
                })
                .map(|(r, _)| r);
            for r in readers {
                match (mark[r], owner) {
                    (Some(c), None) => owner = Some(c),
                    (Some(c), Some(o)) if c == o => {}
                    _ => exclusive = false,
                }
            }
        }
        if exclusive {
            mark[s] = owner;
        }
    }
    for (step, m) in steps.iter_mut().zip(mark) {
        step.cache = m;
    }
}
