//! The KV cache of one attention block, kept as session state: one
//! sequence's cache appended to (`prefill`/`decode`), or a pool of
//! per-sequence slots written at each token's slot and position (the
//! batched `step`).

use seam_ir::{DType, Dim, TensorType, ValueId};

use crate::builder::{BuildError, FunctionBuilder};

/// The session states of one attention block's keys (after RoPE) and values.
#[derive(Copy, Clone, Debug)]
pub(crate) enum KvCache {
    /// One sequence: two states `[kv_len, kv_heads, head_dim]` that each call
    /// appends its tokens to.
    Tail {
        /// The key cache (a state input).
        k: ValueId,
        /// The value cache (a state input).
        v: ValueId,
    },
    /// Many sequences: two states `[slots, positions, kv_heads, head_dim]`;
    /// token `t` is written at `(slot[t], pos[t])` and attends to its slot's
    /// positions up to its own.
    Pool {
        /// The key pool (a state input).
        k: ValueId,
        /// The value pool (a state input).
        v: ValueId,
        /// `slot: i32[tokens]`, each token's slot.
        slot: ValueId,
        /// `pos: i32[tokens]`, each token's position.
        pos: ValueId,
    },
}

/// The shape of a pool: slots by positions.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolShape {
    /// Sequences held at once.
    pub slots: u64,
    /// Positions per sequence.
    pub positions: u64,
}

impl KvCache {
    /// Declares the two state inputs `{prefix}.k_cache` and `{prefix}.v_cache`
    /// `[kv_len, kv_heads, head_dim]` (before any instruction of `f`).
    pub(crate) fn declare(
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        [kv_heads, head_dim]: [u64; 2],
        kv_len: &Dim,
    ) -> Self {
        let ty = TensorType::new(
            DType::F32,
            [kv_len.clone(), Dim::Static(kv_heads), Dim::Static(head_dim)],
        );
        KvCache::Tail {
            k: f.state_input(format!("{prefix}.k_cache"), ty.clone()),
            v: f.state_input(format!("{prefix}.v_cache"), ty),
        }
    }

    /// Declares the two pool state inputs `{prefix}.k_pool` and
    /// `{prefix}.v_pool` `[slots, positions, kv_heads, head_dim]` (before any
    /// instruction of `f`), written at the tokens' `slot` and `pos`.
    pub(crate) fn declare_pool(
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        [kv_heads, head_dim]: [u64; 2],
        pool: PoolShape,
        [slot, pos]: [ValueId; 2],
    ) -> Self {
        let ty = TensorType::new(
            DType::F32,
            [pool.slots, pool.positions, kv_heads, head_dim].map(Dim::Static),
        );
        KvCache::Pool {
            k: f.state_input(format!("{prefix}.k_pool"), ty.clone()),
            v: f.state_input(format!("{prefix}.v_pool"), ty),
            slot,
            pos,
        }
    }

    /// Stores the tokens' keys `k` and values `v` and returns the attention
    /// over them (`{prefix}.attn`, `[tokens, heads, head_dim]`) of the queries `q`:
    /// appended to a one-sequence cache, whose last rows they become (causal
    /// `attention` over the whole cache), or written into a pool (causal
    /// `pooled_attention` within each token's slot).
    pub(crate) fn attend(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        [q, k, v]: [ValueId; 3],
        scale: Option<f32>,
    ) -> Result<ValueId, BuildError> {
        let n = |suffix: &str| format!("{prefix}.{suffix}");
        match *self {
            KvCache::Tail { k: kc, v: vc } => {
                let k_all = f.append_state(&n("k_all"), kc, k)?;
                let v_all = f.append_state(&n("v_all"), vc, v)?;
                f.attention(
                    &n("attn"),
                    [q.into(), k_all.into(), v_all.into()],
                    true,
                    scale,
                )
            }
            KvCache::Pool {
                k: kp,
                v: vp,
                slot,
                pos,
            } => {
                let at = [slot.into(), pos.into()];
                let k_all = f.write_pool_state(&n("k_all"), kp, at, k)?;
                let v_all = f.write_pool_state(&n("v_all"), vp, at, v)?;
                f.pooled_attention(
                    &n("attn"),
                    [q.into(), k_all.into(), v_all.into()],
                    at,
                    scale,
                )
            }
        }
    }
}
