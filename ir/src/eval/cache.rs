//! Functions with `cache` ops on the reference evaluator: a cached value is
//! kept between calls and, on a call that reuses it, stands in for what its
//! producer computes — as a runtime session skips the producer's dispatches.

use std::collections::{HashMap, HashSet};

use super::{evaluate_with, At, EvalError, Hooks, Tensor};
use crate::model::Model;
use crate::op::Op;
use crate::weights::Weights;

/// The kept values and the keys one call reuses.
pub(crate) struct CacheStore {
    kept: HashMap<String, Tensor>,
    reuse: HashSet<String>,
}

impl CacheStore {
    /// The result of `cache(key)` on this call: the kept value when the call
    /// reuses `key`, else the freshly computed `results`, which are kept.
    pub(crate) fn pass(
        &mut self,
        key: &str,
        results: Vec<Tensor>,
        at: &str,
    ) -> Result<Vec<Tensor>, EvalError> {
        if self.reuse.contains(key) {
            let kept = self.kept.get(key).ok_or_else(|| EvalError::CacheEmpty {
                key: key.to_string(),
            })?;
            if results.first().map(|t| &t.shape) != Some(&kept.shape) {
                let at = At {
                    op: "cache",
                    value: at,
                };
                return Err(at.bug(format!("cache `{key}` changed shape between calls")));
            }
            return Ok(vec![kept.clone()]);
        }
        let value = results.first().cloned().ok_or_else(|| {
            At {
                op: "cache",
                value: at,
            }
            .bug("no result")
        })?;
        self.kept.insert(key.to_string(), value);
        Ok(results)
    }
}

/// A sequence of calls sharing the values of the model's `cache` ops, the
/// reference for a runtime session's cache reuse (e.g. DDT's encoder output
/// shared between adjacent denoising steps). The evaluator still computes a
/// reused cache's producer; only its result is replaced by the kept value.
pub struct CacheSession<'m> {
    model: &'m Model,
    weights: &'m Weights,
    store: CacheStore,
}

impl<'m> CacheSession<'m> {
    /// A session with no value kept (the model is verified by each call).
    pub fn new(model: &'m Model, weights: &'m Weights) -> Self {
        CacheSession {
            model,
            weights,
            store: CacheStore {
                kept: HashMap::new(),
                reuse: HashSet::new(),
            },
        }
    }

    /// Forgets every kept value.
    pub fn reset(&mut self) {
        self.store.kept.clear();
    }

    /// Runs `function` on `inputs`; the caches named in `reuse` give their
    /// kept value, every other cache is recomputed and kept.
    pub fn run(
        &mut self,
        function: &str,
        inputs: &[Tensor],
        reuse: &[&str],
    ) -> Result<Vec<Tensor>, EvalError> {
        let func = self
            .model
            .function(function)
            .ok_or_else(|| EvalError::UnknownFunction(function.to_string()))?;
        let keys: Vec<&str> = func
            .body
            .iter()
            .filter_map(|i| match &i.op {
                Op::Cache { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        if let Some(key) = reuse.iter().find(|k| !keys.contains(k)) {
            return Err(EvalError::UnknownCache {
                function: function.to_string(),
                key: key.to_string(),
                known: keys.join(", "),
            });
        }
        self.store.reuse = reuse.iter().map(|k| k.to_string()).collect();
        let hooks = Hooks {
            caches: Some(&mut self.store),
            comm: None,
        };
        evaluate_with(self.model, function, self.weights, inputs, hooks)
    }
}
