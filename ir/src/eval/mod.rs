//! The reference CPU evaluator: the executable definition of every op, and the
//! oracle every GPU kernel and every rewrite is tested against.
//!
//! [`evaluate`] verifies the model, binds each symbolic dim from the actual
//! input shapes, then runs the function's instructions in order. Floats are
//! computed in `f32` with `f32` accumulation (`f16` operands are widened, and
//! every `f16` result is rounded back to `f16` once per op); integers are exact
//! (wrapping on overflow). Clarity comes first; the kernels are plain loops.
//!
//! Data-dependent failures — an expert id or gather id out of range, a negative
//! rope position, a pool row out of range or written twice, an integer
//! division by zero — are [`EvalError`]s naming the
//! op, the value it computes and the offending number; the evaluator never panics
//! on user input.

use std::collections::HashMap;

use thiserror::Error;

use crate::model::{Function, Model, Operand, Value};
use crate::op::Op;
use crate::shape::{Dim, TensorType};
use crate::verify::{verify, VerifyError};
use crate::weights::{Weights, WeightsError};
use seam_core::DType;

mod attention;
pub mod budget;
mod cache;
mod collective;
pub(crate) mod elementwise;
mod linalg;
mod moe;
mod norm;
mod pool;
mod routing;
mod session;
mod shape_ops;
pub mod tensor;

#[cfg(test)]
mod tests;

pub use budget::{BudgetError, MemoryBudget};
pub use cache::CacheSession;
pub use collective::{evaluate_ranks, CollectiveError};
pub use session::StateSession;
pub use tensor::{Tensor, TensorData, TensorError};

/// Why evaluation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// The model does not verify.
    #[error("the model does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// The weights do not fit the model.
    #[error("weights do not fit the model: {0}")]
    Weights(#[from] WeightsError),
    /// A result tensor would exceed the memory budget (see [`budget`]).
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// No function has this name.
    #[error("the model has no function `{0}`")]
    UnknownFunction(String),
    /// Wrong number of inputs.
    #[error("function `{function}` takes {expected} input(s), but {found} were given")]
    InputCount {
        /// The function.
        function: String,
        /// Inputs it declares.
        expected: usize,
        /// Inputs given.
        found: usize,
    },
    /// An input tensor is internally inconsistent.
    #[error("input {index} (`%{name}`): {source}")]
    InputTensor {
        /// Input index.
        index: usize,
        /// The input's name.
        name: String,
        /// What is wrong.
        source: TensorError,
    },
    /// An input has the wrong dtype.
    #[error("input {index} (`%{name}`) must be {expected}, but a {found} tensor was given")]
    InputDType {
        /// Input index.
        index: usize,
        /// The input's name.
        name: String,
        /// The declared dtype.
        expected: DType,
        /// The given dtype.
        found: DType,
    },
    /// An input has the wrong rank.
    #[error("input {index} (`%{name}`) is declared {declared} (rank {expected}), but a tensor of shape {found:?} was given")]
    InputRank {
        /// Input index.
        index: usize,
        /// The input's name.
        name: String,
        /// The declared type.
        declared: TensorType,
        /// The declared rank.
        expected: usize,
        /// The given shape.
        found: Vec<usize>,
    },
    /// A static dim of an input differs from its declaration.
    #[error("input {index} (`%{name}`) is declared {declared}, but dim {axis} of the given shape {found:?} is not {expected}")]
    InputDim {
        /// Input index.
        index: usize,
        /// The input's name.
        name: String,
        /// The declared type.
        declared: TensorType,
        /// The axis.
        axis: usize,
        /// The declared size.
        expected: u64,
        /// The given shape.
        found: Vec<usize>,
    },
    /// A symbolic dim is bound to a size over its declared bound.
    #[error(
        "symbolic dim `{dim}` is {size} in input `%{input}`, over its bound (`dim {dim} <= {max}`)"
    )]
    DimOverBound {
        /// The dim.
        dim: String,
        /// The size found.
        size: usize,
        /// The declared bound.
        max: u64,
        /// The input that binds it.
        input: String,
    },
    /// Two inputs give a symbolic dim different sizes.
    #[error("symbolic dim `{dim}` is {first} in input `%{first_input}` but {second} in input `%{second_input}`")]
    DimMismatch {
        /// The dim.
        dim: String,
        /// Its first size.
        first: usize,
        /// The input that bound it first.
        first_input: String,
        /// The conflicting size.
        second: usize,
        /// The input that conflicts.
        second_input: String,
    },
    /// A value's type names a symbolic dim no input binds.
    #[error(
        "symbolic dim `{dim}` in the type of `%{value}` is not bound by any input of `{function}`"
    )]
    UnboundDim {
        /// The dim.
        dim: String,
        /// The value whose type needs it.
        value: String,
        /// The function.
        function: String,
    },
    /// A `moe` or `grouped_matmul` token selects an expert (or matrix) that
    /// does not exist.
    #[error("`{op}` computing `%{value}`: token {token} selects expert {id}, but there are only {experts} expert(s) (ids 0..{experts})")]
    ExpertIdOutOfRange {
        /// The op (`moe` or `grouped_matmul`).
        op: &'static str,
        /// The op's result value.
        value: String,
        /// The token (row of `ids`).
        token: usize,
        /// The id found.
        id: i64,
        /// Number of experts.
        experts: usize,
    },
    /// A `gather` id is not a row of the table.
    #[error("`gather` computing `%{value}`: id {id} (element {index} of the ids) is outside the table's rows 0..{rows}")]
    GatherIdOutOfRange {
        /// The gather's result value.
        value: String,
        /// Flat index of the offending id.
        index: usize,
        /// The id found.
        id: i64,
        /// Rows of the table.
        rows: usize,
    },
    /// `tail` or `write_tail` asks for more rows than the tensor has.
    #[error("`{op}` computing `%{value}`: {rows} rows asked of a tensor with {available}")]
    TailTooLong {
        /// The op.
        op: &'static str,
        /// Its result value.
        value: String,
        /// Rows asked for.
        rows: usize,
        /// Rows the tensor has.
        available: usize,
    },
    /// A call asks to reuse a cache that holds no value yet: the first call of
    /// a session must compute it.
    #[error("cache `{key}` is reused but holds no value yet: the first call must compute it")]
    CacheEmpty {
        /// The cache's key.
        key: String,
    },
    /// A call asks to reuse a cache the function does not have.
    #[error("`{function}` has no cache `{key}` (its caches: {known})")]
    UnknownCache {
        /// The function called.
        function: String,
        /// The key asked for.
        key: String,
        /// The keys it has, comma-separated.
        known: String,
    },
    /// A call would grow the states past their length dim's bound.
    #[error("the sequence is full: {stored} position(s) stored + {adding} new exceed the maximum {max} (the bound of `{dim}`; compile with a larger --max-seq-len)")]
    StateFull {
        /// The length dim.
        dim: String,
        /// Rows stored before the call.
        stored: usize,
        /// Rows the call appends.
        adding: usize,
        /// The bound.
        max: usize,
    },
    /// A `rope` position is negative.
    #[error("`rope` computing `%{value}`: position {pos} of token {token} is negative")]
    NegativePosition {
        /// The rope's result value.
        value: String,
        /// The token.
        token: usize,
        /// The position found.
        pos: i64,
    },
    /// A `write_rows` or `pooled_attention` token names a row outside the pool.
    #[error("`{op}` computing `%{value}`: token {token} names slot {slot}, position {pos}, outside the pool's {slots} slot(s) of {len} position(s)")]
    PoolRowOutOfRange {
        /// The op.
        op: &'static str,
        /// Its result value.
        value: String,
        /// The token.
        token: usize,
        /// The slot found.
        slot: i64,
        /// The position found.
        pos: i64,
        /// Slots in the pool.
        slots: usize,
        /// Positions per slot.
        len: usize,
    },
    /// Two `write_rows` tokens write the same row of the pool.
    #[error("`write_rows` computing `%{value}`: tokens {first} and {token} both write slot {slot}, position {pos}")]
    DuplicatePoolRow {
        /// The write's result value.
        value: String,
        /// The earlier token.
        first: usize,
        /// The later token.
        token: usize,
        /// The slot.
        slot: usize,
        /// The position.
        pos: usize,
    },
    /// An integer `div` by zero.
    #[error("`div` computing `%{value}`: integer division by zero at element {index}")]
    DivisionByZero {
        /// The div's result value.
        value: String,
        /// Flat index in the result.
        index: usize,
    },
    /// A reduction across the ranks of a shard set failed (see [`evaluate_ranks`]).
    #[error("`{op}` computing `%{value}`: {source}")]
    Collective {
        /// The op (`all_reduce` or `all_reduce_start`).
        op: &'static str,
        /// Its result value.
        value: String,
        /// What went wrong.
        source: CollectiveError,
    },
    /// A shard set was given inputs for a different number of ranks.
    #[error("{ranks} rank(s) but {inputs} input list(s) given: one per rank")]
    RankInputs {
        /// The ranks.
        ranks: usize,
        /// The input lists.
        inputs: usize,
    },
    /// Evaluation failed on one rank of a shard set (see [`evaluate_ranks`]).
    #[error("rank {rank}: {source}")]
    OnRank {
        /// The rank.
        rank: usize,
        /// Its failure.
        source: Box<EvalError>,
    },
    /// A kernel produced a result that disagrees with the declared type, or met
    /// operands it cannot handle: a bug in the evaluator or verifier.
    #[error("`{op}` computing `%{value}`: {detail} (an evaluator bug)")]
    Internal {
        /// The op.
        op: &'static str,
        /// Its result value.
        value: String,
        /// What went wrong.
        detail: String,
    },
}

/// The concrete sizes of the model's symbolic dims during one evaluation.
#[derive(Clone, Debug, Default)]
struct Bindings {
    sizes: HashMap<String, (usize, String)>,
}

impl Bindings {
    fn bind(
        &mut self,
        model: &Model,
        dim: &str,
        size: usize,
        input: &str,
    ) -> Result<(), EvalError> {
        if let Some(decl) = model.dim(dim) {
            if size as u64 > decl.max {
                return Err(EvalError::DimOverBound {
                    dim: dim.to_string(),
                    size,
                    max: decl.max,
                    input: input.to_string(),
                });
            }
        }
        match self.sizes.get(dim) {
            Some((first, first_input)) if *first != size => Err(EvalError::DimMismatch {
                dim: dim.to_string(),
                first: *first,
                first_input: first_input.clone(),
                second: size,
                second_input: input.to_string(),
            }),
            Some(_) => Ok(()),
            None => {
                self.sizes
                    .insert(dim.to_string(), (size, input.to_string()));
                Ok(())
            }
        }
    }

    fn resolve(&self, value: &Value, function: &str) -> Result<Vec<usize>, EvalError> {
        value
            .ty
            .shape
            .dims()
            .iter()
            .map(|d| match d {
                Dim::Static(n) => Ok(*n as usize),
                Dim::Sym(s) => {
                    self.sizes
                        .get(s)
                        .map(|(n, _)| *n)
                        .ok_or_else(|| EvalError::UnboundDim {
                            dim: s.clone(),
                            value: value.name.clone(),
                            function: function.to_string(),
                        })
                }
            })
            .collect()
    }
}

/// Checks the inputs against the function's signature and binds the symbolic dims.
fn bind_inputs(model: &Model, func: &Function, inputs: &[Tensor]) -> Result<Bindings, EvalError> {
    if inputs.len() != func.inputs.len() {
        return Err(EvalError::InputCount {
            function: func.name.clone(),
            expected: func.inputs.len(),
            found: inputs.len(),
        });
    }
    let mut b = Bindings::default();
    for (index, (&id, t)) in func.inputs.iter().zip(inputs).enumerate() {
        let v = func.value(id);
        let name = v.name.clone();
        t.validate().map_err(|source| EvalError::InputTensor {
            index,
            name: name.clone(),
            source,
        })?;
        if t.dtype != v.ty.dtype {
            return Err(EvalError::InputDType {
                index,
                name,
                expected: v.ty.dtype,
                found: t.dtype,
            });
        }
        if t.rank() != v.ty.rank() {
            return Err(EvalError::InputRank {
                index,
                name,
                declared: v.ty.clone(),
                expected: v.ty.rank(),
                found: t.shape.clone(),
            });
        }
        for (axis, (d, &size)) in v.ty.shape.dims().iter().zip(&t.shape).enumerate() {
            match d {
                Dim::Static(n) if *n != size as u64 => {
                    return Err(EvalError::InputDim {
                        index,
                        name,
                        declared: v.ty.clone(),
                        axis,
                        expected: *n,
                        found: t.shape.clone(),
                    })
                }
                Dim::Static(_) => {}
                Dim::Sym(s) => b.bind(model, s, size, &v.name)?,
            }
        }
    }
    Ok(b)
}

/// A declared result type with its symbolic dims resolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutType {
    /// The declared dtype.
    pub dtype: DType,
    /// The resolved shape.
    pub shape: Vec<usize>,
}

/// Runs function `function` of `model` on `inputs` (in signature order) with
/// `params`, returning the function's outputs in order.
///
/// The model is verified first; the inputs must match the declared dtypes, ranks
/// and static dims, and every symbolic dim is bound from the inputs' actual
/// shapes (consistently across inputs, within its declared bound). Each
/// result is checked against [`MemoryBudget::from_env`] before it is computed.
pub fn evaluate(
    model: &Model,
    function: &str,
    params: &Weights,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, EvalError> {
    evaluate_with(model, function, params, inputs, Hooks::default())
}

/// What an evaluation is joined to beyond its inputs.
#[derive(Default)]
pub(crate) struct Hooks<'a> {
    /// The `cache` ops read and update this store (see [`CacheSession`]);
    /// without, `cache` is the identity.
    pub caches: Option<&'a mut cache::CacheStore>,
    /// The `all_reduce` and `all_reduce_start` ops sum across the ranks of
    /// this rendezvous (see [`evaluate_ranks`]); without, they are the identity.
    pub comm: Option<collective::Member<'a>>,
}

/// [`evaluate`], joined to `hooks`.
pub(crate) fn evaluate_with(
    model: &Model,
    function: &str,
    params: &Weights,
    inputs: &[Tensor],
    mut hooks: Hooks<'_>,
) -> Result<Vec<Tensor>, EvalError> {
    verify(model)?;
    params.check(model)?;
    let func = model
        .function(function)
        .ok_or_else(|| EvalError::UnknownFunction(function.to_string()))?;
    let bindings = bind_inputs(model, func, inputs)?;
    let budget = MemoryBudget::from_env()?;
    let mut env: Vec<Option<Tensor>> = vec![None; func.values.len()];
    for (&id, t) in func.inputs.iter().zip(inputs) {
        env[id.index()] = Some(t.clone());
    }
    for instr in &func.body {
        let first = instr.results.first().map(|&r| func.value(r));
        let at = first.map_or("?", |v| v.name.as_str());
        let internal = |detail: String| EvalError::Internal {
            op: instr.op.name(),
            value: at.to_string(),
            detail,
        };
        let mut out_types = Vec::with_capacity(instr.results.len());
        for &r in &instr.results {
            let v = func.value(r);
            let shape = bindings.resolve(v, &func.name)?;
            let what = || format!("value `%{}` of `{}` ({})", v.name, instr.op.name(), v.ty);
            budget.check_tensor(what, v.ty.dtype, &shape)?;
            out_types.push(OutType {
                dtype: v.ty.dtype,
                shape,
            });
        }
        let results = {
            let mut operands = Vec::with_capacity(instr.operands.len());
            for &o in &instr.operands {
                let t = match o {
                    Operand::Value(v) => env.get(v.index()).and_then(Option::as_ref),
                    Operand::Param(p) => params.get(p),
                };
                operands.push(t.ok_or_else(|| internal(format!("operand {o:?} is undefined")))?);
            }
            let results = run_op(&instr.op, &operands, &out_types, at)?;
            match (&instr.op, hooks.caches.as_deref_mut(), hooks.comm) {
                (Op::Cache { key, .. }, Some(store), _) => store.pass(key, results, at)?,
                (Op::AllReduce { .. } | Op::AllReduceStart { .. }, _, Some(member)) => {
                    reduce_across(member, &instr.op, results, at)?
                }
                _ => results,
            }
        };
        if results.len() != instr.results.len() {
            return Err(internal(format!(
                "produced {} results for {} declared",
                results.len(),
                instr.results.len()
            )));
        }
        for ((t, ty), &r) in results.into_iter().zip(&out_types).zip(&instr.results) {
            if t.dtype != ty.dtype || t.shape != ty.shape {
                return Err(internal(format!(
                    "produced {}{:?} but `%{}` is declared {} = {}{:?}",
                    t.dtype,
                    t.shape,
                    func.value(r).name,
                    func.value(r).ty,
                    ty.dtype,
                    ty.shape
                )));
            }
            env[r.index()] = Some(t);
        }
    }
    func.outputs
        .iter()
        .map(|&o| {
            env.get(o.index())
                .and_then(Option::clone)
                .ok_or_else(|| EvalError::Internal {
                    op: "return",
                    value: func.value(o).name.clone(),
                    detail: "the returned value was never computed".into(),
                })
        })
        .collect()
}

/// The sum across `member`'s ranks of the single result of reduction `op`.
fn reduce_across(
    member: collective::Member<'_>,
    op: &Op,
    results: Vec<Tensor>,
    at: &str,
) -> Result<Vec<Tensor>, EvalError> {
    let failed = |source| EvalError::Collective {
        op: op.name(),
        value: at.to_string(),
        source,
    };
    results
        .iter()
        .map(|part| {
            member
                .rendezvous
                .all_reduce(member.rank, part)
                .map_err(failed)
        })
        .collect()
}

/// Where a kernel runs: the op and the value it computes, for error messages.
pub(crate) struct At<'a> {
    /// The op's name.
    pub op: &'static str,
    /// The name of the (first) result value.
    pub value: &'a str,
}

impl At<'_> {
    /// An [`EvalError::Internal`] at this op: a failure well-typed operands cannot cause.
    pub fn bug(&self, detail: impl std::fmt::Display) -> EvalError {
        EvalError::Internal {
            op: self.op,
            value: self.value.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Builds a result tensor, turning a length mismatch into [`EvalError::Internal`].
    pub fn tensor(&self, shape: Vec<usize>, data: TensorData) -> Result<Tensor, EvalError> {
        Tensor::new(shape, data).map_err(|e| self.bug(e))
    }

    /// Builds a result of float `dtype` from `f32` values (rounded for `f16`).
    pub fn floats(
        &self,
        dtype: DType,
        shape: Vec<usize>,
        values: Vec<f32>,
    ) -> Result<Tensor, EvalError> {
        Tensor::from_f32_vec(dtype, shape, values).map_err(|e| self.bug(e))
    }
}

/// Runs one op on its operands. `out` are the declared result types, resolved.
fn run_op(op: &Op, x: &[&Tensor], out: &[OutType], value: &str) -> Result<Vec<Tensor>, EvalError> {
    let at = &At {
        op: op.name(),
        value,
    };
    let out0 = out.first().ok_or_else(|| at.bug("no declared result"))?;
    let one = |r: Result<Tensor, EvalError>| r.map(|t| vec![t]);
    match op {
        Op::Const { value } => one(elementwise::constant(*value, out0, at)),
        Op::Iota { axis } => one(elementwise::iota(*axis, out0, at)),
        Op::MatMul => one(linalg::matmul(x[0], x[1], at)),
        Op::GatedMatMul { act } => one(linalg::gated_matmul(x[0], x[1], x[2], *act, at)),
        Op::MatMulAdd => one(linalg::matmul_add(x[0], x[1], x[2], at)),
        Op::Fused { expr } => one(elementwise::fused(expr, x, at)),
        Op::Binary(f) => one(elementwise::binary(*f, x[0], x[1], at)),
        Op::Unary(f) => one(elementwise::unary(*f, x[0], at)),
        Op::Cast => one(elementwise::cast(x[0], out0.dtype, at)),
        Op::RmsNorm { eps } => one(norm::rms_norm(x[0], x[1], *eps, at)),
        Op::LayerNorm { eps } => one(norm::layer_norm(x[0], x[1], x[2], *eps, at)),
        Op::Softmax => one(norm::softmax(x[0], at)),
        Op::ReduceSum => one(norm::reduce_sum(x[0], at)),
        Op::Reshape => one(at.tensor(out0.shape.clone(), x[0].data.clone())),
        Op::Transpose { perm } => one(shape_ops::transpose(x[0], perm, at)),
        Op::Concat { axis } => one(shape_ops::concat(x, *axis, at)),
        Op::Slice { axis, start, end } => one(shape_ops::slice(
            x[0],
            *axis,
            *start as usize,
            *end as usize,
            at,
        )),
        Op::Tail => one(shape_ops::tail(x[0], out0, at)),
        Op::WriteTail => one(shape_ops::write_tail(x[0], x[1], at)),
        Op::WriteRows => one(pool::write_rows(x[0], x[1], x[2], x[3], at)),
        Op::Gather => one(shape_ops::gather(x[0], x[1], at)),
        Op::Rope { theta } => one(attention::rope(x[0], x[1], *theta, at)),
        Op::Attention { causal, scale } => {
            one(attention::attention(x[0], x[1], x[2], *causal, *scale, at))
        }
        Op::PooledAttention { scale } => one(pool::pooled_attention(x, *scale, at)),
        Op::TopK { k } => routing::topk(x[0], *k, at),
        Op::Route { k, mode, renorm } => {
            routing::route(x[0], x.get(1).copied(), *k, *mode, *renorm, at)
        }
        Op::Moe { act } => one(moe::moe(x, *act, at)),
        Op::GroupedMatMul => one(moe::grouped_matmul(x[0], x[1], x[2], at)),
        Op::AllReduce { .. } | Op::AllReduceStart { .. } | Op::AllReduceWait | Op::Cache { .. } => {
            Ok(vec![x[0].clone()])
        }
    }
}
