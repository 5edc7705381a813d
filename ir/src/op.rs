//! The op set: every operation an instruction can perform, with its attributes.
//!
//! Each op knows its text-format name, how many operands and results it takes, and
//! how to list and rebuild its attributes, so the parser, printer and builder share
//! one definition. Semantics are documented per variant; the reference evaluator
//! ([`crate::eval`]) is their executable definition.

use std::fmt;

use thiserror::Error;

use crate::fused::FusedExpr;

/// How `gelu` is computed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GeluApprox {
    /// `0.5·x·(1 + erf(x/√2))`, the exact form (PyTorch `gelu`).
    Erf,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (PyTorch `gelu(approximate="tanh")`).
    Tanh,
}

/// How `route` turns router outputs into expert ids and weights.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteMode {
    /// `p = softmax(logits)`; ids = top-k of `p`; weights = `p[ids]`, divided by their
    /// sum when `renorm` is set (Mixtral renormalises, Qwen2-MoE by `norm_topk_prob`).
    SoftmaxTopk,
    /// ids = top-k of `logits`; weights = softmax over the k selected logits.
    TopkSoftmax,
    /// Selection decoupled from weighting (AdaMoE): ids = top-k of operand 0,
    /// weights = operand 1 (`scores`) taken at those ids, never renormalised.
    Take,
}

/// The gated activation of each expert in a `moe`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GatedAct {
    /// `down(silu(x·gate) * (x·up))`.
    SwiGlu,
    /// `down(gelu_erf(x·gate) * (x·up))`.
    GeGlu,
}

/// Reduction performed by `all_reduce`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Element-wise sum across ranks.
    Sum,
}

/// An attribute value as written in the text format.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// An integer: `k=2`.
    Int(i64),
    /// A float: `eps=0.00001`.
    Float(f64),
    /// A boolean: `causal=true`.
    Bool(bool),
    /// A bare identifier naming an enum case: `mode=softmax_topk`.
    Ident(String),
    /// A quoted string: `key="enc"`.
    Str(String),
    /// A list of integers: `perm=[1, 0, 2]`.
    Ints(Vec<i64>),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write_float(f, *v),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Ident(v) => f.write_str(v),
            AttrValue::Str(v) => write!(f, "{v:?}"),
            AttrValue::Ints(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Writes a float so that it reads back as a float with the same value
/// (always with a `.`, `e`, `inf` or `nan`, so it never parses as an integer).
fn write_float(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("nan")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        let s = format!("{v:?}");
        f.write_str(&s)
    }
}

/// The f64 written for an f32 attribute: the f64 nearest the shortest decimal
/// that reads back as `x` (so `eps=1e-5` prints as `1e-5`, not
/// `9.999999747378752e-6`), provided it converts back to exactly `x`;
/// otherwise `x` widened exactly.
fn f32_attr(x: f32) -> f64 {
    match format!("{x:?}").parse::<f64>() {
        Ok(d) if (d as f32).to_bits() == x.to_bits() => d,
        _ => f64::from(x),
    }
}

/// Number of operands an op accepts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exact(usize),
    /// One of these counts.
    OneOf(&'static [usize]),
    /// At least this many.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` operands are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::OneOf(ks) => ks.contains(&n),
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exact(k) => write!(f, "{k}"),
            Arity::OneOf(ks) => {
                let parts: Vec<String> = ks.iter().map(|k| k.to_string()).collect();
                f.write_str(&parts.join(" or "))
            }
            Arity::AtLeast(k) => write!(f, "at least {k}"),
        }
    }
}

/// An operation. Shapes below use `T` for a (possibly symbolic) token dim.
/// All tensors are row-major; "the last axis" is the contiguous one.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A tensor of the declared type with every element equal to `value`.
    Const {
        /// The fill value (converted to the declared dtype).
        value: f64,
    },
    /// A tensor of the declared type whose element at index `i` is `i[axis]`
    /// (positions `0..n`).
    Iota {
        /// The axis whose index is written.
        axis: usize,
    },
    /// `a[..., M, K] × b[K, N] → [..., M, N]`, or with `b[..., K, N]` of the same
    /// batch dims as `a`, a batched product. f32 accumulation.
    MatMul,
    /// Gated projection `act(x·w_gate) * (x·w_up)`: `x[..., M, K]`,
    /// `w_gate[K, N]`, `w_up[K, N]` → `[..., M, N]`, with `act` as in `moe`
    /// ([`GatedAct`]: `silu` for `swiglu`, exact `gelu` for `geglu`). Both products
    /// and the epilogue in f32, rounded to the dtype once. Text:
    /// `gated_matmul(%x, @wg, @wu, act=swiglu)` (`act` defaults to `swiglu`).
    GatedMatMul {
        /// The activation applied to `x·w_gate`.
        act: GatedAct,
    },
    /// Matmul with an add epilogue, `x·w + r`: `x[..., M, K]`, `w[K, N]`, and `r`
    /// either a bias `[N]` (added to every row) or a residual of the result's
    /// shape `[..., M, N]`; result `[..., M, N]`. The product and the add in
    /// f32, rounded to the dtype once. Text: `matmul_add(%x, @w, %r)`.
    MatMulAdd,
    /// Element-wise `a + b` with trailing-dim broadcasting.
    Add,
    /// Element-wise `a - b` with broadcasting.
    Sub,
    /// Element-wise `a * b` with broadcasting.
    Mul,
    /// Element-wise `a / b` with broadcasting.
    Div,
    /// Element-wise `a == b` with broadcasting: 1 where equal, 0 elsewhere, in the operands' dtype.
    Eq,
    /// Element-wise `-x`.
    Neg,
    /// Element-wise `exp(x)`.
    Exp,
    /// Element-wise `x · sigmoid(x)`.
    Silu,
    /// Element-wise GELU.
    Gelu {
        /// Which formula.
        approx: GeluApprox,
    },
    /// Element-wise `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Element-wise `tanh(x)`.
    Tanh,
    /// A fused element-wise expression over its operands (one or more float
    /// tensors of one dtype): the result has the shape all operands broadcast
    /// to (numpy rules, as `add`), and each element is `expr` evaluated in f32
    /// with `$i` the element of operand `i` broadcast to that position (see
    /// [`crate::fused`] for the expression syntax), rounded to the dtype once.
    /// Every operand must be used. Text: `fused(%a, %b, expr="mul(silu($0), $1)")`.
    Fused {
        /// The expression.
        expr: FusedExpr,
    },
    /// Converts to the declared dtype (same shape). Float → int truncates toward zero.
    Cast,
    /// `x / sqrt(mean(x², last axis) + eps) · w`, `w` of the last dim's size.
    RmsNorm {
        /// Added to the mean square.
        eps: f32,
    },
    /// `(x - mean) / sqrt(var + eps) · w + b` over the last axis (biased variance).
    LayerNorm {
        /// Added to the variance.
        eps: f32,
    },
    /// Softmax over the last axis.
    Softmax,
    /// Sum over the last axis, which is removed.
    ReduceSum,
    /// Same elements, the declared shape (equal element count).
    Reshape,
    /// Permutes dims: result dim `i` is operand dim `perm[i]`.
    Transpose {
        /// A permutation of `0..rank`.
        perm: Vec<usize>,
    },
    /// Joins operands along `axis`; every other dim must agree.
    Concat {
        /// The joined axis.
        axis: usize,
    },
    /// Elements `start..end` along `axis` (static bounds).
    Slice {
        /// The sliced axis (must be static).
        axis: usize,
        /// First index kept.
        start: u64,
        /// One past the last index kept.
        end: u64,
    },
    /// The last `T` rows (along axis 0) of `x[S, ...]`, `T` the declared result's
    /// leading dim: `[T, ...]` (`T ≤ S` at run time). With a state's length dim
    /// `S`, the rows of the tokens a call appends (e.g. their positions).
    Tail,
    /// `buf[S, ...]` with its last `T` rows (along axis 0) replaced by `new[T, ...]`
    /// (`T ≤ S` at run time): appending to a session state such as a KV cache
    /// (see [`crate::Function::states`]); lowered in place.
    WriteTail,
    /// Embedding lookup: `table[V, D]`, integer `ids[...]` → `[..., D]`.
    Gather,
    /// Rotary position embedding (rotate-half convention, as Llama):
    /// `x[T, H, Dh]`, integer `pos[T]`; pairs `(i, i + Dh/2)` rotate by
    /// `pos · theta^(-2i/Dh)`.
    Rope {
        /// Base of the frequencies.
        theta: f32,
    },
    /// Scaled dot-product attention with grouped-query heads:
    /// `q[T, Hq, Dh]`, `k[S, Hkv, Dh]`, `v[S, Hkv, Dh]` → `[T, Hq, Dh]`, query head `h`
    /// reading kv head `h / (Hq / Hkv)`. With `causal`, query `t` sees keys
    /// `s ≤ t + (S - T)` (the queries are the last `T` positions).
    Attention {
        /// Mask future keys.
        causal: bool,
        /// Logit scale; `None` means `1 / sqrt(Dh)`.
        scale: Option<f32>,
    },
    /// The `k` largest values over the last axis, descending (ties: lower index first):
    /// results `values[..., k]` (operand dtype) and `indices[..., k]` (i32).
    TopK {
        /// How many.
        k: usize,
    },
    /// Router decision: `logits[T, E]` (and `scores[T, E]` for [`RouteMode::Take`]) →
    /// `ids: i32[T, k]`, `weights: f32[T, k]`. Leading dims may be more than one
    /// (`logits[T, L, E]` → `[T, L, k]`, one independent decision per row over the
    /// last axis: the batched per-layer heads of a pre-gating router).
    Route {
        /// Experts per token.
        k: usize,
        /// How ids and weights are derived.
        mode: RouteMode,
        /// Divide the k weights by their sum ([`RouteMode::SoftmaxTopk`] only).
        renorm: bool,
    },
    /// Grouped expert FFN with weighted combine. Operands: `x[T, D]`, `ids: i32[T, k]`,
    /// `weights[T, k]`, `w_gate[E, D, F]`, `w_up[E, D, F]`, `w_down[E, F, D]`, and
    /// optionally an always-on shared expert `s_gate[D, Fs]`, `s_up[D, Fs]`, `s_down[Fs, D]`.
    /// `y[t] = Σ_j weights[t, j] · expert_{ids[t, j]}(x[t]) + shared(x[t])`,
    /// `expert_e(x) = (act(x·w_gate[e]) * (x·w_up[e]))·w_down[e]`.
    /// Defined by its per-expert dense expansion ([`crate::expand::expand_moe`]).
    Moe {
        /// Gated activation of every expert (and the shared one).
        act: GatedAct,
    },
    /// Reduction across tensor-parallel ranks; the identity on one device.
    AllReduce {
        /// The reduction.
        reduce: ReduceOp,
    },
    /// Starts an [`Op::AllReduce`] without waiting for it: the result is the
    /// in-flight reduction, which only [`Op::AllReduceWait`] may read. The
    /// identity on one device. Split from `all_reduce` by the optimizer so that
    /// compute not reading the buffer can run between start and wait.
    AllReduceStart {
        /// The reduction.
        reduce: ReduceOp,
    },
    /// Waits for an [`Op::AllReduceStart`] and yields the reduced tensor. The
    /// identity on one device.
    AllReduceWait,
    /// Marks a result reused across invocations (DDT-style); the identity when evaluated.
    Cache {
        /// Cache slot name.
        key: String,
        /// Recompute every `refresh` invocations.
        refresh: u32,
    },
}

/// Why an op could not be built from a name and attributes.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OpError {
    /// No op has this name.
    #[error("unknown op `{0}`")]
    UnknownOp(String),
    /// The op has no attribute of this name.
    #[error("op `{op}` has no attribute `{attr}` (it takes: {expected})")]
    UnknownAttr {
        /// The op.
        op: &'static str,
        /// The attribute given.
        attr: String,
        /// The attributes it takes.
        expected: String,
    },
    /// A required attribute was not given.
    #[error("op `{op}` needs attribute `{attr}`")]
    MissingAttr {
        /// The op.
        op: &'static str,
        /// The missing attribute.
        attr: &'static str,
    },
    /// The attribute was given twice.
    #[error("attribute `{attr}` given twice")]
    DuplicateAttr {
        /// The attribute.
        attr: String,
    },
    /// The attribute value has the wrong kind or is out of range.
    #[error("attribute `{attr}` of `{op}` must be {expected}, found `{found}`")]
    BadAttr {
        /// The op.
        op: &'static str,
        /// The attribute.
        attr: &'static str,
        /// What it must be.
        expected: String,
        /// What was given.
        found: String,
    },
}

/// Names of every op, in the order the docs list them.
pub const OP_NAMES: &[&str] = &[
    "const",
    "iota",
    "matmul",
    "gated_matmul",
    "matmul_add",
    "add",
    "sub",
    "mul",
    "div",
    "eq",
    "neg",
    "exp",
    "silu",
    "gelu",
    "sigmoid",
    "tanh",
    "fused",
    "cast",
    "rms_norm",
    "layer_norm",
    "softmax",
    "reduce_sum",
    "reshape",
    "transpose",
    "concat",
    "slice",
    "tail",
    "write_tail",
    "gather",
    "rope",
    "attention",
    "topk",
    "route",
    "moe",
    "all_reduce",
    "all_reduce_start",
    "all_reduce_wait",
    "cache",
];

impl Op {
    /// The op's name in the text format.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Const { .. } => "const",
            Op::Iota { .. } => "iota",
            Op::MatMul => "matmul",
            Op::GatedMatMul { .. } => "gated_matmul",
            Op::MatMulAdd => "matmul_add",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Eq => "eq",
            Op::Neg => "neg",
            Op::Exp => "exp",
            Op::Silu => "silu",
            Op::Gelu { .. } => "gelu",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::Fused { .. } => "fused",
            Op::Cast => "cast",
            Op::RmsNorm { .. } => "rms_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Softmax => "softmax",
            Op::ReduceSum => "reduce_sum",
            Op::Reshape => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Tail => "tail",
            Op::WriteTail => "write_tail",
            Op::Gather => "gather",
            Op::Rope { .. } => "rope",
            Op::Attention { .. } => "attention",
            Op::TopK { .. } => "topk",
            Op::Route { .. } => "route",
            Op::Moe { .. } => "moe",
            Op::AllReduce { .. } => "all_reduce",
            Op::AllReduceStart { .. } => "all_reduce_start",
            Op::AllReduceWait => "all_reduce_wait",
            Op::Cache { .. } => "cache",
        }
    }

    /// How many operands the op takes.
    pub fn arity(&self) -> Arity {
        match self {
            Op::Const { .. } | Op::Iota { .. } => Arity::Exact(0),
            Op::MatMul
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Eq
            | Op::Gather
            | Op::WriteTail => Arity::Exact(2),
            Op::Rope { .. } => Arity::Exact(2),
            Op::Neg
            | Op::Exp
            | Op::Silu
            | Op::Gelu { .. }
            | Op::Sigmoid
            | Op::Tanh
            | Op::Cast
            | Op::Softmax
            | Op::ReduceSum
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Tail
            | Op::TopK { .. }
            | Op::AllReduce { .. }
            | Op::AllReduceStart { .. }
            | Op::AllReduceWait
            | Op::Cache { .. } => Arity::Exact(1),
            Op::RmsNorm { .. } => Arity::Exact(2),
            Op::LayerNorm { .. }
            | Op::Attention { .. }
            | Op::GatedMatMul { .. }
            | Op::MatMulAdd => Arity::Exact(3),
            Op::Fused { .. } => Arity::AtLeast(1),
            Op::Concat { .. } => Arity::AtLeast(1),
            Op::Route { mode, .. } => match mode {
                RouteMode::Take => Arity::Exact(2),
                _ => Arity::Exact(1),
            },
            Op::Moe { .. } => Arity::OneOf(&[6, 9]),
        }
    }

    /// How many results the op produces.
    pub fn num_results(&self) -> usize {
        match self {
            Op::TopK { .. } | Op::Route { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the result type is taken from the instruction's declaration rather
    /// than inferred from operands (`const`, `iota`, `reshape`, `cast`, `tail`).
    pub fn result_type_is_declared(&self) -> bool {
        matches!(
            self,
            Op::Const { .. } | Op::Iota { .. } | Op::Reshape | Op::Cast | Op::Tail
        )
    }

    /// Whether the op is element-wise (unary or broadcasting binary).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Eq
                | Op::Neg
                | Op::Exp
                | Op::Silu
                | Op::Gelu { .. }
                | Op::Sigmoid
                | Op::Tanh
                | Op::Fused { .. }
        )
    }

    /// The op's attributes, in the order the printer writes them.
    pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        use AttrValue as A;
        match self {
            Op::Const { value } => vec![("value", A::Float(*value))],
            Op::Iota { axis } => vec![("axis", A::Int(*axis as i64))],
            Op::Gelu { approx } => vec![(
                "approx",
                A::Ident(
                    match approx {
                        GeluApprox::Erf => "erf",
                        GeluApprox::Tanh => "tanh",
                    }
                    .into(),
                ),
            )],
            Op::RmsNorm { eps } | Op::LayerNorm { eps } => {
                vec![("eps", A::Float(f32_attr(*eps)))]
            }
            Op::Transpose { perm } => {
                vec![("perm", A::Ints(perm.iter().map(|&p| p as i64).collect()))]
            }
            Op::Concat { axis } => vec![("axis", A::Int(*axis as i64))],
            Op::Slice { axis, start, end } => vec![
                ("axis", A::Int(*axis as i64)),
                ("start", A::Int(*start as i64)),
                ("end", A::Int(*end as i64)),
            ],
            Op::Rope { theta } => vec![("theta", A::Float(f32_attr(*theta)))],
            Op::Attention { causal, scale } => {
                let mut v = vec![("causal", A::Bool(*causal))];
                if let Some(s) = scale {
                    v.push(("scale", A::Float(f32_attr(*s))));
                }
                v
            }
            Op::TopK { k } => vec![("k", A::Int(*k as i64))],
            Op::Route { k, mode, renorm } => vec![
                ("k", A::Int(*k as i64)),
                (
                    "mode",
                    A::Ident(
                        match mode {
                            RouteMode::SoftmaxTopk => "softmax_topk",
                            RouteMode::TopkSoftmax => "topk_softmax",
                            RouteMode::Take => "take",
                        }
                        .into(),
                    ),
                ),
                ("renorm", A::Bool(*renorm)),
            ],
            Op::Moe { act } | Op::GatedMatMul { act } => vec![(
                "act",
                A::Ident(
                    match act {
                        GatedAct::SwiGlu => "swiglu",
                        GatedAct::GeGlu => "geglu",
                    }
                    .into(),
                ),
            )],
            Op::Fused { expr } => vec![("expr", A::Str(expr.to_string()))],
            Op::AllReduce { reduce } | Op::AllReduceStart { reduce } => vec![(
                "reduce",
                A::Ident(
                    match reduce {
                        ReduceOp::Sum => "sum",
                    }
                    .into(),
                ),
            )],
            Op::Cache { key, refresh } => vec![
                ("key", A::Str(key.clone())),
                ("refresh", A::Int(i64::from(*refresh))),
            ],
            _ => Vec::new(),
        }
    }

    /// Builds an op from its name and attributes (as the parser reads them).
    /// Attributes with defaults may be omitted.
    pub fn from_parts(name: &str, attrs: &[(String, AttrValue)]) -> Result<Op, OpError> {
        let op_name: &'static str = OP_NAMES
            .iter()
            .copied()
            .find(|n| *n == name)
            .ok_or_else(|| OpError::UnknownOp(name.to_string()))?;
        let mut a = AttrReader::new(op_name, attrs)?;
        let op = match op_name {
            "const" => Op::Const {
                value: a.float("value", None)?,
            },
            "iota" => Op::Iota {
                axis: a.uint("axis", Some(0))? as usize,
            },
            "matmul" => Op::MatMul,
            "gated_matmul" => Op::GatedMatMul {
                act: a.gated_act()?,
            },
            "matmul_add" => Op::MatMulAdd,
            "add" => Op::Add,
            "sub" => Op::Sub,
            "mul" => Op::Mul,
            "div" => Op::Div,
            "eq" => Op::Eq,
            "neg" => Op::Neg,
            "exp" => Op::Exp,
            "silu" => Op::Silu,
            "gelu" => Op::Gelu {
                approx: a.ident(
                    "approx",
                    &[("erf", GeluApprox::Erf), ("tanh", GeluApprox::Tanh)],
                    Some(GeluApprox::Erf),
                )?,
            },
            "sigmoid" => Op::Sigmoid,
            "tanh" => Op::Tanh,
            "fused" => {
                let text = a.string("expr")?;
                let expr = FusedExpr::parse(&text).map_err(|e| {
                    a.bad(
                        "expr",
                        &format!("a fused expression ({e})"),
                        &AttrValue::Str(text.clone()),
                    )
                })?;
                Op::Fused { expr }
            }
            "cast" => Op::Cast,
            "rms_norm" => Op::RmsNorm {
                eps: a.float("eps", Some(1e-5))? as f32,
            },
            "layer_norm" => Op::LayerNorm {
                eps: a.float("eps", Some(1e-5))? as f32,
            },
            "softmax" => Op::Softmax,
            "reduce_sum" => Op::ReduceSum,
            "reshape" => Op::Reshape,
            "transpose" => Op::Transpose {
                perm: a.uints("perm")?,
            },
            "concat" => Op::Concat {
                axis: a.uint("axis", None)? as usize,
            },
            "slice" => Op::Slice {
                axis: a.uint("axis", None)? as usize,
                start: a.uint("start", None)?,
                end: a.uint("end", None)?,
            },
            "tail" => Op::Tail,
            "write_tail" => Op::WriteTail,
            "gather" => Op::Gather,
            "rope" => Op::Rope {
                theta: a.float("theta", Some(10000.0))? as f32,
            },
            "attention" => Op::Attention {
                causal: a.bool("causal", Some(true))?,
                scale: a.opt_float("scale")?.map(|s| s as f32),
            },
            "topk" => Op::TopK {
                k: a.uint("k", None)? as usize,
            },
            "route" => Op::Route {
                k: a.uint("k", None)? as usize,
                mode: a.ident(
                    "mode",
                    &[
                        ("softmax_topk", RouteMode::SoftmaxTopk),
                        ("topk_softmax", RouteMode::TopkSoftmax),
                        ("take", RouteMode::Take),
                    ],
                    None,
                )?,
                renorm: a.bool("renorm", Some(false))?,
            },
            "moe" => Op::Moe {
                act: a.gated_act()?,
            },
            "all_reduce" => Op::AllReduce {
                reduce: a.ident("reduce", &[("sum", ReduceOp::Sum)], Some(ReduceOp::Sum))?,
            },
            "all_reduce_start" => Op::AllReduceStart {
                reduce: a.ident("reduce", &[("sum", ReduceOp::Sum)], Some(ReduceOp::Sum))?,
            },
            "all_reduce_wait" => Op::AllReduceWait,
            "cache" => Op::Cache {
                key: a.string("key")?,
                refresh: {
                    let r = a.uint("refresh", Some(1))?;
                    u32::try_from(r).map_err(|_| {
                        a.bad(
                            "refresh",
                            "an integer below 2^32",
                            &AttrValue::Int(r as i64),
                        )
                    })?
                },
            },
            _ => unreachable!("every name in OP_NAMES has a case"),
        };
        a.finish()?;
        Ok(op)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads attributes by name for [`Op::from_parts`], tracking which were used.
struct AttrReader<'a> {
    op: &'static str,
    attrs: &'a [(String, AttrValue)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> AttrReader<'a> {
    fn new(op: &'static str, attrs: &'a [(String, AttrValue)]) -> Result<Self, OpError> {
        for (i, (name, _)) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|(n, _)| n == name) {
                return Err(OpError::DuplicateAttr { attr: name.clone() });
            }
        }
        Ok(AttrReader {
            op,
            attrs,
            used: vec![false; attrs.len()],
            known: Vec::new(),
        })
    }

    fn take(&mut self, name: &'static str) -> Option<&'a AttrValue> {
        self.known.push(name);
        let i = self.attrs.iter().position(|(n, _)| n == name)?;
        self.used[i] = true;
        Some(&self.attrs[i].1)
    }

    fn bad(&self, attr: &'static str, expected: &str, found: &AttrValue) -> OpError {
        OpError::BadAttr {
            op: self.op,
            attr,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn missing(&self, attr: &'static str) -> OpError {
        OpError::MissingAttr { op: self.op, attr }
    }

    fn float(&mut self, name: &'static str, default: Option<f64>) -> Result<f64, OpError> {
        match self.opt_float(name)? {
            Some(v) => Ok(v),
            None => default.ok_or_else(|| self.missing(name)),
        }
    }

    fn opt_float(&mut self, name: &'static str) -> Result<Option<f64>, OpError> {
        match self.take(name) {
            None => Ok(None),
            Some(AttrValue::Float(v)) => Ok(Some(*v)),
            Some(AttrValue::Int(v)) => Ok(Some(*v as f64)),
            Some(other) => Err(self.bad(name, "a number", other)),
        }
    }

    fn uint(&mut self, name: &'static str, default: Option<u64>) -> Result<u64, OpError> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(AttrValue::Int(v)) if *v >= 0 => Ok(*v as u64),
            Some(other) => Err(self.bad(name, "a non-negative integer", other)),
        }
    }

    fn uints(&mut self, name: &'static str) -> Result<Vec<usize>, OpError> {
        match self.take(name) {
            None => Err(self.missing(name)),
            Some(AttrValue::Ints(v)) if v.iter().all(|x| *x >= 0) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            Some(other) => Err(self.bad(name, "a list of non-negative integers", other)),
        }
    }

    fn bool(&mut self, name: &'static str, default: Option<bool>) -> Result<bool, OpError> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(AttrValue::Bool(v)) => Ok(*v),
            Some(other) => Err(self.bad(name, "`true` or `false`", other)),
        }
    }

    fn string(&mut self, name: &'static str) -> Result<String, OpError> {
        match self.take(name) {
            None => Err(self.missing(name)),
            Some(AttrValue::Str(v)) => Ok(v.clone()),
            Some(other) => Err(self.bad(name, "a quoted string", other)),
        }
    }

    fn ident<T: Copy>(
        &mut self,
        name: &'static str,
        cases: &[(&'static str, T)],
        default: Option<T>,
    ) -> Result<T, OpError> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(AttrValue::Ident(v)) => match cases.iter().find(|(n, _)| n == v) {
                Some((_, c)) => Ok(*c),
                None => {
                    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
                    Err(self.bad(
                        name,
                        &format!("one of {}", names.join(", ")),
                        &AttrValue::Ident(v.clone()),
                    ))
                }
            },
            Some(other) => Err(self.bad(name, "an identifier", other)),
        }
    }

    /// The `act` attribute of `moe` and `gated_matmul` (default `swiglu`).
    fn gated_act(&mut self) -> Result<GatedAct, OpError> {
        self.ident(
            "act",
            &[("swiglu", GatedAct::SwiGlu), ("geglu", GatedAct::GeGlu)],
            Some(GatedAct::SwiGlu),
        )
    }

    fn finish(self) -> Result<(), OpError> {
        for (i, (name, _)) in self.attrs.iter().enumerate() {
            if !self.used[i] {
                return Err(OpError::UnknownAttr {
                    op: self.op,
                    attr: name.clone(),
                    expected: if self.known.is_empty() {
                        "no attributes".into()
                    } else {
                        self.known.join(", ")
                    },
                });
            }
        }
        Ok(())
    }
}
