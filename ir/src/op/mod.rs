//! The op set: every operation an instruction can perform, with its attributes.
//!
//! The op table gives each op its text-format name and how many operands and
//! results it takes; the element-wise ops are [`Op::Unary`] and [`Op::Binary`]
//! over seam-core's function tables, so a new element-wise function is an op
//! without any edit here. The printer lists an op's attributes with
//! [`Op::attrs`]; the parser and builder rebuild an op from its name and
//! attributes with [`Op::from_parts`]. Semantics are documented per variant; the
//! reference evaluator ([`crate::eval`]) is their executable definition.

mod attrs;
mod parse;
mod table;

use std::fmt;

pub use seam_core::{BinaryFn, GatedAct, RouteMode, UnaryFn};

pub use attrs::AttrValue;
pub use parse::OpError;
pub use table::{op_names, Arity};

use crate::fused::FusedExpr;

/// Reduction performed by `all_reduce`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    /// Element-wise sum across ranks.
    Sum,
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
    /// Element-wise `f(a, b)` of a binary function ([`BinaryFn`]: `add`, `sub`,
    /// `mul`, `div`, `eq`, …) with numpy broadcasting over trailing dims, both
    /// operands of one dtype. Floats compute in f32 and round to the dtype;
    /// integers are exact with wrapping overflow (`div` truncates toward zero,
    /// `eq` gives 1 or 0 in the operands' dtype). Text: `add(%a, %b)`.
    Binary(BinaryFn),
    /// Element-wise `f(x)` of a unary function ([`UnaryFn`]: `neg`, `exp`,
    /// `silu`, `gelu`, …) on a float tensor (`neg` also on integers, wrapping),
    /// computed in f32 (`gelu` in f64) and rounded to the dtype. Text: the
    /// function's op name with the attribute that picks it among those sharing
    /// the name (`gelu(%x, approx=tanh)`, `approx` defaulting to `erf`).
    Unary(UnaryFn),
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
    /// Writes a batch's rows into a pool of per-sequence slots: `buf[S, L, ...]`
    /// (float), `slot: i32[T]`, `pos: i32[T]`, `new[T, ...]` (the buffer's
    /// trailing dims and dtype) → `[S, L, ...]`, `buf` with row
    /// `(slot[t], pos[t])` replaced by `new[t]` for every token `t`. The batched
    /// counterpart of [`Op::WriteTail`]: the writer of a pool state (see
    /// [`crate::Function::states`]), lowered in place. A slot outside `0..S`, a
    /// position outside `0..L` or two tokens naming one row are evaluation
    /// errors; the GPU skips an out-of-range write. Text:
    /// `write_rows(%pool, %slot, %pos, %new)`.
    WriteRows,
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
    /// Causal grouped-query attention over a slot pool: `q[T, Hq, Dh]`,
    /// `k_pool[S, L, Hkv, Dh]`, `v_pool[S, L, Hkv, Dh]`, `slot: i32[T]`,
    /// `pos: i32[T]` → `[T, Hq, Dh]`. Query `t` attends to the keys and values
    /// `k_pool[slot[t], s]`, `v_pool[slot[t], s]` for `s = 0..=pos[t]` (causal
    /// within its own sequence), query head `h` reading kv head `h / (Hq / Hkv)`,
    /// with the conventions of [`Op::Attention`]. An out-of-range slot or
    /// position is an evaluation error; the GPU writes zeros for that token.
    /// Text: `pooled_attention(%q, %kp, %vp, %slot, %pos, scale=0.125)`
    /// (`scale` optional).
    PooledAttention {
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
    /// Grouped matmul selecting each token's matrix by an id: `x[T, K]`,
    /// integer `ids[T]`, `w[E, K, N]` → `[T, N]`, `y[t] = x[t]·w[ids[t]]`
    /// (f32 accumulation). A per-modality projection (Mixture-of-Transformers):
    /// `moe` with top-1 routing of weight 1 and a plain linear expert. An id
    /// outside `0..E` is an evaluation error; the GPU leaves that token's row
    /// unspecified. Text: `grouped_matmul(%x, %ids, @w)`.
    GroupedMatMul,
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
    /// A value kept between the calls of a session (DDT's self-condition
    /// shared by adjacent denoising steps): a call that computes it stores its
    /// operand and returns it; a call that reuses it returns the stored value
    /// and skips the work only the operand needs. A plain call computes it (the
    /// identity); [`crate::eval::CacheSession`] defines reuse. Text:
    /// `cache(%z, key="enc", refresh=2)`.
    Cache {
        /// The cache's name, unique in a function.
        key: String,
        /// The default sharing period: recompute every `refresh` calls (a
        /// caller's explicit schedule overrides it).
        refresh: u32,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
