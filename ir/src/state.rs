//! Session state: the rules a function's state inputs and outputs follow
//! ([`crate::StateBinding`]), and what a caller needs to run such a function —
//! the length dim and how many rows a call appends.
//!
//! A state input is used once, as the buffer of a `write_tail` whose result is
//! the paired output; so each call appends rows and never rewrites earlier ones,
//! which lets the lowering update the state in place and the runtime bind the
//! length dim from the stored length.
//!
//! Or a state is a *pool* of per-sequence slots (batched serving): used once,
//! as the buffer of a `write_rows` whose result is the paired output, with a
//! static shape `[S, L, ...]` and no length dim — the caller tracks each
//! slot's length, so [`state_use`] is `None`. A function's states are all
//! appended to or all pools.

use crate::model::{Function, Instr, Model, Operand, Value};
use crate::op::Op;
use crate::shape::Dim;
use crate::verify::{Location, VerifyError, VerifyErrorKind};

/// How a function with states is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateUse {
    /// The leading dim every state of the function shares (`kv_len`): the
    /// state's length after the call.
    pub length_dim: String,
    /// Rows one call appends: static, or a dim bound by the other inputs (`tokens`).
    pub advance: Dim,
}

/// The length dim and advance of a verified function with states (`None`
/// without states, and for a function whose states are pools).
pub fn state_use(model: &Model, f: &Function) -> Option<StateUse> {
    let s = f.states.first()?;
    let ty = &f.value(f.inputs[s.input]).ty;
    let Some(Dim::Sym(length_dim)) = ty.shape.dims().first() else {
        return None;
    };
    let input = Operand::Value(f.inputs[s.input]);
    let writer = f
        .body
        .iter()
        .find(|i| i.op == Op::WriteTail && i.operands[0] == input)?;
    let advance = model
        .operand_type(f, writer.operands[1])
        .shape
        .dims()
        .first()?
        .clone();
    Some(StateUse {
        length_dim: length_dim.clone(),
        advance,
    })
}

fn bad(location: Location, message: String) -> VerifyError {
    VerifyError {
        location,
        kind: VerifyErrorKind::State(message),
    }
}

/// Checks the states of function `fi` (its values and body already verified).
pub(crate) fn verify_states(model: &Model, fi: usize, f: &Function) -> Result<(), VerifyError> {
    let at_fn = Location::Function(fi);
    let mut length: Option<&str> = None;
    let mut advance: Option<&Dim> = None;
    // The first appended-to state and the first pool.
    let mut kinds: (Option<usize>, Option<usize>) = (None, None);
    for (k, s) in f.states.iter().enumerate() {
        if s.input >= f.inputs.len() || s.output >= f.outputs.len() {
            return Err(bad(
                at_fn,
                format!("state {k} names a missing input or output"),
            ));
        }
        if let Some(prev) = k.checked_sub(1).map(|j| f.states[j]) {
            if s.input <= prev.input || s.output <= prev.output {
                return Err(bad(
                    at_fn,
                    "states must pair inputs and outputs in increasing order".into(),
                ));
            }
        }
        let loc = Location::Input {
            func: fi,
            input: s.input,
        };
        let input = f.inputs[s.input];
        let v = f.value(input);
        let out = f.value(f.outputs[s.output]);
        if out.ty != v.ty {
            return Err(bad(
                loc,
                format!(
                    "state `%{}` is {} but its updated value `%{}` is {}",
                    v.name, v.ty, out.name, out.ty
                ),
            ));
        }
        let writer = writer(f, fi, k)?;
        if f.outputs.contains(&input) || writer.results[0] != f.outputs[s.output] {
            return Err(bad(
                loc,
                format!(
                    "the updated state `%{}` must be the `{}` of `%{}`",
                    out.name, writer.op, v.name
                ),
            ));
        }
        let is_pool = writer.op == Op::WriteRows;
        if is_pool { &mut kinds.1 } else { &mut kinds.0 }.get_or_insert(k);
        if let (Some(tail), Some(pool)) = kinds {
            return Err(mixed(f, fi, tail, pool));
        }
        if is_pool {
            verify_pool(loc, v)?;
            continue;
        }
        let Some(Dim::Sym(l)) = v.ty.shape.dims().first() else {
            return Err(bad(
                loc,
                format!(
                    "state `%{}` must lead with a symbolic length dim, found {}",
                    v.name, v.ty
                ),
            ));
        };
        if !v.ty.shape.dims()[1..]
            .iter()
            .all(|d| d.as_static().is_some())
        {
            return Err(bad(
                loc,
                format!(
                    "state `%{}` must be static after its length dim, found {}",
                    v.name, v.ty
                ),
            ));
        }
        if *length.get_or_insert(l) != l {
            return Err(bad(
                loc,
                format!(
                    "state `%{}` has length dim `{l}` but an earlier state of `{}` has `{}`; a function's states share one",
                    v.name,
                    f.name,
                    length.unwrap_or_default()
                ),
            ));
        }
        let new_rows = model
            .operand_type(f, writer.operands[1])
            .shape
            .dims()
            .first();
        let Some(new_rows) = new_rows else {
            return Err(bad(loc, "appended rows must have rank 1 or more".into()));
        };
        if *advance.get_or_insert(new_rows) != new_rows {
            return Err(bad(
                loc,
                format!(
                    "every state must append the same number of rows, found {new_rows} and {}",
                    advance.map(ToString::to_string).unwrap_or_default()
                ),
            ));
        }
    }
    let (Some(length), Some(advance)) = (length, advance) else {
        return Ok(());
    };
    let bound_by_inputs = |d: &str| {
        f.inputs.iter().enumerate().any(|(i, &v)| {
            !f.is_state_input(i)
                && f.value(v)
                    .ty
                    .shape
                    .dims()
                    .iter()
                    .any(|x| *x == Dim::Sym(d.to_string()))
        })
    };
    if bound_by_inputs(length) {
        return Err(bad(
            at_fn,
            format!("the length dim `{length}` of the states must not appear in the other inputs (it is bound from the stored length)"),
        ));
    }
    if let Dim::Sym(a) = advance {
        if !bound_by_inputs(a) {
            return Err(bad(
                at_fn,
                format!("the appended rows `{a}` must be a dim of the inputs"),
            ));
        }
    }
    Ok(())
}

/// The instruction that writes state `k` of `f`: its one use, as the buffer
/// of a `write_tail` or a `write_rows`.
fn writer(f: &Function, fi: usize, k: usize) -> Result<&Instr, VerifyError> {
    let s = f.states[k];
    let input = Operand::Value(f.inputs[s.input]);
    let uses: Vec<(usize, usize)> = f
        .body
        .iter()
        .enumerate()
        .flat_map(|(ii, instr)| {
            instr
                .operands
                .iter()
                .enumerate()
                .filter(|(_, &o)| o == input)
                .map(move |(oi, _)| (ii, oi))
        })
        .collect();
    match uses.as_slice() {
        [(ii, 0)] if matches!(f.body[*ii].op, Op::WriteTail | Op::WriteRows) => Ok(&f.body[*ii]),
        _ => Err(bad(
            Location::Input {
                func: fi,
                input: s.input,
            },
            format!(
                "state `%{}` must be used once, as the buffer of a `write_tail` or a `write_rows` (found {} use(s))",
                f.value(f.inputs[s.input]).name,
                uses.len()
            ),
        )),
    }
}

/// A pool state (written by `write_rows`) has a static shape.
fn verify_pool(loc: Location, v: &Value) -> Result<(), VerifyError> {
    if v.ty.shape.is_static() {
        return Ok(());
    }
    Err(bad(
        loc,
        format!(
            "pool state `%{}` (written by `write_rows`) must have a static shape, found {}",
            v.name, v.ty
        ),
    ))
}

/// The error for function `fi` mixing appended-to state `tail` with pool state `pool`.
fn mixed(f: &Function, fi: usize, tail: usize, pool: usize) -> VerifyError {
    let name = |k: usize| &f.value(f.inputs[f.states[k].input]).name;
    bad(
        Location::Function(fi),
        format!(
            "function `{}` mixes state `%{}`, appended to by `write_tail`, with pool state `%{}`, written by `write_rows`: a function's states must all be appended to or all be pools",
            f.name,
            name(tail),
            name(pool)
        ),
    )
}

/// Checks that states of the same name have the same type in every function,
/// and that all states share one length dim (a session has one length).
pub(crate) fn verify_shared_states(model: &Model) -> Result<(), VerifyError> {
    let mut seen: std::collections::HashMap<&str, &crate::shape::TensorType> =
        std::collections::HashMap::new();
    let mut length: Option<&Dim> = None;
    for (fi, f) in model.functions.iter().enumerate() {
        for s in &f.states {
            let v = f.value(f.inputs[s.input]);
            // Pools have no length dim.
            if let Some(l @ Dim::Sym(_)) = v.ty.shape.dims().first() {
                match length {
                    Some(first) if first != l => {
                        return Err(bad(
                            Location::Input {
                                func: fi,
                                input: s.input,
                            },
                            format!(
                                "state `%{}` has length dim {l}, another function's states {first}: a model's states share one length dim",
                                v.name
                            ),
                        ))
                    }
                    _ => length = Some(l),
                }
            }
            if let Some(ty) = seen.insert(v.name.as_str(), &v.ty) {
                if *ty != v.ty {
                    return Err(bad(
                        Location::Input {
                            func: fi,
                            input: s.input,
                        },
                        format!(
                            "state `%{}` is {} here but {} in another function",
                            v.name, v.ty, ty
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Sets the most positions a verified model's KV caches hold to `max`: the
/// bound of the states' length dim, and the positions (second) dim of every
/// pool state (`[slots, positions, …]`, written by `write_rows`) and of the
/// value that updates it. Returns the length dim's name (`positions` for a
/// model whose states are all pools), or `None` when the model has no states.
pub fn set_max_length(model: &mut Model, max: u64) -> Option<String> {
    let dim = model
        .functions
        .iter()
        .find_map(|f| state_use(model, f))
        .map(|u| u.length_dim);
    if let Some(d) = dim
        .as_ref()
        .and_then(|dim| model.dims.iter_mut().find(|d| &d.name == dim))
    {
        d.max = max;
    }
    let mut pools = false;
    for f in &mut model.functions {
        for binding in f.states.clone() {
            let (input, output) = (f.inputs[binding.input], f.outputs[binding.output]);
            for v in [input, output] {
                let ty = &mut f.values[v.index()].ty;
                if let [Dim::Static(_), Dim::Static(_), ..] = ty.shape.dims() {
                    let mut dims = ty.shape.dims().to_vec();
                    dims[1] = Dim::Static(max);
                    *ty = crate::TensorType::new(ty.dtype, dims);
                    pools = true;
                }
            }
        }
    }
    dim.or_else(|| pools.then(|| "positions".to_string()))
}
