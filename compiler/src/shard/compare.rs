//! Checking a shard set against its single-device model on the reference
//! evaluator: seeded random inputs, every rank evaluated together with real
//! sums ([`seam_ir::evaluate_ranks`]), and the largest relative difference.

use seam_ir::{
    evaluate, evaluate_ranks, index_bounds, random_tensor, random_tensor_in, Dim, EvalError, Model,
    Tensor, TensorError, Weights,
};

use super::ShardSet;

/// Seeded random inputs for `function` of `model`: each symbolic dim at
/// `tokens` (or its bound, if smaller), floats uniform in `[-1, 1)`, integer
/// ids within the table they index (else in `[0, 4)`), and every session state
/// zeros (empty, as at the start of a sequence).
pub fn random_inputs(
    model: &Model,
    function: &str,
    tokens: u64,
    seed: u64,
) -> Result<Vec<Tensor>, EvalError> {
    let func = model
        .function(function)
        .ok_or_else(|| EvalError::UnknownFunction(function.to_string()))?;
    let bounds = index_bounds(model, func);
    let input = |i: usize| -> Result<Tensor, TensorError> {
        let ty = &func.value(func.inputs[i]).ty;
        let shape: Vec<usize> = ty
            .shape
            .dims()
            .iter()
            .map(|d| match d {
                Dim::Static(n) => *n as usize,
                Dim::Sym(s) => model.dim(s).map_or(tokens, |d| d.max.min(tokens)) as usize,
            })
            .collect();
        let seed = seed.wrapping_mul(1000).wrapping_add(i as u64);
        if func.is_state_input(i) {
            Tensor::zeros(ty.dtype, shape)
        } else if ty.dtype.is_float() {
            random_tensor(ty.dtype, &shape, seed)
        } else {
            let hi = bounds[i].unwrap_or(4) as f64;
            random_tensor_in(ty.dtype, &shape, 0.0, hi, seed)
        }
    };
    (0..func.inputs.len())
        .map(|i| {
            input(i).map_err(|source| EvalError::InputTensor {
                index: i,
                name: func.value(func.inputs[i]).name.clone(),
                source,
            })
        })
        .collect()
}

/// The largest relative difference between `set` evaluated on all its ranks
/// together and `model` with `weights` on one device, over every rank and
/// output of `function` but its states, on `inputs` (whose states must be empty, as
/// [`random_inputs`] makes them: each rank gets them empty at its own size):
/// per output, the largest absolute element difference over the largest
/// absolute reference element (NaN when the outputs differ in shape or either
/// holds NaN).
pub fn max_relative_difference(
    model: &Model,
    weights: &Weights,
    set: &ShardSet,
    function: &str,
    inputs: &[Tensor],
) -> Result<f32, EvalError> {
    let reference = evaluate(model, function, weights, inputs)?;
    let rank_inputs = empty_states(&set.model, function, inputs)?;
    let ranks = evaluate_ranks(
        &set.rank_pairs(),
        function,
        &vec![rank_inputs.as_slice(); set.ranks()],
    )?;
    let func = model
        .function(function)
        .ok_or_else(|| EvalError::UnknownFunction(function.to_string()))?;
    let mut worst = 0.0f32;
    for outputs in &ranks {
        // A state output is each rank's own part (of its kv heads), not compared.
        let compared = outputs
            .iter()
            .zip(&reference)
            .enumerate()
            .filter(|(i, _)| !func.is_state_output(*i));
        for (_, (out, want)) in compared {
            let scale = want.floats().iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let diff = out.max_abs_diff(want).unwrap_or(f32::NAN);
            let rel = if scale > 0.0 { diff / scale } else { diff };
            worst = if rel.is_nan() || worst.is_nan() {
                f32::NAN
            } else {
                worst.max(rel)
            };
        }
    }
    Ok(worst)
}

/// `inputs` of `function` with every state replaced by zeros of `model`'s
/// state type (a rank's), its symbolic dims at the given state's sizes.
fn empty_states(
    model: &Model,
    function: &str,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, EvalError> {
    let func = model
        .function(function)
        .ok_or_else(|| EvalError::UnknownFunction(function.to_string()))?;
    inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let Some(&v) = func.inputs.get(i).filter(|_| func.is_state_input(i)) else {
                return Ok(t.clone());
            };
            let ty = &func.value(v).ty;
            let shape = ty
                .shape
                .dims()
                .iter()
                .zip(&t.shape)
                .map(|(d, &given)| d.as_static().map_or(given, |n| n as usize))
                .collect();
            Tensor::zeros(ty.dtype, shape).map_err(|source| EvalError::InputTensor {
                index: i,
                name: func.value(v).name.clone(),
                source,
            })
        })
        .collect()
}
