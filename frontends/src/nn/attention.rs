//! Causal multi-head self-attention with RoPE, grouped-query heads, and
//! optionally a KV cache.

use seam_ir::{Dim, ParamId, ValueId};

use super::{Built, KvCache, Linear, Project, Tokens};
use crate::builder::{BuildError, FunctionBuilder};

/// Head layout, RoPE base and score scale of one attention block.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct AttentionShape {
    /// Query heads.
    pub heads: u64,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: u64,
    /// Width of one head.
    pub head_dim: u64,
    /// RoPE base.
    pub rope_theta: f32,
    /// The scale of the scores, written on the `attention` op; `None` leaves
    /// the op's default (`1/sqrt(head_dim)`) implicit.
    pub scale: Option<f32>,
}

impl AttentionShape {
    /// The width of all query heads together (the output projection's input).
    pub(crate) fn width(&self) -> u64 {
        self.heads * self.head_dim
    }
}

/// RMSNorms over the whole projected q and k, before RoPE (OLMoE).
#[derive(Copy, Clone, Debug)]
pub(crate) struct QkNorm {
    /// `[heads * head_dim]`.
    pub q: ParamId,
    /// `[kv_heads * head_dim]`.
    pub k: ParamId,
    /// The norms' epsilon.
    pub eps: f32,
}

/// The projections of one attention block; its input is already normalised.
/// `P` is the projections' kind: [`Linear`], or per-modality weights.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Attention<P = Linear> {
    /// Heads, RoPE and scale.
    pub shape: AttentionShape,
    /// Query projection `[d_model, heads * head_dim]`.
    pub q: P,
    /// Key projection `[d_model, kv_heads * head_dim]`.
    pub k: P,
    /// Value projection `[d_model, kv_heads * head_dim]`.
    pub v: P,
    /// Output projection `[heads * head_dim, d_model]`.
    pub o: P,
    /// Norms over the projected q and k, when the architecture has them.
    pub qk_norm: Option<QkNorm>,
}

impl<P: Project> Attention<P> {
    /// Emits `o(attention(rope(q(h)), rope(k(h)), v(h)))` at the tokens'
    /// positions, named under `prefix` (the result is `{prefix}.attn_out`).
    /// With a `cache`, the tokens' keys and values are stored in it and the
    /// queries attend over what it holds ([`KvCache::attend`]).
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        tokens: Tokens<'_>,
        h: ValueId,
        cache: Option<KvCache>,
    ) -> Built {
        let [q, k, v] = self.project(f, prefix, tokens, h)?;
        let a = match cache {
            Some(c) => c.attend(f, prefix, [q, k, v], self.shape.scale)?,
            None => f.attention(
                &format!("{prefix}.attn"),
                [q.into(), k.into(), v.into()],
                true,
                self.shape.scale,
            )?,
        };
        let flat = vec![tokens.rows.clone(), Dim::Static(self.shape.width())];
        let a = f.reshape(&format!("{prefix}.attn_flat"), a, flat)?;
        self.o.project(f, &format!("{prefix}.attn_out"), a)
    }

    /// The `[kv_heads, head_dim]` of this block's cache rows.
    pub(crate) fn cache_row(&self) -> [u64; 2] {
        [self.shape.kv_heads, self.shape.head_dim]
    }

    /// Projects `h[T, D]` to per-head `q[T, Hq, Dh]`, `k` and `v` `[T, Hkv, Dh]`,
    /// RoPE applied to `q` and `k`.
    fn project(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        tokens: Tokens<'_>,
        h: ValueId,
    ) -> Result<[ValueId; 3], BuildError> {
        let s = self.shape;
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        let heads = |count: u64| {
            vec![
                tokens.rows.clone(),
                Dim::Static(count),
                Dim::Static(s.head_dim),
            ]
        };
        let mut q = self.q.project(f, &n("q"), h)?;
        let mut k = self.k.project(f, &n("k"), h)?;
        let v = self.v.project(f, &n("v"), h)?;
        if let Some(norm) = self.qk_norm {
            q = f.rms_norm(&n("q_norm"), q, norm.q, norm.eps)?;
            k = f.rms_norm(&n("k_norm"), k, norm.k, norm.eps)?;
        }
        let q = f.reshape(&n("q_heads"), q, heads(s.heads))?;
        let k = f.reshape(&n("k_heads"), k, heads(s.kv_heads))?;
        let v = f.reshape(&n("v_heads"), v, heads(s.kv_heads))?;
        Ok([
            f.rope(&n("q_rot"), q, tokens.pos, s.rope_theta)?,
            f.rope(&n("k_rot"), k, tokens.pos, s.rope_theta)?,
            v,
        ])
    }
}
