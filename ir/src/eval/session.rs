//! Functions with session state on the reference evaluator: the states persist
//! between calls, as a runtime session keeps them on the device.

use std::collections::HashMap;

use super::{evaluate, shape_ops, At, EvalError, MemoryBudget, Tensor};
use crate::model::{Function, Model};
use crate::shape::Dim;
use crate::state::{state_use, StateUse};
use crate::weights::Weights;

/// A sequence in progress: every state of the model at its capacity (its length
/// dim's bound), zero-initialised, and the number of rows stored so far.
pub struct StateSession<'m> {
    model: &'m Model,
    weights: &'m Weights,
    states: HashMap<String, Tensor>,
    length: usize,
}

impl<'m> StateSession<'m> {
    /// A session at length 0 (the model is verified by each call).
    pub fn new(model: &'m Model, weights: &'m Weights) -> Self {
        StateSession {
            model,
            weights,
            states: HashMap::new(),
            length: 0,
        }
    }

    /// Rows stored in the states (the position of the next token).
    pub fn length(&self) -> usize {
        self.length
    }

    /// Starts a new sequence: length 0, every state zero.
    pub fn reset(&mut self) {
        self.states.clear();
        self.length = 0;
    }

    /// Runs `function` on its inputs that are not states (in signature order) and
    /// returns its outputs that are not states. The states enter at the stored
    /// length plus the rows this call appends (pools, whole), and are stored back.
    pub fn run(&mut self, function: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        let model = self.model;
        let func = model
            .function(function)
            .ok_or_else(|| EvalError::UnknownFunction(function.to_string()))?;
        if func.states.is_empty() {
            return evaluate(model, function, self.weights, inputs);
        }
        let plain: Vec<usize> = (0..func.inputs.len())
            .filter(|&i| !func.is_state_input(i))
            .collect();
        if inputs.len() != plain.len() {
            return Err(EvalError::InputCount {
                function: func.name.clone(),
                expected: plain.len(),
                found: inputs.len(),
            });
        }
        // The length after the call and the capacity; pools (no length dim)
        // enter and are stored whole.
        let length = match state_use(model, func) {
            None => None,
            Some(usage) => Some(self.length_after(func, &usage, &plain, inputs)?),
        };
        let at = At {
            op: "state",
            value: function,
        };
        let budget = MemoryBudget::from_env()?;
        let mut all = Vec::with_capacity(func.inputs.len());
        let mut given = inputs.iter();
        for (i, &v) in func.inputs.iter().enumerate() {
            if !func.is_state_input(i) {
                all.push(
                    given
                        .next()
                        .cloned()
                        .ok_or_else(|| at.bug("inputs ran out"))?,
                );
                continue;
            }
            let value = func.value(v);
            let state = match (self.states.get(&value.name), length) {
                (Some(store), Some((length, _))) => shape_ops::slice(store, 0, 0, length, &at)?,
                (Some(store), None) => store.clone(),
                (None, _) => {
                    let mut shape: Vec<usize> = value
                        .ty
                        .shape
                        .dims()
                        .iter()
                        .map(|d| d.as_static().unwrap_or_default() as usize)
                        .collect();
                    if let Some((length, _)) = length {
                        shape[0] = length;
                    }
                    let what = || format!("state `%{}`", value.name);
                    budget.check_tensor(what, value.ty.dtype, &shape)?;
                    Tensor::zeros(value.ty.dtype, shape).map_err(|e| at.bug(e))?
                }
            };
            all.push(state);
        }
        let outputs = evaluate(model, function, self.weights, &all)?;
        let mut plain_outputs = Vec::new();
        for (i, t) in outputs.into_iter().enumerate() {
            match func.states.iter().find(|s| s.output == i) {
                None => plain_outputs.push(t),
                Some(s) => {
                    let name = func.value(func.inputs[s.input]).name.clone();
                    let Some((_, max)) = length else {
                        self.states.insert(name, t);
                        continue;
                    };
                    let base = match self.states.remove(&name) {
                        Some(old) => old,
                        None => {
                            let mut shape = t.shape.clone();
                            shape[0] = max;
                            budget.check_tensor(|| format!("state `%{name}`"), t.dtype, &shape)?;
                            Tensor::zeros(t.dtype, shape).map_err(|e| at.bug(e))?
                        }
                    };
                    self.states.insert(name, write_head(&base, &t, &at)?);
                }
            }
        }
        if let Some((length, _)) = length {
            self.length = length;
        }
        Ok(plain_outputs)
    }

    /// The states' length after a call of `func` on `inputs` (its `plain`
    /// inputs) appending `usage.advance` rows, and their capacity (the length
    /// dim's bound), which the length must not exceed.
    fn length_after(
        &self,
        func: &Function,
        usage: &StateUse,
        plain: &[usize],
        inputs: &[Tensor],
    ) -> Result<(usize, usize), EvalError> {
        let advance = match &usage.advance {
            Dim::Static(n) => *n as usize,
            Dim::Sym(d) => plain
                .iter()
                .zip(inputs)
                .find_map(|(&i, t)| {
                    let dims = func.value(func.inputs[i]).ty.shape.dims();
                    let axis = dims.iter().position(|x| *x == Dim::Sym(d.clone()))?;
                    t.shape.get(axis).copied()
                })
                .unwrap_or(0),
        };
        let max = self
            .model
            .dim(&usage.length_dim)
            .map_or(0, |d| d.max as usize);
        let length = self.length + advance;
        if length > max {
            return Err(EvalError::StateFull {
                dim: usage.length_dim.clone(),
                stored: self.length,
                adding: advance,
                max,
            });
        }
        Ok((length, max))
    }
}

/// `store` with its first rows replaced by `head`.
fn write_head(store: &Tensor, head: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    let rest = shape_ops::slice(store, 0, head.shape[0], store.shape[0], at)?;
    shape_ops::concat(&[head, &rest], 0, at)
}
