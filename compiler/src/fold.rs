//! Compile-time folding of param-only values into packed weights.
//!
//! A `concat`, `slice`, `reshape` or `transpose` whose operands are all params
//! or other folded values (the concatenated heads of a merged matmul, a slice of
//! a stacked weight) computes the same tensor on every run. [`fold_params`]
//! evaluates such instructions once with the reference evaluator, turns every
//! folded value that a remaining instruction or an output reads into a new
//! param `fold.<n>` holding its tensor, drops the folded instructions and the
//! params nothing reads any more. A `reshape` directly of a param stays as it
//! is (a free view of the param's buffer, not a copy). The cost model gives these values no run-time
//! cost ([`crate::optimize::cost::param_only_classes`]).

use std::collections::{HashMap, HashSet};

use seam_ir::{
    evaluate, verify, EncodedWeight, EncodingError, EvalError, Function, Instr, Model, Op, Operand,
    ParamDecl, ParamId, Tensor, ValueId, WeightFormat, Weights, WeightsError,
};
use thiserror::Error;

/// Why folding failed (a compiler bug, or weights that do not fit the model).
#[derive(Debug, Error)]
pub enum FoldError {
    /// Evaluating the folded values failed.
    #[error("folding constants of `{function}`: {error}")]
    Eval {
        /// The function.
        function: String,
        /// The evaluator's error.
        error: Box<EvalError>,
    },
    /// The folded weights do not fit the folded model.
    #[error("folded weights: {0}")]
    Weights(#[from] WeightsError),
    /// A folded encoding does not fit its param (a compiler bug).
    #[error("folded encoding: {0}")]
    Encoding(#[from] EncodingError),
    /// The evaluator returned another number of values than was folded.
    #[error("folding constants of `{function}`: {found} values for {expected}")]
    ValueCount {
        /// The function.
        function: String,
        /// Values folded.
        expected: usize,
        /// Values returned.
        found: usize,
    },
}

/// Whether `op` is a movement op folded when its operands are constants.
fn is_movement(op: &Op) -> bool {
    matches!(
        op,
        Op::Concat { .. } | Op::Slice { .. } | Op::Reshape | Op::Transpose { .. }
    )
}

/// A model with its param-only values folded ([`fold_params`]).
#[derive(Clone, Debug)]
pub struct Folded {
    /// The model reading the folded values as params.
    pub model: Model,
    /// Its weights.
    pub weights: Weights,
    /// Params added (`fold.<n>`).
    pub added: usize,
    /// Bytes of the added params.
    pub added_bytes: u64,
}

/// Folds the param-only movement instructions of every function of `model`
/// into new params (see the module docs). Params that only folded instructions
/// read are dropped; params the model never read are kept.
pub fn fold_params(model: &Model, weights: &Weights) -> Result<Folded, FoldError> {
    let mut out = model.clone();
    let mut tensors: Vec<(Tensor, Option<EncodedWeight>)> = (0..model.params.len())
        .map(|i| {
            let p = ParamId(i as u32);
            (weights.tensors()[i].clone(), weights.encoding(p).cloned())
        })
        .collect();
    let mut names: HashSet<String> = model.params.iter().map(|p| p.name.clone()).collect();
    let mut next = 0usize;
    for (fi, func) in model.functions.iter().enumerate() {
        let folded: Vec<usize> = foldable(func);
        if folded.is_empty() {
            continue;
        }
        let constants = evaluate_folded(model, weights, func, &folded)?;
        // A `reshape` of a param read at run time is already free (a view of
        // the param's buffer): kept as it is rather than copied into a new param.
        let read_at_run_time: HashSet<ValueId> = func
            .body
            .iter()
            .enumerate()
            .filter(|(i, _)| folded.binary_search(i).is_err())
            .flat_map(|(_, instr)| instr.operands.iter())
            .filter_map(|o| match o {
                Operand::Value(v) => Some(*v),
                Operand::Param(_) => None,
            })
            .chain(func.outputs.iter().copied())
            .collect();
        let views: HashSet<usize> = folded
            .iter()
            .copied()
            .filter(|&i| is_param_view(&func.body[i]))
            .filter(|&i| {
                func.body[i]
                    .results
                    .iter()
                    .any(|r| read_at_run_time.contains(r))
            })
            .collect();
        let folded_values: HashSet<ValueId> = folded
            .iter()
            .filter(|i| !views.contains(i))
            .flat_map(|&i| func.body[i].results.iter().copied())
            .collect();
        let mut param_of: HashMap<ValueId, ParamId> = HashMap::new();
        let mut func_out = func.clone();
        func_out.body = Vec::with_capacity(func.body.len());
        let mut as_param =
            |v: ValueId, out: &mut Model, tensors: &mut Vec<(Tensor, Option<EncodedWeight>)>| {
                *param_of.entry(v).or_insert_with(|| {
                    let name = loop {
                        let n = format!("fold.{next}");
                        next += 1;
                        if names.insert(n.clone()) {
                            break n;
                        }
                    };
                    let encoding = concat_encoding(func, v, weights);
                    out.params.push(ParamDecl {
                        format: encoding.as_ref().map_or(WeightFormat::F32, |e| e.format),
                        ..ParamDecl::new(name, func.value(v).ty.clone())
                    });
                    tensors.push((constants[&v].clone(), encoding));
                    ParamId(out.params.len() as u32 - 1)
                })
            };
        for (i, instr) in func.body.iter().enumerate() {
            if folded.binary_search(&i).is_ok() && !views.contains(&i) {
                continue;
            }
            let mut instr: Instr = instr.clone();
            for o in &mut instr.operands {
                if let Operand::Value(v) = *o {
                    if folded_values.contains(&v) {
                        *o = Operand::Param(as_param(v, &mut out, &mut tensors));
                    }
                }
            }
            func_out.body.push(instr);
        }
        for o in &func.outputs {
            if folded_values.contains(o) {
                // An output must be a value: keep a reshape of the new param.
                let p = as_param(*o, &mut out, &mut tensors);
                func_out.body.push(Instr {
                    op: Op::Reshape,
                    operands: vec![Operand::Param(p)],
                    results: vec![*o],
                });
            }
        }
        out.functions[fi] = func_out;
    }
    let before = read_params(model);
    let after = read_params(&out);
    let keep: Vec<bool> = (0..out.params.len())
        .map(|i| after.contains(&i) || !before.contains(&i))
        .collect();
    let added = out.params.len() - model.params.len();
    let added_bytes = out.params[model.params.len()..]
        .iter()
        .map(|p| (p.sizes().iter().product::<usize>() * p.ty.dtype.size_bytes()) as u64)
        .sum();
    let (out, kept) = drop_params(out, tensors, &keep);
    let (tensors, encodings): (Vec<Tensor>, Vec<Option<EncodedWeight>>) = kept.into_iter().unzip();
    let mut weights = Weights::new(&out, tensors)?;
    for (i, e) in encodings.into_iter().enumerate() {
        if let Some(e) = e {
            weights.set_encoding(ParamId(i as u32), e)?;
        }
    }
    debug_assert!(verify(&out).is_ok(), "folding keeps the model valid");
    Ok(Folded {
        model: out,
        weights,
        added,
        added_bytes,
    })
}

/// The encoding of folded value `v` when it is a concatenation, along `N`, of
/// `[K, N]` params encoded in one format: their rows one after the other (in
/// the transposed layout a column is a row). `None` otherwise: the folded
/// param is then stored in `f32`.
fn concat_encoding(func: &Function, v: ValueId, weights: &Weights) -> Option<EncodedWeight> {
    let instr = func.body.iter().find(|i| i.results.contains(&v))?;
    let Op::Concat { axis } = instr.op else {
        return None;
    };
    if axis != 1 || func.value(v).ty.rank() != 2 {
        return None;
    }
    let parts: Vec<&EncodedWeight> = instr
        .operands
        .iter()
        .map(|o| match o {
            Operand::Param(p) => weights.encoding(*p),
            Operand::Value(_) => None,
        })
        .collect::<Option<_>>()?;
    let first = parts.first()?;
    if parts
        .iter()
        .any(|e| e.format != first.format || e.k != first.k)
    {
        return None;
    }
    let bytes: Vec<u8> = parts.iter().flat_map(|e| e.bytes.iter().copied()).collect();
    Some(EncodedWeight {
        format: first.format,
        rows: parts.iter().map(|e| e.rows).sum(),
        k: first.k,
        bytes: bytes.into(),
    })
}

/// Whether `instr` is a `reshape` of a param.
fn is_param_view(instr: &Instr) -> bool {
    matches!(
        (&instr.op, instr.operands.as_slice()),
        (Op::Reshape, [Operand::Param(_)])
    )
}

/// Indices (ascending) of the instructions of `func` that are param-only movement.
fn foldable(func: &Function) -> Vec<usize> {
    let mut constant: HashSet<ValueId> = HashSet::new();
    let mut out = Vec::new();
    for (i, instr) in func.body.iter().enumerate() {
        let all_const = instr.operands.iter().all(|o| match o {
            Operand::Param(_) => true,
            Operand::Value(v) => constant.contains(v),
        });
        if is_movement(&instr.op) && all_const && !instr.operands.is_empty() {
            constant.extend(instr.results.iter().copied());
            out.push(i);
        }
    }
    out
}

/// Evaluates the instructions `folded` of `func` (a function of params only).
fn evaluate_folded(
    model: &Model,
    weights: &Weights,
    func: &Function,
    folded: &[usize],
) -> Result<HashMap<ValueId, Tensor>, FoldError> {
    let mut sub = Function::new(format!("{}.fold", func.name));
    sub.values = func.values.clone();
    sub.body = folded.iter().map(|&i| func.body[i].clone()).collect();
    sub.outputs = sub
        .body
        .iter()
        .flat_map(|instr| instr.results.iter().copied())
        .collect();
    let mut m = model.clone();
    m.functions = vec![sub];
    let eval_err = |error: EvalError| FoldError::Eval {
        function: func.name.clone(),
        error: Box::new(error),
    };
    let values = evaluate(&m, &m.functions[0].name, weights, &[]).map_err(eval_err)?;
    let outputs = &m.functions[0].outputs;
    if values.len() != outputs.len() {
        return Err(FoldError::ValueCount {
            function: func.name.clone(),
            expected: outputs.len(),
            found: values.len(),
        });
    }
    Ok(outputs.iter().copied().zip(values).collect())
}

/// The indices of the params some instruction reads.
fn read_params(model: &Model) -> HashSet<usize> {
    let mut used = HashSet::new();
    for f in &model.functions {
        for instr in &f.body {
            for o in &instr.operands {
                if let Operand::Param(p) = o {
                    used.insert(p.index());
                }
            }
        }
    }
    used
}

/// Keeps the params `keep` marks (the ones folding left unread are dropped;
/// params the input never read stay), renumbering them.
fn drop_params<T>(mut model: Model, tensors: Vec<T>, keep: &[bool]) -> (Model, Vec<T>) {
    let used = keep;
    let mut renumber = vec![None; used.len()];
    let mut params = Vec::new();
    let mut kept = Vec::new();
    for (i, (decl, t)) in model.params.drain(..).zip(tensors).enumerate() {
        if used[i] {
            renumber[i] = Some(ParamId(params.len() as u32));
            params.push(decl);
            kept.push(t);
        }
    }
    model.params = params;
    for f in &mut model.functions {
        for instr in &mut f.body {
            for o in &mut instr.operands {
                if let Operand::Param(p) = o {
                    if let Some(q) = renumber[p.index()] {
                        *p = q;
                    }
                }
            }
        }
    }
    (model, kept)
}
