//! Transformer building blocks shared by the example models: parameter sets and
//! the code that emits their instructions.

use seam_ir::{DType, Dim, Operand, ParamId, TensorType, ValueId};

use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};

/// Shape of one causal self-attention block.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct AttentionShape {
    pub d_model: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub rope_theta: f32,
    pub eps: f32,
}

impl AttentionShape {
    pub(crate) fn head_dim(&self) -> u64 {
        self.d_model / self.heads
    }
}

/// The KV cache of one attention block: two session states `[kv_len, kv_heads,
/// head_dim]` (keys after RoPE, and values) that each call appends its tokens to.
#[derive(Copy, Clone, Debug)]
pub(crate) struct KvCache {
    /// The key cache (a state input).
    pub k: ValueId,
    /// The value cache (a state input).
    pub v: ValueId,
}

impl KvCache {
    /// Declares the two state inputs `{prefix}.k_cache` and `{prefix}.v_cache`
    /// (before any instruction of `f`).
    pub(crate) fn declare(
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        kv_heads: u64,
        head_dim: u64,
        kv_len: &Dim,
    ) -> Self {
        let ty = TensorType::new(
            DType::F32,
            [kv_len.clone(), Dim::Static(kv_heads), Dim::Static(head_dim)],
        );
        KvCache {
            k: f.state_input(format!("{prefix}.k_cache"), ty.clone()),
            v: f.state_input(format!("{prefix}.v_cache"), ty),
        }
    }
}

/// Causal attention of `q[T, Hq, Dh]` over `k`, `v` `[T, Hkv, Dh]` (keys after
/// RoPE) — or, with a `cache`, over the cache after appending `k` and `v` to it
/// (`{prefix}.k_all`, `{prefix}.v_all`), the tokens being its last rows as
/// causal `attention` expects. The result is `{prefix}.attn`. Every attention
/// block with a KV cache is built through here (examples and checkpoint imports).
pub(crate) fn cached_attention(
    f: &mut FunctionBuilder<'_>,
    prefix: &str,
    [q, k, v]: [ValueId; 3],
    cache: Option<KvCache>,
    scale: Option<f32>,
) -> Result<ValueId, BuildError> {
    let n = |suffix: &str| format!("{prefix}.{suffix}");
    let (k, v) = match cache {
        Some(c) => (
            f.append_state(&n("k_all"), c.k, k)?,
            f.append_state(&n("v_all"), c.v, v)?,
        ),
        None => (k, v),
    };
    f.attention(&n("attn"), [q.into(), k.into(), v.into()], true, scale)
}

/// Adds `prefill(%ids: i32[tokens])` and `decode(%ids: i32[1])` to `m`: each
/// declares its caches with `declare(f)` (before any instruction), takes its
/// tokens' positions as the last rows of `iota` over `kv_len`, and emits the
/// model with `emit(f, rows, ids, pos, caches)`, returning its logits.
pub(crate) fn add_cached_entry_points(
    m: &mut ModelBuilder,
    tokens: &Dim,
    kv_len: &Dim,
    declare: impl Fn(&mut FunctionBuilder<'_>) -> Vec<KvCache>,
    emit: impl Fn(
        &mut FunctionBuilder<'_>,
        &Dim,
        ValueId,
        ValueId,
        &[KvCache],
    ) -> Result<ValueId, BuildError>,
) -> Result<(), BuildError> {
    for (name, rows) in [("prefill", tokens.clone()), ("decode", Dim::Static(1))] {
        let mut f = m.function(name);
        let ids = f.input("ids", TensorType::new(DType::I32, [rows.clone()]));
        let caches = declare(&mut f);
        let all = f.iota("pos_all", 0, TensorType::new(DType::I32, [kv_len.clone()]))?;
        let pos = f.tail("pos", all, rows.clone())?;
        let logits = emit(&mut f, &rows, ids, pos, &caches)?;
        f.finish(&[logits]);
    }
    Ok(())
}

/// Parameters of a pre-norm causal self-attention block.
pub(crate) struct AttentionParams {
    norm: ParamId,
    wq: ParamId,
    wk: ParamId,
    wv: ParamId,
    wo: ParamId,
    shape: AttentionShape,
}

pub(crate) fn f32_param(m: &mut ModelBuilder, name: &str, dims: &[u64]) -> ParamId {
    m.param(name, TensorType::new(DType::F32, dims.iter().copied()))
}

impl AttentionParams {
    pub(crate) fn declare(m: &mut ModelBuilder, prefix: &str, shape: AttentionShape) -> Self {
        let d = shape.d_model;
        let kv = shape.kv_heads * shape.head_dim();
        AttentionParams {
            norm: f32_param(m, &format!("{prefix}.attn_norm"), &[d]),
            wq: f32_param(m, &format!("{prefix}.wq"), &[d, d]),
            wk: f32_param(m, &format!("{prefix}.wk"), &[d, kv]),
            wv: f32_param(m, &format!("{prefix}.wv"), &[d, kv]),
            wo: f32_param(m, &format!("{prefix}.wo"), &[d, d]),
            shape,
        }
    }

    /// The block's shape.
    pub(crate) fn shape(&self) -> &AttentionShape {
        &self.shape
    }

    /// Emits `x + wo(attention(rope(q), rope(k), v))` with `q, k, v` from
    /// `rms_norm(x)`; `pos` are the tokens' positions. With a `cache`, the
    /// tokens' keys and values are appended to it and the queries attend over
    /// the whole cache (the tokens are its last rows, as causal `attention` expects).
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        tokens: &Dim,
        x: ValueId,
        pos: ValueId,
        cache: Option<KvCache>,
    ) -> Result<ValueId, BuildError> {
        let o = self.emit_output(f, prefix, tokens, x, pos, cache)?;
        f.add(&format!("{prefix}.attn_res"), x, o)
    }

    /// Emits `wo(attention(rope(q), rope(k), v))` with `q, k, v` from
    /// `rms_norm(x)`: the block without its residual add (`cache` as in
    /// [`AttentionParams::emit`]).
    pub(crate) fn emit_output(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        tokens: &Dim,
        x: ValueId,
        pos: ValueId,
        cache: Option<KvCache>,
    ) -> Result<ValueId, BuildError> {
        let s = self.shape;
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        let heads = |h: u64| vec![tokens.clone(), Dim::Static(h), Dim::Static(s.head_dim())];
        let h = f.rms_norm(&n("attn_in"), x, self.norm, s.eps)?;
        let q = f.matmul(&n("q"), h, self.wq)?;
        let k = f.matmul(&n("k"), h, self.wk)?;
        let v = f.matmul(&n("v"), h, self.wv)?;
        let q = f.reshape(&n("q_heads"), q, heads(s.heads))?;
        let k = f.reshape(&n("k_heads"), k, heads(s.kv_heads))?;
        let v = f.reshape(&n("v_heads"), v, heads(s.kv_heads))?;
        let q = f.rope(&n("q_rot"), q, pos, s.rope_theta)?;
        let k = f.rope(&n("k_rot"), k, pos, s.rope_theta)?;
        let a = cached_attention(f, prefix, [q, k, v], cache, None)?;
        let a = f.reshape(
            &n("attn_flat"),
            a,
            vec![tokens.clone(), Dim::Static(s.d_model)],
        )?;
        f.matmul(&n("attn_out"), a, self.wo)
    }
}

/// Gate, up and down weights of a gated FFN (one expert, or stacked experts).
pub(crate) struct GatedFfnParams {
    pub gate: ParamId,
    pub up: ParamId,
    pub down: ParamId,
}

impl GatedFfnParams {
    /// Dense weights `[d, ffn]`, `[d, ffn]`, `[ffn, d]`.
    pub(crate) fn declare_dense(m: &mut ModelBuilder, prefix: &str, d: u64, ffn: u64) -> Self {
        GatedFfnParams {
            gate: f32_param(m, &format!("{prefix}.w_gate"), &[d, ffn]),
            up: f32_param(m, &format!("{prefix}.w_up"), &[d, ffn]),
            down: f32_param(m, &format!("{prefix}.w_down"), &[ffn, d]),
        }
    }

    /// Stacked expert weights `[e, d, ffn]`, `[e, d, ffn]`, `[e, ffn, d]`.
    pub(crate) fn declare_experts(
        m: &mut ModelBuilder,
        prefix: &str,
        e: u64,
        d: u64,
        ffn: u64,
    ) -> Self {
        GatedFfnParams {
            gate: f32_param(m, &format!("{prefix}.w_gate"), &[e, d, ffn]),
            up: f32_param(m, &format!("{prefix}.w_up"), &[e, d, ffn]),
            down: f32_param(m, &format!("{prefix}.w_down"), &[e, ffn, d]),
        }
    }

    /// The three weights as operands.
    pub(crate) fn operands(&self) -> [Operand; 3] {
        [self.gate.into(), self.up.into(), self.down.into()]
    }

    /// Emits the dense SwiGLU FFN `down(silu(x·gate) * (x·up))`.
    pub(crate) fn emit_swiglu(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        x: ValueId,
    ) -> Result<ValueId, BuildError> {
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        let g = f.matmul(&n("gate"), x, self.gate)?;
        let g = f.silu(&n("gate_act"), g)?;
        let u = f.matmul(&n("up"), x, self.up)?;
        let h = f.mul(&n("gated"), g, u)?;
        f.matmul(&n("down"), h, self.down)
    }
}
